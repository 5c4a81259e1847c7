"""The KServe V2 / Triton binary tensor data extension, both ways.

A request may carry ``Inference-Header-Content-Length: N``: its first N bytes are the JSON inference
header, the rest the raw data of the inputs whose ``parameters.binary_data_size`` says so, in input
order (little-endian numbers; BOOL one byte; BYTES as a 4-byte length then the bytes, per element).
Outputs are sent the same way when the request asks (``parameters.binary_data_output`` or an
output's ``parameters.binary_data``) — tritonclient's defaults do both.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from .errors import RequestError

HEADER = "inference-header-content-length"
NUMERIC = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}  # fmt: skip


def split_body(body: bytes, header_length: str | None) -> tuple[object, bytes]:
    """(the JSON inference header, the binary rest); the whole body is JSON without the header."""
    if header_length is None:
        return _json(body), b""
    if not header_length.strip().isdigit() or int(header_length) > len(body):
        raise RequestError(f"Inference-Header-Content-Length {header_length[:20]!r} must be a byte count within the body ({len(body)} bytes)")
    size = int(header_length)
    return _json(body[:size]), body[size:]


def _json(data: bytes):
    try:
        return json.loads(data or b"")
    except UnicodeDecodeError:
        raise RequestError("inference header is not valid UTF-8") from None
    except RecursionError:
        raise RequestError("inference header is nested too deeply") from None
    except ValueError as exc:
        raise RequestError(f"inference header is not valid JSON: {exc}") from None


def attach_binary_inputs(inputs: list, binary: bytes) -> None:
    """Give every input that declares ``binary_data_size`` its ``data``, read from ``binary``."""
    offset = 0
    for index, item in enumerate(inputs):
        parameters = item.get("parameters") if isinstance(item, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise RequestError(f"inputs[{index}]: binary_data_size {size!r} does not fit the {len(binary) - offset} bytes of binary data left")
        if "data" in item:
            raise RequestError(f"inputs[{index}] has both 'data' and binary data")
        item["data"] = _decode(item, binary[offset : offset + size], index)
        offset += size
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} bytes of binary data belong to no input (binary_data_size)")


def _decode(item: dict, raw: bytes, index: int) -> list:
    datatype = item.get("datatype")
    if datatype == "BYTES":
        return _decode_bytes(raw, index)
    dtype = NUMERIC.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise RequestError(f"inputs[{index}]: datatype {str(datatype)[:20]!r} is not a KServe V2 datatype")
    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise RequestError(f"inputs[{index}]: {len(raw)} bytes is not a whole number of {datatype} values")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).tolist()


def _decode_bytes(raw: bytes, index: int) -> list:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise RequestError(f"inputs[{index}]: BYTES data ends inside an element's length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise RequestError(f"inputs[{index}]: a BYTES element claims {length} bytes, {len(raw) - offset} are left")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(f"inputs[{index}]: a BYTES element is not valid UTF-8 text") from None
        offset += length
    return values


def wants_binary(request: dict, name: str) -> bool:
    """Whether output ``name`` goes back as binary data."""
    for spec in request.get("outputs") or ():
        if isinstance(spec, dict) and spec.get("name") == name:
            parameters = spec.get("parameters")
            if isinstance(parameters, dict) and "binary_data" in parameters:
                return parameters["binary_data"] is True
    parameters = request.get("parameters")
    return isinstance(parameters, dict) and parameters.get("binary_data_output") is True


def encode(array: np.ndarray) -> bytes:
    """An output tensor's raw bytes, as the extension lays them out."""
    if array.dtype.kind in "OUS":
        parts = []
        for value in array.reshape(-1).tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
