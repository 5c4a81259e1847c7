"""What the build knows so far, passed from stage to stage (DESIGN.md §13): one ``Unit`` per model in
the bundle, the runtime libraries, and the files the bundle will hold. Stages read and write it;
``build()`` only orders them."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BundleFile:
    """A file of the model folder (model file, mpack.json, what later stages add), by its name in the bundle."""

    name: str
    data: bytes


@dataclass
class Artifact:
    """One way to ship a unit: a runtime's file and the service that answers as the bundle will."""

    runtime: str  # the registry key of the runtime that serves it (packager/runtimes)
    file: str  # its name in the bundle
    data: bytes
    service: Any  # a ScoringService in this process (or the model's environment): parity, measurement, expected answers
    precision: str = ""  # ONNX graphs: fp64 | fp32 | fp16 (what the graph computes in)
    contract: dict = field(default_factory=dict)  # manifest fields of its own (micro: the compiled module's contract)
    checking: Any = None  # the service the parity gate scores with, when not ``service`` (fp16: every intermediate watched)
    probe: Any = None  # fp16: the RangeProbe behind ``checking``; its check() after the gate names an overflow
    near_ties: float = 0.0  # labels may differ where the original's top two probabilities are this close
    required: bool = True  # a failed parity gate stops the build; False: the candidate is dropped, said why
    program: Any = None  # micro: the compiled program (operators, source)
    libraries: tuple[str, ...] = ()  # native: the model's own requirements, shipped instead of onnxruntime
    parity: Any = None  # its ParityReport, once checked
    measured: dict = field(default_factory=dict)  # warm and cold figures, once measured

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.precision}".strip()


@dataclass
class CheckRows:
    """The rows the parity gate and the measurements run on."""

    records: Any  # tabular models: row dicts; None for tensor models
    request: dict | None  # tensor models: {"inputs": {...}}
    source: str  # where the rows come from, for the report
    example: dict  # a small scoring request: the bundle's input example


@dataclass
class Unit:
    """One model of the bundle, from its URI to the artifact that ships."""

    uri: str
    resolved: Any = None  # ResolvedModel
    model: Any = None  # MLmodel (None for a bare .onnx file)
    converter: Any = None  # where the model is loaded: LocalConverter or EnvironmentConverter
    sample: Any = None  # --sample-data rows
    example: Any = None  # the rows conversion and checks start from
    converted: Any = None  # ConvertedModel
    checks: CheckRows | None = None
    candidates: list[Artifact] = field(default_factory=list)
    dropped: list[Artifact] = field(default_factory=list)  # candidates that failed the parity gate (weighed only)
    not_weighed: dict = field(default_factory=dict)  # runtime or candidate label -> why it was not weighed (or dropped)
    artifact: Artifact | None = None  # the one that ships
    choice: dict | None = None  # what was weighed and why (the report's runtime_choice)


@dataclass
class BuildState:
    options: Any  # BuildOptions
    target: Any  # Target
    work: Path
    scope: ExitStack
    progress: Any
    plan: Any  # RuntimePlan: the bundle's Python, arch and libraries, refined once the runtime is chosen
    units: list[Unit]
    other: Any = None  # OtherPython: a container of the bundle's Python, when it is not this interpreter's
    installed: Any = None  # InstalledRuntime: the libraries' site folder
    manifest: dict | None = None
    files: list[BundleFile] = field(default_factory=list)
    packaged: Any = None  # the zip (ZipResult, path) or the image (BuiltImage, recipe)
    verification: Any = None
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def unit(self) -> Unit:
        """The model served (the first unit: a pipeline's entry, until pipelines route between units)."""
        return self.units[0]

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.progress.warn(text)

    def precompile(self):
        """True (this interpreter is the bundle's), another Python's compiler, or False."""
        if self.plan.matches_host:
            return self.installed.precompiled if self.installed is not None else True
        return (self.other.compiler if self.other else None) or False
