"""The gpu image, built for real on this machine (no GPU here): its size by component, and what it
says when started without a GPU (issue 12, part 1).

    .venv/bin/python bench/gpu_image.py [--precision fp16]

Model: the MLP of bench/batching.py (256 -> 4096 -> 4096 -> 10, float32, 21 MB of weights), built with
`mpack build --model ./mlp.onnx --target gpu --base-image mpack/python:3.11-bookworm` (onnxruntime-gpu
and exactly its [cuda,cudnn] wheels from PyPI, about 1.5 GB to download once). The build verifies the
image on the CPU. Then the image is started as a user would start it on a machine without a GPU, and
its readiness answer and start-up log are shown: it must refuse to serve from the CPU and name why.
Also reported: the same libraries on NVIDIA's CUDA + cuDNN runtime base image, the way users build GPU
images today, using the size given with --nvidia-base-mb (the published size of that image for the same
CUDA major; none can be pulled here, so it is an input, stated beside the result).

Disk: it leaves the image mpack-bench/mlp:1-gpu[-fp16] (~2.7 GB) and the gpu runtime in the runtime cache
(~2.4 GB under ~/.cache/mpack/runtime); `docker rmi mpack-bench/mlp:1-gpu[-fp16]` and removing that cache
entry give the space back (on this machine they once filled the disk under a following CI run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batching import mlp_model  # noqa: E402
from bench.cold_start import print_table, verdict  # noqa: E402
from mpack.infra.docker_engine import connect  # noqa: E402
from mpack.packager.image.base_image import build_base_image  # noqa: E402
from mpack.packager.pipeline import BuildOptions, build  # noqa: E402

FLOOR_SHARE = 0.40  # the gpu image <= 40 % of the same model on NVIDIA's CUDA+cuDNN runtime base with pip's CUDA wheels


def readiness_without_gpu(tag: str) -> tuple[int, str, str]:
    client = connect()
    container = client.containers.run(tag, detach=True, ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            container.reload()
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get("8080/tcp")
            if bindings:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{bindings[0]['HostPort']}/v2/health/ready", timeout=5) as answer:
                        return answer.status, answer.read().decode(), container.logs().decode()
                except urllib.error.HTTPError as error:
                    return error.code, error.read().decode(), container.logs().decode()
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
            time.sleep(0.2)
        raise SystemExit("the gpu image did not answer within 60 s")
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nvidia-base-mb", type=float, default=None, help="published size of nvidia/cuda:<major>-cudnn-runtime for the same CUDA major, MB")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="build the image with --precision fp16 (weights halved, checked at fp16's tolerance)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpack-bench-gpu-"))
    model = work / "mlp.onnx"
    mlp_model(model)
    base = build_base_image().tag
    tag = "mpack-bench/mlp:1-gpu" + ("-fp16" if args.precision == "fp16" else "")
    report = build(BuildOptions(model=str(model), target="gpu", base_image=base, tag=tag, python=f"{sys.version_info[0]}.{sys.version_info[1]}", precision=args.precision))
    image = report.image
    components = image["components"]
    mb = {name: size / 2**20 for name, size in components.items()}
    rows = [(f"  {name}", f"{size:8.1f} MB", "") for name, size in mb.items()]
    rows.append(("  whole image (engine's size)", f"{image['size_bytes'] / 2**20:8.1f} MB", ""))
    rows.append(("runtime", f"onnxruntime-gpu {report.manifest['runtime']['onnxruntime']}, CUDA {report.manifest['runtime']['cuda']}, {args.precision}", ""))
    worst = max((o["max_scaled_diff"] or 0.0 for o in report.parity["outputs"]), default=0.0)
    rows.append(("parity (this machine's CPU)", f"{report.parity['rows']} rows, max difference {worst:.2g}", f"tolerance {report.parity['tolerance']:g}"))
    print_table(f"{image['tag']} by component", rows)
    status, body, log = readiness_without_gpu(image["tag"])
    said = [line for line in log.splitlines() if line.startswith("mpack:")]
    print_table("started without a GPU (docker run, no --gpus)", [("/v2/health/ready", f"{status} {body[:150]}", "503 wanted"), ("start-up log", said[-1][:150] if said else "(none)", "")])
    if args.nvidia_base_mb:
        theirs = args.nvidia_base_mb + mb["deps"] + mb.get("cuda", 0) + mb["model"] + mb["app"]
        share = image["size_bytes"] / 2**20 / theirs
        print_table(
            "against NVIDIA's CUDA+cuDNN runtime base with pip's CUDA wheels (the published base size is an input)",
            [
                ("  theirs: base + the same layers", f"{theirs:8.1f} MB", f"base {args.nvidia_base_mb:.0f} MB as given"),
                ("  ours / theirs", f"{share:.2f}", verdict(share, FLOOR_SHARE, f"{FLOOR_SHARE:.2f}")),
            ],
        )
    print(json.dumps({"components_mb": mb, "ready_status": status}), file=sys.stderr)


if __name__ == "__main__":
    main()
