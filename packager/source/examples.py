"""Rows to check a build with: the model's input example, the user's --sample-data, or rows
synthesized from the signature; and the small request stored in the manifest for smoke tests."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.source.mlmodel import PANDAS_DTYPES, Column, records_from_json

JITTERED_COPIES = 1000
SYNTHESIZED_ROWS = 1000
MIN_PARITY_ROWS = 2000
MISSING_ROWS = 50  # per column that accepts missing values
MANIFEST_EXAMPLE_ROWS = 3


def load_sample_data(path: Path, columns: tuple[Column, ...]) -> tuple[dict, ...]:
    names = [c.name for c in columns] or None
    try:
        text = path.read_text()
    except OSError as exc:
        raise MpackError(f"cannot read --sample-data {path}: {exc.strerror}", "pass a CSV (with a header row) or JSON file") from None
    if path.suffix.lower() == ".csv":
        records = tuple(_typed_csv_record(r, columns) for r in csv.DictReader(text.splitlines()))
    else:
        try:
            records = records_from_json(json.loads(text), names)
        except ValueError as exc:
            raise MpackError(f"--sample-data {path} is not valid JSON: {exc}", "pass a CSV (with a header row) or JSON file") from None
    if not records:
        raise MpackError(f"--sample-data {path} holds no rows", "use records ([{col: value}]), dataframe_split, or a CSV with a header row")
    missing = sorted({c.name for c in columns} - set(records[0]))
    if missing:
        raise MpackError(f"--sample-data {path} lacks column(s) {', '.join(missing)}", "its columns must match the model's signature")
    return records


def _typed_csv_record(record: dict, columns: tuple[Column, ...]) -> dict:
    typed = dict(record)
    for column in columns:
        text = (record.get(column.name) or "").strip()
        if column.type in ("double", "float"):
            typed[column.name] = float(text) if text else None
        elif column.type in ("long", "integer"):
            typed[column.name] = int(text) if text else None
        elif column.type == "boolean":
            typed[column.name] = text.lower() in ("true", "1")
    return typed


def parity_records(
    example: tuple[dict, ...] | None, columns: tuple[Column, ...], boundary=None, sample=None, columns_from: str = "the signature", missing_columns: tuple[str, ...] = (), seed: int = 0
) -> tuple[tuple[dict, ...], str]:
    """(records, where they came from): the user's sample data or the input example, jittered copies
    of it, rows synthesized from the signature (values drawn from the example's where there is one),
    and rows at the model's own decision thresholds; at least MIN_PARITY_ROWS in all."""
    rng = random.Random(seed)
    parts, sources = [], []
    base = tuple(sample or example or ())
    if sample:
        parts.append(tuple(sample))
        sources.append(f"{len(sample)} sample-data")
    elif example:
        parts.append(tuple(example))
        sources.append(f"{len(example)} input-example")
    if base:
        jittered = tuple(_jitter(rng.choice(base), columns, rng) for _ in range(JITTERED_COPIES))
        parts.append(jittered)
        sources.append(f"{len(jittered)} jittered")
    synthesized = tuple(_synthesized(columns, rng, base) for _ in range(SYNTHESIZED_ROWS))
    parts.append(synthesized)
    sources.append(f"{len(synthesized)} synthesized from {columns_from}")
    at_thresholds = tuple(boundary(base or synthesized)) if boundary else ()
    if at_thresholds:
        parts.append(at_thresholds)
        sources.append(f"{len(at_thresholds)} at decision thresholds")
    if missing_columns and base:
        with_missing = tuple(dict(rng.choice(base), **{name: None}) for name in missing_columns for _ in range(MISSING_ROWS))
        parts.append(with_missing)
        sources.append(f"{len(with_missing)} with missing values")
    records = tuple(r for part in parts for r in part)
    while len(records) < MIN_PARITY_ROWS:
        extra = tuple(_synthesized(columns, rng, base) for _ in range(MIN_PARITY_ROWS - len(records)))
        records += extra
    return records, " + ".join(sources) + " rows"


def _jitter(record: dict, columns, rng: random.Random) -> dict:
    copy = dict(record)
    for column in columns:
        value = copy.get(column.name)
        if column.type in ("double", "float") and isinstance(value, (int, float)) and value == value:
            copy[column.name] = float(value) * (1 + rng.gauss(0, 0.1)) + rng.gauss(0, 0.01)
    return copy


def _synthesized(columns, rng: random.Random, base: tuple[dict, ...] = ()) -> dict:
    """A row of signature-typed values; numbers on the scale of the base rows' (and strings drawn
    from theirs, so an encoder meets categories it knows)."""
    if base:
        row = {}
        for column in columns:
            value = rng.choice(base).get(column.name)
            if column.type in ("double", "float") and isinstance(value, (int, float)) and value == value:
                value = float(value) * rng.uniform(0.0, 2.0) + rng.gauss(0, 1) * (rng.random() < 0.3)
            row[column.name] = value
        return row
    values = {
        "double": lambda: rng.gauss(0, 1),
        "float": lambda: rng.gauss(0, 1),
        "long": lambda: rng.randint(0, 9),
        "integer": lambda: rng.randint(0, 9),
        "boolean": lambda: rng.random() < 0.5,
        "string": lambda: rng.choice(("a", "b", "c")),
    }
    return {c.name: values[c.type]() for c in columns}


def typed_frame(columns: tuple[Column, ...], records):
    """Records as the DataFrame MLflow's pyfunc feeds a model: each column in its signature type (an
    integer column with a missing value upcast to float64, as pandas does)."""
    import pandas as pd

    frame = pd.DataFrame(list(records), columns=[c.name for c in columns])
    for column in columns:
        integer_with_missing = column.type in ("long", "integer") and frame[column.name].isna().any()
        frame[column.name] = frame[column.name].astype("float64" if integer_with_missing else PANDAS_DTYPES[column.type])
    return frame


def scoring_request(records: tuple[dict, ...], columns: tuple[Column, ...]) -> dict:
    """A few rows as an MLflow ``dataframe_split`` request (stored in the manifest)."""
    names = [c.name for c in columns]
    rows = [[plain_value(r.get(n)) for n in names] for r in records[:MANIFEST_EXAMPLE_ROWS]]
    return {"dataframe_split": {"columns": names, "data": rows}}


def first_rows(request: dict) -> dict:
    """A tensor request cut to its first rows (the manifest's example, not the parity gate's 2,000)."""
    return {"inputs": {name: rows[:MANIFEST_EXAMPLE_ROWS] for name, rows in request["inputs"].items()}}


def tensor_request(inputs: list[dict], seed: int = 0) -> dict:
    """A synthesized request for a model without a column signature (variable dims become 2)."""
    rng = random.Random(seed)
    data = {}
    for spec in inputs:
        shape = [d if d and d > 0 else 2 for d in spec["shape"]] or [1]
        data[spec["name"]] = _nested(shape, spec["dtype"], rng)
    return {"inputs": data}


def _nested(shape: list[int], dtype: str, rng: random.Random):
    if len(shape) == 1:
        if dtype == "string":
            return [rng.choice(("a", "b")) for _ in range(shape[0])]
        if dtype == "bool":
            return [rng.random() < 0.5 for _ in range(shape[0])]
        if dtype.startswith(("int", "uint")):
            return [rng.randint(0, 3) for _ in range(shape[0])]
        return [round(rng.gauss(0, 1), 6) for _ in range(shape[0])]
    return [_nested(shape[1:], dtype, rng) for _ in range(shape[0])]


def plain_value(value):
    """JSON-safe: numpy scalars to Python, NaN to null (MLflow's missing value)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
