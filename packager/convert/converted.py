"""What every converter returns and is told: plain data, in a module of its own so that flavor modules,
the registry that dispatches to them and the parity gate all import it without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConversionOptions:
    trusted_types: tuple[str, ...] = ()
    allow_pickle: bool = False  # pickle/cloudpickle model files run code when loaded: opt-in only
    opset: dict | None = None  # target opsets the bundle's onnxruntime reads; None: the newest


@dataclass(frozen=True)
class ConvertedModel:
    onnx_bytes: bytes
    signature: dict  # manifest "signature": layout, columns, inputs, outputs
    prediction: dict  # manifest "prediction": default method and its outputs
    flavor: str
    task: str  # classifier | regressor | generic
    converter: dict  # names and versions, recorded in the manifest
    # The original model's answers per predict method, for the parity gate (None: compare with
    # the unoptimized graph instead).
    reference: Callable[[list[dict]], dict] | None = None
    columns: tuple = ()  # mlmodel.Column, for examples and synthesized rows
    native: dict | None = None  # --runtime native: format, trusted types, outputs, requirements
    model_file: str = "model.onnx"  # the file the bundle ships
    model_bytes: bytes = b""  # native models: the file as logged (ONNX graphs are optimized first)
    # Rows at the model's own decision thresholds, built around the given base records (parity gate).
    boundary_records: Callable[[tuple[dict, ...]], tuple[dict, ...]] | None = None
    # Tensor models: the parity gate's request ({"inputs": {name: rows}}), built from the example.
    tensor_check: dict | None = None
