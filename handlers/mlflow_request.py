"""Parsing of MLflow scoring-protocol requests into rows (tabular models) or named tensors.

Accepted bodies (exactly one key, plus optional ``params``): ``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``; or ``text/csv`` with a header row.
"""

from __future__ import annotations

import json

from .errors import RequestError
from .signature import ColumnSpec, InputSignature

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
ALLOWED_KEYS = frozenset(FORMATS) | {"params"}


def parse_json(body: bytes | str):
    """JSON in UTF-8 (json.loads would guess UTF-16/32 from a byte order mark; the protocol is UTF-8)."""
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body)
    except UnicodeDecodeError:
        raise RequestError("request body is not valid UTF-8", error_code="MALFORMED_REQUEST") from None
    except ValueError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}", error_code="MALFORMED_REQUEST") from None
    except RecursionError:
        raise RequestError("request body is nested too deeply", error_code="MALFORMED_REQUEST") from None


def split_document(document) -> tuple[str, object, dict]:
    """(format, payload, params) of a scoring request, or a 400 saying what is wrong with its shape."""
    if not isinstance(document, dict):
        raise RequestError(
            f"request must be a JSON object with one of {', '.join(FORMATS)}; got {type(document).__name__}",
        )
    unknown = [k for k in document if k not in ALLOWED_KEYS]
    if unknown:
        raise RequestError(f"unknown key(s) {', '.join(repr(k)[:80] for k in unknown[:10])} in request; expected one of {', '.join(FORMATS)} and optional 'params'")
    present = [k for k in FORMATS if k in document]
    if len(present) != 1:
        detail = "none" if not present else ", ".join(present)
        raise RequestError(f"request must contain exactly one of {', '.join(FORMATS)} (found {detail})")
    params = document.get("params")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise RequestError("'params' must be a JSON object", error_code="INVALID_PARAMETER_VALUE")
    return present[0], document[present[0]], params


# -- tabular ---------------------------------------------------------------------------------------


def tabular_rows(fmt: str, payload, signature: InputSignature, ignored: list | None = None) -> list[list]:
    """Rows in the signature's column order, each of the signature's width; the names of columns
    the model does not take are appended to ``ignored``."""
    ignored = [] if ignored is None else ignored
    if fmt == "dataframe_split":
        rows = _split_rows(payload, signature, ignored)
    elif fmt == "dataframe_records":
        rows = _record_rows(payload, signature, fmt, ignored)
    elif fmt == "inputs" and isinstance(payload, dict):
        rows = _columnar_rows(payload, signature, ignored)
    else:  # instances / inputs as a list: records or positional rows
        if not isinstance(payload, list):
            raise RequestError(f"'{fmt}' must be a list of rows or records")
        if payload and all(isinstance(item, dict) for item in payload):
            rows = _record_rows(payload, signature, fmt, ignored)
        else:
            rows = _positional_rows(payload, signature, fmt)
    if not rows:
        raise RequestError("request has no rows", error_code="INVALID_PARAMETER_VALUE")
    return rows


