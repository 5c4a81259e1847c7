"""Stage: each unit converted where its model loads (its own environment, or here) — to ONNX, or
shipped as itself when the native runtime is asked for or ONNX cannot express it on an image —
with the rows the parity gate and the measurements will run on."""

from __future__ import annotations

from dataclasses import replace

from mpack.infra.errors import MpackError
from mpack.packager.build_state import CheckRows
from mpack.packager.bundle.dependencies import default_cache_dir
from mpack.packager.convert.converted import ConversionOptions
from mpack.packager.convert.registry import LocalConverter, model_flavor
from mpack.packager.runtimes import requested_runtime
from mpack.packager.source.environment import local_environment, uv_environment
from mpack.packager.source.examples import first_rows, load_sample_data, parity_records, scoring_request, tensor_request
from mpack.packager.source.requirements import logged_environment
from mpack.packager.source.sklearn_model import PICKLE_RISK, is_pickle


def convert_units(state) -> None:
    options = state.options
    conversion = ConversionOptions(trusted_types=options.trusted_types, opset=state.plan.opset, allow_pickle=options.allow_pickle)
    for unit in state.units:
        model = unit.model
        columns = model.columns if model and model.columns else ()
        unit.sample = load_sample_data(options.sample_data, columns) if options.sample_data else None
        unit.example = unit.sample or (model.input_example if model else None)
        if options.allow_pickle and model and model.flavor("sklearn") and is_pickle(model.flavor("sklearn")):
            state.warn(f"loading the model's pickle file with --allow-pickle: {PICKLE_RISK}")
        unit.converter = model_converter(model, state)
        unit.converted = _converted(unit, conversion, state)
        unit.checks = check_rows(unit.converted, unit.sample, unit.example, columns)


def model_converter(model, state):
    """Where the model is loaded: its own environment (uv, cached), or this interpreter once its
    logged Python and framework versions are checked (local). ONNX needs neither."""
    options, progress = state.options, state.progress
    flavor = model_flavor(model) if model is not None else None
    if model is not None and model.custom_pyfunc:
        flavor = "python_function"  # a custom pyfunc: loaded (natively) in its own environment
    if flavor in (None, "onnx"):
        return LocalConverter()
    logged = logged_environment(model.path, model.flavors, model.mlflow_version)
    if options.env_manager == "local":
        local_environment(logged)
        progress.note(f"loading the model here (--env-manager local): {logged.describe()}")
        return LocalConverter()
    from mpack.packager.convert.in_environment import EnvironmentConverter

    environment = uv_environment(logged, options.cache_dir or default_cache_dir(), progress.note, progress.warn)
    progress.note(f"model environment {environment.key}{' (cached)' if environment.cache_hit else ''}: {logged.describe()}")
    return state.scope.enter_context(EnvironmentConverter(environment))


def _converted(unit, conversion: ConversionOptions, state):
    """ONNX, or the model as itself: when a runtime that ships it so is asked for (a custom pyfunc
    under auto too), or on image targets when ONNX cannot express a scikit-learn model."""
    from mpack.packager.convert.onnx import from_onnx_file

    model, options, converter = unit.model, state.options, unit.converter
    requested = requested_runtime(options.runtime)
    as_itself = requested.ships_model_as_itself if requested else bool(model is not None and model.custom_pyfunc)
    if as_itself:
        if model is None:
            raise MpackError(f"--runtime {options.runtime} needs an MLflow scikit-learn model, not a bare .onnx file", f"drop --runtime {options.runtime}")
        converted = converter.convert(model, unit.example, conversion, as_itself=True)
    elif model is None:
        converted = from_onnx_file(unit.resolved.path, None, conversion.opset)
    else:
        try:
            converted = converter.convert(model, unit.example, conversion)
        except MpackError as error:
            if not (requested is None and state.target.kind == "image" and model.flavor("sklearn")):
                raise
            state.progress.warn(f"{error.message}; shipping the model with scikit-learn instead (--runtime native)")
            converted = converter.convert(model, unit.example, conversion, as_itself=True)
    if model is not None and model_flavor(model) != "onnx":
        converted = replace(converted, converter=dict(converted.converter, env_manager=options.env_manager))
    return converted


def check_rows(converted, sample, example, signature_columns) -> CheckRows:
    """The rows the parity gate runs on, and the small request the bundle carries as its example."""
    if converted.signature["layout"] == "tensors":
        if converted.tensor_check:
            rows = len(next(iter(converted.tensor_check["inputs"].values())))
            request, source = converted.tensor_check, f"{rows} tensor rows (the input example, jittered and random)"
        else:
            request, source = tensor_request(converted.signature["inputs"]), "synthesized tensors"
        return CheckRows(None, request, source, first_rows(request))
    origin = "the signature" if signature_columns else "the model's recorded input features (no signature)"
    missing = tuple(c["name"] for c in converted.signature["columns"] if c.get("allow_missing"))
    records, source = parity_records(example, converted.columns, converted.boundary_records, sample, origin, missing)
    return CheckRows(records, None, source, scoring_request(records, converted.columns))
