"""Converting in the model's own environment: a worker process started with that environment's
interpreter, asked over a pipe (see env_worker.py). It stays alive for the parity stage, which asks
it for the original model's answers and for rows at the model's thresholds.

The worker imports mpack's conversion modules from this installation (not installed there: the
environment holds only the model's libraries and the converters), so no CLI or platform library is
needed beside the model, and the code that converts is the code that was tested.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from mpack.infra.errors import MpackError
from mpack.packager.convert.converted import ConversionOptions, ConvertedModel
from mpack.packager.convert.env_worker import decode_answers, from_wire, plain
from mpack.packager.source.environment import ModelEnvironment
from mpack.packager.source.mlmodel import MLmodel

_BOOTSTRAP = """
import importlib.util, json, sys, types
root = types.ModuleType("mpack"); root.__path__ = []; sys.modules["mpack"] = root
for name, folder in json.loads(sys.argv[1]).items():
    spec = importlib.util.spec_from_file_location("mpack." + name, folder + "/__init__.py", submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec); sys.modules[spec.name] = module; spec.loader.exec_module(module); setattr(root, name, module)
from mpack.packager.convert.env_worker import serve
serve()
"""


def _package_folders() -> dict:
    import mpack.handlers
    import mpack.infra
    import mpack.packager

    return {name: str(Path(module.__path__[0])) for name, module in (("packager", mpack.packager), ("infra", mpack.infra), ("handlers", mpack.handlers))}


class EnvironmentConverter:
    """Conversion, reference answers and threshold rows, computed in the model's environment."""

    def __init__(self, environment: ModelEnvironment) -> None:
        self.environment = environment
        self._log = tempfile.TemporaryFile(mode="w+", prefix="mpack-env-")
        self._process = subprocess.Popen(
            [str(environment.python), "-B", "-c", _BOOTSTRAP, json.dumps(_package_folders())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
        )

    def __enter__(self) -> EnvironmentConverter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def convert(self, model: MLmodel, records, options: ConversionOptions, as_itself: bool = False) -> ConvertedModel:
        request = {
            "command": "convert",
            "model_dir": str(model.path),
            "records": list(records) if records is not None else None,
            "options": {"trusted_types": list(options.trusted_types), "allow_pickle": options.allow_pickle, "opset": options.opset},
            "as_itself": as_itself,
        }
        return from_wire(self._ask(request), self._reference, self._boundary_records)

    def scoring(self, manifest: dict, model_bytes: bytes):
        """The converted model scored in its own environment (see env_worker.score)."""
        return _RemoteScoring(self, manifest)

    def _reference(self, records) -> dict:
        return decode_answers(self._ask({"command": "reference", "records": records if isinstance(records, dict) else list(records)}))

    def _boundary_records(self, base) -> tuple:
        return tuple(self._ask({"command": "boundary_records", "records": list(base)}))

    def _ask(self, request: dict):
        try:
            self._process.stdin.write(json.dumps(request, default=plain) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise MpackError(
                f"the model's environment ({self.environment.python}) stopped while loading or converting the model: {self._log_tail()}",
                "the model's libraries crashed or the environment is broken; delete it from the mpack cache (envs/) to rebuild it, or try --env-manager local",
            )
        reply = json.loads(line)
        if "error" in reply:
            raise MpackError(reply["error"]["message"], reply["error"]["hint"])
        if "crash" in reply:
            raise MpackError(
                f"loading or converting the model failed in its own environment: {reply['crash'][:600]}",
                "if the model needs a package its requirements.txt does not name, add it when logging (pip_requirements / extra_pip_requirements)",
            )
        return reply["ok"]

    def _log_tail(self) -> str:
        self._process.poll()
        self._log.seek(0)
        text = " ".join(self._log.read().split())
        return text[-800:] or f"exit status {self._process.returncode}"


class _RemoteScoring:
    """``score_document`` answered by the environment's worker, as a protocol Response."""

    def __init__(self, converter: EnvironmentConverter, manifest: dict) -> None:
        self.converter = converter
        self.manifest = manifest

    def score_document(self, document):
        from mpack.handlers.protocol import Response

        answer = self.converter._ask({"command": "score", "manifest": self.manifest, "document": document})
        return Response(answer["status"], answer["body"], answer["rows"])
