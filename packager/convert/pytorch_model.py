"""PyTorch models (mlflow.pytorch: a torch.export program ``model.pt2``, a pickled ``nn.Module`` or
a TorchScript module ``model.pth``) to ONNX, with a dynamic batch axis on every input and output.

PyTorch runs only here, in the model's build environment; the bundle ships onnxruntime and numpy.
The inputs are the signature's tensors (MLflow TensorSpecs), named as the signature names them
(``input`` for one unnamed tensor), so ``{"inputs": [[...]]}``, ``{"inputs": {name: ...}}``,
``instances`` and KServe V2 tensors all reach the graph as MLflow's pyfunc would feed the module.
"""

from __future__ import annotations

import io
import sys
import warnings

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.onnx import tensor_info
from mpack.packager.convert.tensor_models import check_request, input_names, output_names, rename_graph_values, tensor_answers
from mpack.packager.source.mlmodel import MLmodel
from mpack.packager.source.sklearn_model import refuse_pickle

NEWEST_OPSET = 18
IR_FOR_OPSET_18 = 8


def load_pytorch_model(model: MLmodel, options: ConversionOptions):
    """(module or ExportedProgram, format): pt2 files hold no code; .pth files are pickles."""
    import torch

    flavor = model.flavor("pytorch")
    if flavor.get("code"):
        sys.path.insert(0, str(model.path / flavor["code"]))  # the model's own modules, logged beside it
    data = model.path / flavor.get("model_data", "data")
    try:
        if (data / "model.pt2").is_file():
            return torch.export.load(str(data / "model.pt2")), "torch.export"
        file = data / "model.pth"
        if not file.is_file():
            raise MpackError(f"the PyTorch model folder {data.name}/ has neither model.pt2 nor model.pth", "the model directory is incomplete; re-log the model")
        if not options.allow_pickle:
            raise refuse_pickle(f"{data.name}/{file.name}")
        loaded = torch.load(str(file), weights_only=False, map_location="cpu")
    except MpackError:
        raise
    except Exception as exc:  # unpickling and torch.export raise anything the file makes them raise
        raise MpackError(
            f"cannot load the PyTorch model: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            "the file is corrupt or its classes are not importable; log the model's code with code_paths, or build with --env-manager uv",
        ) from None
    return loaded, "torchscript" if isinstance(loaded, torch.jit.ScriptModule) else "nn.Module"


def convert_pytorch(model: MLmodel, records, options: ConversionOptions) -> ConvertedModel:
    import torch

    if not model.tensors:
        raise MpackError(
            "the PyTorch model has no tensor signature, so the shapes and dtypes of its inputs are unknown",
            "log it with an input_example (a numpy array or a dict of them) or a signature of TensorSpecs",
        )
    loaded, kind = load_pytorch_model(model, options)
    inputs, outputs = input_names(model.tensors), output_names(model.tensor_outputs)
    request = check_request(model)
    examples = tuple(torch.from_numpy(array[:2]) for array in request.arrays(model.tensors))
    opset = min((options.opset or {}).get("", NEWEST_OPSET), NEWEST_OPSET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = _export(loaded, kind, examples, inputs, outputs, opset)
    except Exception as exc:  # the exporters raise many types, naming the operator they lack
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise MpackError(
            f"torch.onnx (PyTorch {torch.__version__}) cannot export this {kind} model: {first}",
            "ship the model as itself with --runtime native (image targets), or export it to ONNX yourself and log it with mlflow.onnx",
        ) from None
    graph.ir_version = min(graph.ir_version, IR_FOR_OPSET_18)  # the dynamo exporter writes IR 10, unread by onnxruntime < 1.17
    module = loaded.module() if kind == "torch.export" else loaded
    if hasattr(module, "eval") and kind != "torch.export":
        module.eval()

    def reference(data: dict) -> dict:
        with torch.no_grad():
            answer = module(*[torch.from_numpy(a) for a in request.arrays(model.tensors, data)])
        return tensor_answers(answer, [o.name for o in graph.graph.output])

    signature = {
        "layout": "tensors",
        "columns": [],
        "inputs": [tensor_info(i) for i in graph.graph.input],
        "outputs": [tensor_info(o) for o in graph.graph.output],
    }
    return ConvertedModel(
        onnx_bytes=graph.SerializeToString(),
        signature=signature,
        prediction={"default": "predict", "methods": {"predict": {"outputs": [o.name for o in graph.graph.output]}}},
        flavor="pytorch",
        task="generic",
        converter={"torch": torch.__version__, "format": kind, "exporter": "dynamo" if kind == "torch.export" else "torchscript", "opset": opset},
        reference=reference,
        tensor_check=request.document,
    )


def _export(loaded, kind: str, examples: tuple, inputs: list[str], outputs: list[str], opset: int):
    import onnx
    import torch

    if kind == "torch.export":
        program = torch.onnx.export(loaded, dynamo=True, opset_version=opset, verbose=False)
        graph = program.model_proto
        rename_graph_values(graph, inputs, outputs)
        return graph
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in inputs + outputs}
    torch.onnx.export(loaded, examples, buffer, input_names=inputs, output_names=outputs, dynamic_axes=axes, opset_version=opset, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())
