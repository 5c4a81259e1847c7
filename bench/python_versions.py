"""The onnxruntime bundle for Lambda's Python 3.13 against the 3.11 one, each in a container of its
Python, in one run (issue 13, part 2); 3.14 (the Lambda zip default) reported beside them.

    .venv/bin/python bench/python_versions.py [--runs 15]

Needs Docker and the two Debian-built images (`mpack base-image` for bookworm, and `--suite trixie
--tag mpack/python:3.13-trixie`; built here when missing). Model: StandardScaler +
GradientBoostingClassifier (200 trees, 20 features), built with --runtime onnx for --python 3.11
and 3.13 (each verified in its container by the build). Cold start: inside each container, fresh
`python3 -I -S` processes import the bundle's handler and answer one direct invocation (process
wall time measured in the container, so Docker's own start-up is not counted), median; the two
interleaved. Floors: 3.13 cold start <= 1.2x the 3.11 one's; 3.13 zip <= 27 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cold_start import BUNDLE_COLD, print_table, unzip, verdict  # noqa: E402
from mpack.infra.docker_engine import connect  # noqa: E402
from mpack.infra.local.python_container import default_image  # noqa: E402
from mpack.packager.image.base_image import build_base_image  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

from examples.train_demo import train_and_register  # noqa: E402

MODEL = "bench-pythons"
FLOORS = {"cold_ratio": 1.2, "zip_mb": 27.0}
SUITES = {"3.11": "bookworm", "3.13": "trixie", "3.14": "forky"}  # 3.14: the Lambda zip default, reported beside
IN_CONTAINER = r"""
import json, subprocess, sys, time
runs, request, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
times = []
for _ in range(runs):
    started = time.perf_counter()
    subprocess.run(["python3", "-I", "-S", "-c", script, "/var/task", request], check=True, capture_output=True, env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def cold_in_container(client, image: str, bundle: Path, request: str, runs: int) -> list[float]:
    output = client.containers.run(
        image,
        ["python3", "-c", IN_CONTAINER, str(runs), request, BUNDLE_COLD],
        remove=True,
        volumes={str(bundle): {"bind": "/var/task", "mode": "ro"}},
        network_disabled=True,
        nano_cpus=int(1e9),
        mem_limit="1769m",
    )
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    client = connect()
    images = {python: build_base_image(default_image(python), suite=suite).tag for python, suite in SUITES.items()}
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-pythons-"))
    print(f"work folder {work}", file=sys.stderr)
    tracking_uri = train_and_register(work / "store", MODEL, trees=200)
    uri = f"models:/{MODEL}@champion"
    built = {python: build(BuildOptions(model=uri, tracking_uri=tracking_uri, output=work / f"onnx-{python}.zip", runtime="onnx", python=python)) for python in SUITES}
    folders = {python: unzip(report.artifact, work / python) for python, report in built.items()}
    example = built["3.11"].manifest["input_example"]["dataframe_split"]
    request = json.dumps({"dataframe_split": {"columns": example["columns"], "data": example["data"][:1]}})
    cold: dict[str, list[float]] = {python: [] for python in SUITES}
    for _ in range(args.runs):  # interleaved, so drift on a noisy machine hits both alike
        for python in SUITES:
            cold[python] += cold_in_container(client, images[python], folders[python], request, 1)
    ms = {python: statistics.median(times) * 1000 for python, times in cold.items()}
    ratio = ms["3.13"] / ms["3.11"]
    zip_mb = built["3.13"].zipped_bytes / 2**20
    runtime = {python: f"onnxruntime {report.manifest['runtime']['onnxruntime']}, numpy {report.manifest['runtime']['numpy']}" for python, report in built.items()}
    print_table(
        f"onnxruntime bundle cold start in a container of its Python (median of {args.runs}, interleaved)",
        [
            (f"Python 3.11 ({runtime['3.11']})", f"{ms['3.11']:.0f} ms", ""),
            (f"Python 3.13 ({runtime['3.13']})", f"{ms['3.13']:.0f} ms", ""),
            ("3.13 / 3.11", f"{ratio:.2f}x", verdict(ratio, FLOORS["cold_ratio"], f"{FLOORS['cold_ratio']}x")),
            (f"Python 3.14, the default ({runtime['3.14']})", f"{ms['3.14']:.0f} ms", f"{ms['3.14'] / ms['3.11']:.2f}x 3.11's"),
        ],
    )
    print_table(
        "zip size",
        [
            ("Python 3.11", f"{built['3.11'].zipped_bytes / 2**20:.1f} MB zipped, {built['3.11'].unzipped_bytes / 2**20:.1f} MB unzipped", ""),
            ("Python 3.13", f"{zip_mb:.1f} MB zipped, {built['3.13'].unzipped_bytes / 2**20:.1f} MB unzipped", verdict(zip_mb, FLOORS["zip_mb"], f"{FLOORS['zip_mb']:.0f} MB")),
            ("Python 3.14", f"{built['3.14'].zipped_bytes / 2**20:.1f} MB zipped, {built['3.14'].unzipped_bytes / 2**20:.1f} MB unzipped", "reported"),
        ],
    )


if __name__ == "__main__":
    main()
