"""The Open Inference Protocol (KServe V2) over the same scoring core as the MLflow protocol.

Tabular models take one input per column (shape [n] or [n, 1]) or one [n, columns] input (a BYTES
one converted column by column as the signature types them: the one way to send a mixed table as a
single tensor); tensor models take their named tensors. A request may ask for any of the outputs the
metadata lists (a classifier's label and probabilities together); without ``outputs``,
``parameters.predict_method`` picks the set. Outputs carry the model's own dtypes and shapes.
Errors are ``{"error": "..."}``. The binary tensor data extension (tritonclient's default) is
spoken both ways (``binary_tensors``).
"""

from __future__ import annotations

import math

import numpy as np

from . import binary_tensors
from .errors import RequestError
from .mlflow_request import text_value
from .protocol import Response, ScoringService

DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "bool": "BOOL",
    "object": "BYTES",
    "string": "BYTES",
}
COLUMN_TYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL", "string": "BYTES"}
_ORT_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(string)": "BYTES", "tensor(bool)": "BOOL"}


class OpenInference:
    def __init__(self, service: ScoringService, provider: str | None = None) -> None:
        self.service = service
        self.provider = provider  # the execution provider the session really runs on (GPU images)
        model = service.manifest["model"]
        self.name, self.version = model["name"], str(model.get("version") or "1")

    def handles(self, path: str) -> bool:
        return path == "/v2" or path.startswith("/v2/")

    def handle(self, method: str, path: str, body: bytes | None, header_length: str | None = None) -> Response:
        """Route a V2 request; ``header_length`` is the Inference-Header-Content-Length header."""
        parts = [p for p in path.split("/") if p][1:]  # after "v2"
        if parts in (["health", "live"], ["health", "ready"]):
            return _only(method, "GET", lambda: Response(200, {parts[1]: True}))
        if not parts:
            return _only(method, "GET", lambda: Response(200, {"name": "mpack", "version": str(self.service.manifest.get("mpack_version")), "extensions": []}))
        if parts[0] != "models" or len(parts) < 2:
            return _error(404, f"no endpoint at {path}")
        name, rest = parts[1], parts[2:]
        if rest[:1] == ["versions"]:
            if len(rest) < 2 or rest[1] != self.version:
                return _error(404, f"model {name!r} has no version {rest[1] if len(rest) > 1 else ''!r}; it serves version {self.version}")
            rest = rest[2:]
        if name != self.name:
            return _error(404, f"unknown model {name!r}; this server serves {self.name!r}")
        if not rest:
            return _only(method, "GET", lambda: Response(200, self.metadata()))
        if rest == ["ready"]:
            return _only(method, "GET", lambda: Response(200, {"name": self.name, "ready": True}))
        if rest == ["infer"]:
            return _only(method, "POST", lambda: self.infer(body, header_length))
        return _error(404, f"no endpoint at {path}")

    def metadata(self) -> dict:
        signature = self.service.signature
        if signature.layout == "tensors":
            inputs = [{"name": t.name, "datatype": DATATYPES.get(t.dtype, "BYTES"), "shape": [-1 if d in (None, -1) else d for d in t.shape]} for t in signature.tensors]
        else:
            inputs = [{"name": c.name, "datatype": COLUMN_TYPES.get(c.type, "BYTES"), "shape": [-1]} for c in signature.columns]
        described_outputs = {o.name: o for o in self.service.session.get_outputs()}
        outputs = [_output_metadata(name, described_outputs.get(name)) for name in self.service.output_names]
        described = {"name": self.name, "versions": [self.version], "platform": "onnxruntime", "inputs": inputs, "outputs": outputs}
        if self.provider:
            described["parameters"] = {"execution_provider": self.provider}
        return described

    def infer(self, body: bytes | None, header_length: str | None = None) -> Response:
        try:
            request, binary = binary_tensors.split_body(body or b"", header_length)
            if isinstance(request, dict) and isinstance(request.get("inputs"), list):
                binary_tensors.attach_binary_inputs(request["inputs"], binary)
            elif binary:
                raise RequestError("binary data sent without an 'inputs' list to read it")
            document = self._document(request)
            names, arrays = self.service.predict_arrays(document, _requested_outputs(request, self.service.output_names))
        except RequestError as error:
            return _error(error.status, error.message)
        except Exception as exc:  # a real model failure
            return _error(500, f"model failed to predict: {exc}"[:2000])
        outputs, chunks = [], []
        for name, array in zip(names, arrays):
            array = np.asarray(array)
            if binary_tensors.wants_binary(request, name):
                data = binary_tensors.encode(array)
                chunks.append(data)
                outputs.append({**_output(name, array, with_data=False), "parameters": {"binary_data_size": len(data)}})
            else:
                outputs.append(_output(name, array))
        answer = {"model_name": self.name, "model_version": self.version, "outputs": outputs}
        if "id" in request:
            answer["id"] = request["id"]
        first = arrays[0] if arrays else None
        rows = len(first) if getattr(first, "ndim", 0) else 1
        if not chunks:
            return Response(200, answer, rows=rows)
        header = Response(200, answer).json().encode()
        return Response(200, answer, rows=rows, headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))}, raw=header + b"".join(chunks))

    def _document(self, request) -> dict:
        """The OIP request as an MLflow scoring document for the core to validate."""
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
            raise RequestError("an inference request needs a non-empty 'inputs' list of {name, shape, datatype, data}")
        tensors, datatypes = {}, {}
        for index, item in enumerate(request["inputs"]):
            if not isinstance(item, dict) or not {"name", "shape", "data"} <= item.keys():
                raise RequestError(f"inputs[{index}] needs 'name', 'shape', 'datatype' and 'data'")
            tensors[item["name"]] = _reshape(item, index)
            datatypes[item["name"]] = item.get("datatype")
        parameters = request.get("parameters") or {}
        params = {"predict_method": parameters["predict_method"]} if isinstance(parameters, dict) and "predict_method" in parameters else {}
        signature = self.service.signature
        if signature.layout == "tensors":
            return {"inputs": tensors, "params": params}
        columns = list(signature.column_names)
        types = {c.name: c.type for c in signature.columns}
        if len(tensors) == 1 and next(iter(tensors)) not in columns:  # one [rows, columns] matrix
            (name, rows), = tensors.items()
            if datatypes[name] == "BYTES" and isinstance(rows, list):
                rows = [[_from_text(value, types[column]) for value, column in zip(row, columns)] if isinstance(row, list) else row for row in rows]
            return {"dataframe_split": {"columns": columns, "data": rows}, "params": params}
        flat = {name: [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values] for name, values in tensors.items()}
        for name, values in flat.items():
            if datatypes[name] == "BYTES" and types.get(name, "string") != "string":
                flat[name] = [_from_text(value, types[name]) for value in values]
        lengths = {len(v) for v in flat.values()}
        if len(lengths) > 1:
            raise RequestError("all inputs must have the same number of rows")
        count = lengths.pop()
        return {"dataframe_split": {"columns": list(flat), "data": [[flat[c][i] for c in flat] for i in range(count)]}, "params": params}


