"""Runs INSIDE the model's own environment: loads the model with the libraries it was logged with,
converts it, and answers reference predictions and threshold rows for the parity gate.

One JSON document per line: requests on stdin, replies on a private copy of stdout (fd 1 itself is
pointed at stderr, so a library that prints cannot corrupt the protocol). ``to_wire``/``from_wire``
are the two halves of one ConvertedModel's trip across the process boundary; the callables stay
here and are answered by the ``reference`` and ``boundary_records`` requests.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import traceback
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel


def to_wire(converted) -> dict:
    return {
        "onnx_bytes": base64.b64encode(converted.onnx_bytes).decode(),
        "model_bytes": base64.b64encode(converted.model_bytes).decode(),
        "signature": converted.signature,
        "prediction": converted.prediction,
        "flavor": converted.flavor,
        "task": converted.task,
        "converter": converted.converter,
        "columns": [[c.name, c.type] for c in converted.columns],
        "native": converted.native,
        "model_file": converted.model_file,
        "has_reference": converted.reference is not None,
        "has_boundary": converted.boundary_records is not None,
        "tensor_check": converted.tensor_check,
    }


def from_wire(document: dict, reference, boundary_records):
    from mpack.packager.source.mlmodel import Column

    return ConvertedModel(
        onnx_bytes=base64.b64decode(document["onnx_bytes"]),
        model_bytes=base64.b64decode(document["model_bytes"]),
        signature=document["signature"],
        prediction=document["prediction"],
        flavor=document["flavor"],
        task=document["task"],
        converter=document["converter"],
        columns=tuple(Column(name, kind) for name, kind in document["columns"]),
        native=document["native"],
        model_file=document["model_file"],
        reference=reference if document["has_reference"] else None,
        boundary_records=boundary_records if document["has_boundary"] else None,
        tensor_check=document["tensor_check"],
    )


def encode_answers(value):
    """Reference answers (arrays, per method and output) as JSON, dtypes kept."""
    import numpy as np

    if isinstance(value, dict):
        return {"mapping": {key: encode_answers(item) for key, item in value.items()}}
    array = np.asarray(value)
    return {"dtype": str(array.dtype) if array.dtype.kind in "biuf" else "object", "data": array.tolist()}


def decode_answers(value):
    import numpy as np

    if "mapping" in value:
        return {key: decode_answers(item) for key, item in value["mapping"].items()}
    return np.array(value["data"], dtype=value["dtype"])


def plain(value):
    """JSON for numpy scalars in records."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _Worker:
    def __init__(self) -> None:
        self.converted = None
        self.service = None

    def convert(self, request: dict) -> dict:
        from mpack.packager.convert.registry import convert_mlmodel
        from mpack.packager.source.mlmodel import read_mlmodel

        model = read_mlmodel(Path(request["model_dir"]))
        options = ConversionOptions(**dict(request["options"], trusted_types=tuple(request["options"]["trusted_types"])))
        records = tuple(request["records"]) if request["records"] is not None else None
        if request["as_itself"]:
            from mpack.packager.convert.native import native_model

            self.converted = native_model(model, records, options)
        else:
            self.converted = convert_mlmodel(model, records, options)
        self.service = None
        return to_wire(self.converted)

    def reference(self, request: dict) -> dict:
        return encode_answers(self.converted.reference(request["records"]))  # rows, or a tensor model's {name: data}

    def boundary_records(self, request: dict) -> list:
        return list(self.converted.boundary_records(tuple(request["records"])))

    def score(self, request: dict) -> dict:
        """The bundle's protocol core over the converted model, with this environment's libraries
        (the ones a native bundle pins): the candidate side of a native model's parity check."""
        from mpack.packager.check.scoring import scoring_service

        if self.service is None:
            self.service = scoring_service(request["manifest"], self.converted.model_bytes or self.converted.onnx_bytes)
        answer = self.service.score_document(request["document"])
        return {"status": answer.status, "body": answer.body, "rows": answer.rows}


def serve() -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = _Worker()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"ok": getattr(worker, request["command"])(request)}
        except MpackError as error:
            reply = {"error": {"message": error.message, "hint": error.hint}}
        except BaseException as error:  # the parent turns it into an MpackError naming the model's environment
            where = traceback.extract_tb(error.__traceback__)[-1]
            reply = {"crash": f"{type(error).__name__}: {error} (in {Path(where.filename).name}, line {where.lineno})"}
        replies.write(json.dumps(reply, default=plain) + "\n")
        replies.flush()