def _split_rows(payload, signature: InputSignature, ignored: list) -> list[list]:
    if not isinstance(payload, dict):
        raise RequestError("'dataframe_split' must be an object with 'columns' and 'data'")
    extra = [k for k in payload if k not in ("columns", "data", "index")]
    if extra:
        raise RequestError(f"unknown key(s) {', '.join(map(repr, extra))} in 'dataframe_split'")
    data = payload.get("data")
    if not isinstance(data, list):
        raise RequestError("'dataframe_split.data' must be a list of rows")
    columns = payload.get("columns")
    if columns is None:
        return _positional_rows(data, signature, "dataframe_split.data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError("'dataframe_split.columns' must be a list of column names")
    order = _column_order(columns, signature)
    if order is not None:
        ignored.extend(ignored_columns(columns, signature))
    width = len(columns)
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise RequestError(
                f"row {index} of 'dataframe_split.data' must be a list of {width} values (one per column)",
            )
    if order is None:
        return data
    return [[row[i] for i in order] for row in data]


def _record_rows(payload, signature: InputSignature, fmt: str, ignored: list) -> list[list]:
    if not isinstance(payload, list):
        raise RequestError(f"'{fmt}' must be a list of records (objects)")
    names = signature.column_names
    expected = set(names)
    rows = []
    for index, record in enumerate(payload):
        if not isinstance(record, dict):
            raise RequestError(f"record {index} of '{fmt}' must be an object of column: value")
        if record.keys() != expected:
            _column_order(list(record), signature, where=f" in record {index}")
            if not ignored:
                ignored.extend(ignored_columns(record, signature))
        rows.append([record[name] for name in names])
    return rows


def _columnar_rows(payload: dict, signature: InputSignature, ignored: list) -> list[list]:
    names = list(payload)
    _column_order(names, signature)
    ignored.extend(ignored_columns(names, signature))
    columns = []
    for name in signature.column_names:
        values = payload[name]
        columns.append(values if isinstance(values, list) else [values])
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise RequestError("all columns in 'inputs' must have the same number of values")
    return [list(row) for row in zip(*columns)]


def _positional_rows(payload, signature: InputSignature, fmt: str) -> list[list]:
    if not isinstance(payload, list):
        raise RequestError(f"'{fmt}' must be a list of rows")
    width = len(signature.columns)
    for index, row in enumerate(payload):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(
                f"row {index} of '{fmt}' must have {width} values in the order {', '.join(signature.column_names)}; got {got}",
            )
    return payload


MAX_NAMED_COLUMNS = 10  # columns named in one message
MAX_SUGGESTIONS = 3  # "did you mean" look-ups per request (difflib is quadratic in name length)


def _column_order(columns: list, signature: InputSignature, where: str = "") -> list[int] | None:
    """Index of each signature column in ``columns`` (None when already in order), or a 400 naming
    the missing (with a likely spelling among the unexpected ones) and duplicated columns.

    Columns the model does not take are ignored, as MLflow ignores them (ID columns are common);
    ``ignored_columns`` reports them for a log line. Linear in the number of columns.
    """
    names = signature.column_names
    if len(columns) == len(names) and tuple(columns) == names:
        return None
    position: dict = {}
    duplicated = []
    for index, name in enumerate(columns):
        if name in position:
            if name in signature.column_index:
                duplicated.append(name)
        else:
            position[name] = index
    missing = [n for n in names if n not in position]
    if missing or duplicated:
        extra = [c for c in position if c not in signature.column_index]
        raise RequestError(_column_problem(missing, extra, sorted(set(duplicated))) + where, error_code="INVALID_PARAMETER_VALUE")
    return [position[n] for n in names]


def ignored_columns(columns, signature: InputSignature) -> list:
    """The request's columns the model does not take (named in a log line, never refused)."""
    return [c for c in columns if c not in signature.column_index]


def _column_problem(missing: list[str], extra: list[str], duplicated: list[str]) -> str:
    import difflib

    parts = []
    if missing:
        described = []
        candidates = [e for e in extra if isinstance(e, str) and len(e) <= 200][:1000]
        for rank, name in enumerate(missing[:MAX_NAMED_COLUMNS]):
            close = difflib.get_close_matches(name, candidates, n=1) if rank < MAX_SUGGESTIONS and candidates else []
            described.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        more = f" and {len(missing) - MAX_NAMED_COLUMNS} more" if len(missing) > MAX_NAMED_COLUMNS else ""
        parts.append(f"missing column(s) {', '.join(described)}{more}")
    if duplicated:
        parts.append(f"duplicated column(s) {', '.join(map(repr, duplicated[:MAX_NAMED_COLUMNS]))}")
    return "; ".join(parts)


# -- CSV -------------------------------------------------------------------------------------------


def csv_rows(body: bytes | str, signature: InputSignature, ignored: list | None = None) -> list[list]:
    """text/csv with a header row, converted by column type ('' is a missing value)."""
    import csv  # only for CSV bodies (with io, ~8 ms of a cold start otherwise)
    import io

    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        records = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(f"request body is not valid CSV: {exc}", error_code="MALFORMED_REQUEST") from None
    records = [r for r in records if r]
    if not records:
        raise RequestError("CSV body is empty; expected a header row and data rows", error_code="INVALID_PARAMETER_VALUE")
    header, data = [h.strip() for h in records[0]], records[1:]
    order = _column_order(header, signature)
    if order is not None and ignored is not None:
        ignored.extend(ignored_columns(header, signature))
    rows = []
    for index, record in enumerate(data):
        if len(record) != len(header):
            raise RequestError(f"CSV row {index + 1} has {len(record)} values, the header has {len(header)}")
        values = record if order is None else [record[i] for i in order]
        rows.append([_csv_value(col, text, index) for col, text in zip(signature.columns, values)])
    if not rows:
        raise RequestError("request has no rows", error_code="INVALID_PARAMETER_VALUE")
    return rows


def _csv_value(column: ColumnSpec, text: str, row: int):
    try:
        return text_value(column.type, text)
    except ValueError:
        raise RequestError(
            f"column '{column.name}' expects a {column.type} value, got {text.strip()[:40]!r} in CSV row {row + 1}",
            error_code="INVALID_PARAMETER_VALUE",
        ) from None


def text_value(kind: str, text: str):
    """A cell sent as text (CSV, a KServe BYTES element) as a value of the column type ``kind``:
    '' is a missing value; ValueError when the text is not one."""
    if kind == "string":
        return text
    text = text.strip()
    if text == "":
        return None
    if kind in ("double", "float"):
        return float(text)
    if kind in ("long", "integer"):
        return int(text)
    if kind == "boolean" and text.lower() in ("true", "false", "1", "0"):
        return text.lower() in ("true", "1")
    raise ValueError(text)


# -- tensors ---------------------------------------------------------------------------------------


def tensor_payloads(fmt: str, payload, signature: InputSignature) -> dict[str, object]:
    """Named raw tensor data from ``inputs`` / ``instances`` for models without a column signature."""
    names = [t.name for t in signature.tensors]
    if fmt in ("dataframe_split", "dataframe_records") and len(names) == 1:
        return {names[0]: _frame_rows(fmt, payload)}  # as MLflow takes a table for one [-1, columns] tensor
    if fmt not in ("inputs", "instances"):
        raise RequestError(f"this model takes tensors ({', '.join(names)}); send them as 'inputs' or 'instances', not '{fmt}'")
    if isinstance(payload, dict) and fmt == "inputs":
        extra = [k for k in payload if k not in names]
        missing = [n for n in names if n not in payload]
        if extra or missing:
            problems = [f"missing input(s) {', '.join(map(repr, missing[:MAX_NAMED_COLUMNS]))}"] if missing else []
            problems += [f"unexpected input(s) {', '.join(repr(e)[:80] for e in extra[:MAX_NAMED_COLUMNS])}"] if extra else []
            raise RequestError(f"{'; '.join(problems)}; this model takes {', '.join(names)}", error_code="INVALID_PARAMETER_VALUE")
        return payload
    if not isinstance(payload, list):
        raise RequestError(f"'{fmt}' must be a list (or, for 'inputs', an object of input name: data)")
    if payload and all(isinstance(item, dict) for item in payload):
        stacked: dict[str, list] = {name: [] for name in names}
        for index, item in enumerate(payload):
            if item.keys() != set(names):
                raise RequestError(f"instance {index} must have exactly the inputs {', '.join(names)}", error_code="INVALID_PARAMETER_VALUE")
            for name in names:
                stacked[name].append(item[name])
        return stacked
    if len(names) != 1:
        raise RequestError(f'this model has {len(names)} inputs ({", ".join(names)}); name them: {{"inputs": {{name: data}}}}')
    return {names[0]: payload}


def _frame_rows(fmt: str, payload) -> list:
    """A table's rows, in its own column order (MLflow feeds such a table to a one-tensor model as
    ``frame.to_numpy()``: names are not matched, the tensor's shape checks the width)."""
    if fmt == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise RequestError("'dataframe_split' must be an object with a 'data' list of rows")
        return payload["data"]
    if not isinstance(payload, list) or not all(isinstance(record, dict) for record in payload):
        raise RequestError("'dataframe_records' must be a list of objects")
    return [list(record.values()) for record in payload]
