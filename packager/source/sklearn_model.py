"""Loading a scikit-learn model from an MLflow model folder (skops, pickle or cloudpickle).

Loading a pickle runs code from the file: mpack only loads the model the user pointed at, and
only at build time. skops files are loaded with an explicit allow-list, as MLflow does: skops's
own safe types, the types the model's author declared when logging it (``skops_trusted_types``
in MLmodel), and whatever the user names with ``--trust-type``. Nothing else is trusted.
"""

from __future__ import annotations

from pathlib import Path

from mpack.infra.errors import MpackError

PICKLE_FORMATS = ("pickle", "cloudpickle")
PICKLE_RISK = "loading a pickle runs any code its author put in it, on this machine, with your permissions"


def is_pickle(flavor: dict) -> bool:
    return flavor.get("serialization_format", "pickle") in PICKLE_FORMATS


def refuse_pickle(file_name: str) -> MpackError:
    return MpackError(
        f"model file {file_name} is a pickle, and {PICKLE_RISK}",
        "if you trust where this model came from, pass --allow-pickle (or set allow_pickle = true under [tool.mpack] in pyproject.toml); "
        "better, log it with serialization_format='skops' or as ONNX, which never run code",
    )


def load_sklearn_model(model_dir: Path, flavor: dict, trusted_types: tuple[str, ...] = (), allow_pickle: bool = False):
    file = model_dir / flavor.get("pickled_model", "model.pkl")
    if not file.is_file():
        raise MpackError(f"model file {file.name} named in MLmodel is missing from {model_dir}", "the model directory is incomplete; re-log the model")
    serialization = flavor.get("serialization_format", "pickle")
    if serialization in PICKLE_FORMATS and not allow_pickle:
        raise refuse_pickle(file.name)
    try:
        if serialization == "skops":
            return _load_skops(file, tuple(flavor.get("skops_trusted_types") or ()) + trusted_types)
        if serialization in ("pickle", "cloudpickle"):
            import cloudpickle  # reads plain pickles too

            with open(file, "rb") as handle:
                return cloudpickle.load(handle)
    except MpackError:
        raise
    except Exception as exc:  # unpickling can raise anything the file makes it raise
        raise MpackError(
            f"cannot read model file {file.name}: {type(exc).__name__}: {str(exc)[:200]}",
            "the file is corrupt, truncated or needs a package that is not installed; re-log the model or install the package",
        ) from None
    raise MpackError(f"unknown sklearn serialization format {serialization!r} in MLmodel", "supported: skops, pickle, cloudpickle")


def _load_skops(file: Path, trusted_types: tuple[str, ...]):
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=str(file))
    refused = [t for t in untrusted if t not in trusted_types]
    if refused:
        raise MpackError(
            f"model file {file.name} contains types mpack does not trust by default: {', '.join(refused)}",
            "if you trust this model, add --trust-type for each of them",
        )
    return skops.io.load(str(file), trusted=list(untrusted))