def _reshape(item: dict, index: int) -> list:
    shape, data = item["shape"], item["data"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RequestError(f"inputs[{index}] ({item['name']}): shape must be a list of non-negative integers")
    try:
        flat = np.asarray(data, dtype=object).reshape(-1) if isinstance(data, list) else None
    except (ValueError, TypeError, RecursionError):  # ragged or absurdly nested lists
        raise RequestError(f"inputs[{index}] ({str(item['name'])[:60]}): data must be a flat or rectangular list") from None
    expected = math.prod(shape) if shape else 1
    if flat is None or flat.size != expected:
        raise RequestError(f"inputs[{index}] ({item['name']}): shape {shape} needs {expected} values, got {0 if flat is None else flat.size}")
    return flat.reshape(shape).tolist()


def _from_text(value, column_type: str):
    """A BYTES element as the column's type ("35.8" -> 35.8 for a double column, "" -> null); text
    that is not a value of the type is passed on as it is, for the signature check to refuse naming
    the column (as it refuses any other wrong value)."""
    if not isinstance(value, str):
        return value
    try:
        return text_value(column_type, value)
    except ValueError:
        return value


def _output_metadata(name: str, described) -> dict:
    """An output's name, datatype and shape as the session describes it (BYTES, [-1] when it does not)."""
    if described is None:
        return {"name": name, "datatype": "BYTES", "shape": [-1]}
    return {"name": name, "datatype": _ORT_TYPES.get(described.type, "BYTES"), "shape": [d if isinstance(d, int) else -1 for d in (described.shape or [])]}


def _output(name: str, array: np.ndarray, with_data: bool = True) -> dict:
    output = {"name": name, "datatype": DATATYPES.get(str(array.dtype), "BYTES"), "shape": list(array.shape)}
    if with_data:
        output["data"] = array.reshape(-1).tolist()
    return output


def _requested_outputs(request: dict, names: list[str]) -> list[str] | None:
    """The outputs the request names, each once and in its order (None when it names none: the
    predict method's then); any of ``names``, the outputs the metadata lists."""
    specs = request.get("outputs")
    if specs is None:
        return None
    if not isinstance(specs, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in specs):
        raise RequestError("'outputs' must be a list of {name, parameters}")
    unknown = [s["name"] for s in specs if s["name"] not in names]
    if unknown:
        raise RequestError(f"unknown output(s) {', '.join(repr(u)[:60] for u in unknown[:10])}; this model gives {', '.join(names)}")
    return list(dict.fromkeys(s["name"] for s in specs)) or None


def _only(method: str, allowed: str, respond) -> Response:
    if method.upper() != allowed and not (allowed == "GET" and method.upper() == "HEAD"):
        return _error(405, f"method {method} is not allowed here; use {allowed}")
    return respond()


def _error(status: int, message: str) -> Response:
    return Response(status, {"error": message})
