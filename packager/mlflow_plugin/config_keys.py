"""The ``-C key=value`` settings: every value arrives as a string from MLflow's CLI (or as a Python value
from ``get_deploy_client``), so each key has a type, a default and a check; an unknown key is refused
naming the valid ones, so a typo never deploys with a default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Key:
    name: str  # as written after -C
    kind: str  # str | int | float | bool | path | list (comma-separated) | one of ``choices``
    default: object
    help: str
    choices: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    def describe(self) -> str:
        kind = " | ".join(self.choices) if self.choices else self.kind
        default = "" if self.default in (None, ()) else f" [default: {self.default}]"
        return f"  {self.name} ({kind}){default}: {self.help}"


def parse(config: dict | None, keys: tuple[Key, ...], target: str) -> dict:
    """{field name: typed value} for every key, defaults filled in."""
    known = {key.name: key for key in keys}
    given = dict(config or {})
    unknown = sorted(name for name in given if name not in known)
    if unknown:
        raise MlflowException(f"{target}: unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}", INVALID_PARAMETER_VALUE)
    values = {key.field: key.default for key in keys}
    for name, value in given.items():
        values[known[name].field] = _typed(known[name], value, target)
    return values


def _typed(key: Key, value, target: str):
    if value is None:
        return key.default
    text = str(value).strip()
    try:
        if key.choices:
            if text not in key.choices:
                raise ValueError(f"not one of {', '.join(key.choices)}")
            return text
        if key.kind == "int":
            if isinstance(value, float) or not text.lstrip("-").isdigit():
                raise ValueError("not a whole number")
            return int(text)
        if key.kind == "float":
            return float(text)
        if key.kind == "bool":
            if isinstance(value, bool):
                return value
            if text.lower() not in TRUE + FALSE:
                raise ValueError("not true or false")
            return text.lower() in TRUE
        if key.kind == "list":
            items = value if isinstance(value, (list, tuple)) else text.split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if key.kind == "path":
            return Path(text).expanduser()
        if not text:
            raise ValueError("empty")
        return text
    except ValueError as exc:
        kind = " | ".join(key.choices) if key.choices else key.kind
        raise MlflowException(f"{target}: -C {key.name}={value}: {exc} (expected {kind})", INVALID_PARAMETER_VALUE) from None


def keys_help(keys: tuple[Key, ...]) -> str:
    return "\n".join(key.describe() for key in keys)


# the build's keys, shared by every target (the build runs in the model's own environment by default)
BUILD_KEYS = (
    Key("env-manager", "str", "uv", "where the model is loaded and converted: its own logged environment (uv) or this interpreter (local)", ("uv", "local")),
    Key("allow-pickle", "bool", False, "load a pickle/cloudpickle model file (runs code from it)"),
    Key("trust-type", "list", (), "types to allow when loading a skops model file, comma-separated"),
    Key("python", "str", None, "the bundle's Python (3.11-3.14) [default: $MPACK_PYTHON, else mpack build's]"),
    Key("runtime", "str", "auto", "onnx, micro, native or auto, as mpack build --runtime", ("auto", "onnx", "micro", "native")),
    Key("tolerance", "float", None, "largest accepted difference between the original and the converted model [default: 1e-5]"),
    Key("cache-dir", "path", None, "runtime wheels, and the bundles built here (reused per registry version) [default: $MPACK_CACHE_DIR, else ~/.cache/mpack]"),
)
