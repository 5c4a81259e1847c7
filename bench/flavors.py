"""Every flavor in one run: build time (cold and cached model environment, and --env-manager local),
zip size, bundle cold start against MLflow's loader, warm one-row latency against the framework.

    .venv/bin/python bench/flavors.py [--runs 5] [--mlflow-runs 3] [--only sklearn,xgboost,...]

Models are trained here and saved as MLflow model folders. For each:
  build, cold env   - `mpack build` (its own process, as a user runs it) after deleting the model's
                      environment from mpack's cache (uv's own wheel cache stays warm: a first build
                      on a new machine also downloads)
  build, cached env - the same build again
  build, local      - `--env-manager local` (this interpreter; the floor's baseline)
  cold start        - fresh `python -I -S` process importing the bundle's handler and answering one
                      direct invocation (median), against a fresh process running
                      `mlflow.pyfunc.load_model(folder)` + predict (median)
  warm latency      - one row, the handler called in-process (p50), against the framework's own
                      predict on a one-row DataFrame/array in this process (p50)
Floors (issue 10): ONNX flavors' cold start >= 10x faster than MLflow's and zips <= 50 MB; a
cached-environment rebuild <= 1.5x a local build.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cold_start import BUNDLE_COLD, WARM, print_table, timed_runs, unzip, verdict  # noqa: E402
from mpack.handlers.manifest import Manifest  # noqa: E402

FLOORS = {"cold_ratio": 10.0, "zip_mb": 50.0, "cached_vs_local": 1.5}
MLFLOW_COLD = r"""
import json, sys, numpy as np, pandas as pd, mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
request = json.loads(sys.argv[2])
if "inputs" in request:
    model.predict(np.asarray(request["inputs"], dtype=np.float32))
else:
    split = request["dataframe_split"]
    model.predict(pd.DataFrame(split["data"], columns=split["columns"]))
"""


def tabular(rows: int = 800, seed: int = 0):
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(rows, 20, n_informative=10, random_state=seed)
    return pd.DataFrame(np.round(x, 3), columns=[f"f{i:02d}" for i in range(20)]), y


def save_models(folder: Path, only: set[str]) -> dict:
    """name -> (model folder, one-row framework predict callable)."""
    import mlflow

    frame, labels = tabular()
    row = frame.head(1)
    saved = {}
    if "sklearn" in only:
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(100, max_depth=8, random_state=0).fit(frame, labels)
        mlflow.sklearn.save_model(model, folder / "sklearn", input_example=frame.head(3), skops_trusted_types=["sklearn.tree._tree.Tree"])
        saved["sklearn"] = lambda: model.predict(row)
    if "xgboost" in only:
        import xgboost

        xgb_model = xgboost.XGBClassifier(n_estimators=200, max_depth=5).fit(frame, labels)
        mlflow.xgboost.save_model(xgb_model, folder / "xgboost", input_example=frame.head(3))
        saved["xgboost"] = lambda: xgb_model.predict(row)
    if "lightgbm" in only:
        import lightgbm

        lgb_model = lightgbm.LGBMClassifier(n_estimators=200, verbose=-1).fit(frame, labels)
        mlflow.lightgbm.save_model(
            lgb_model, folder / "lightgbm", input_example=frame.head(3), skops_trusted_types=["lightgbm.sklearn.LGBMClassifier", "lightgbm.basic.Booster", "collections.OrderedDict"]
        )
        saved["lightgbm"] = lambda: lgb_model.predict(row)
    if "catboost" in only:
        import catboost

        cb_model = catboost.CatBoostClassifier(iterations=200, depth=6, verbose=0, random_seed=0, allow_writing_files=False).fit(frame, labels)
        mlflow.catboost.save_model(cb_model, folder / "catboost", input_example=frame.head(3))
        saved["catboost"] = lambda: cb_model.predict(row)
    if "pytorch" in only:
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2), torch.nn.Softmax(dim=1)).eval()
        example = frame.head(3).to_numpy(dtype="float32")
        mlflow.pytorch.save_model(net, folder / "pytorch", input_example=example)
        one = torch.from_numpy(example[:1])

        def torch_predict():
            with torch.no_grad():
                return net(one)

        saved["pytorch"] = torch_predict
    return {name: (folder / name, predict) for name, predict in saved.items()}


def timed_build(model: Path, output: Path, cache: Path, env_manager: str) -> tuple[float, dict]:
    """`mpack build` in its own process, as a user or a CI step runs it: (seconds, JSON report + manifest)."""
    command = [sys.executable, "-m", "mpack.packager.cli", "build", "--model", str(model), "--output", str(output), "--cache-dir", str(cache), "--env-manager", env_manager, "--allow-pickle", "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"mpack build failed for {model.name}:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    with zipfile.ZipFile(output) as archive:
        report["manifest"] = Manifest.from_bytes(archive.read("mpack.json")).served()
    return elapsed, report


def warm_framework(predict, samples: int = 2000) -> float:
    for _ in range(100):
        predict()
    times = []
    for _ in range(samples):
        started = time.perf_counter_ns()
        predict()
        times.append(time.perf_counter_ns() - started)
    return sorted(times)[len(times) // 2] / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mlflow-runs", type=int, default=3)
    parser.add_argument("--only", default="sklearn,xgboost,lightgbm,catboost,pytorch")
    args = parser.parse_args()
    cache = Path(os.environ.get("MPACK_BENCH_CACHE", Path.home() / ".cache" / "mpack-bench"))
    if Path("/opt/wheels").is_dir():
        os.environ.setdefault("UV_FIND_LINKS", "/opt/wheels")  # this machine's CPU PyTorch wheels
    isolated = [sys.executable, "-I", "-S", "-c"]
    lambda_env = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpack-bench-flavors-") as folder:
        work = Path(folder)
        models = save_models(work / "models", set(args.only.split(",")))
        for name, (model_dir, framework_predict) in models.items():
            print(f"building {name} ...", file=sys.stderr, flush=True)
            shutil.rmtree(cache / "envs", ignore_errors=True)
            cold_s, _ = timed_build(model_dir, work / f"{name}-cold.zip", cache, "uv")
            cached_s, report = timed_build(model_dir, work / f"{name}.zip", cache, "uv")
            local_s, _ = timed_build(model_dir, work / f"{name}-local.zip", cache, "local")
            bundle = unzip(Path(report["artifact"]["path"]), work / f"{name}-bundle")
            request = report["manifest"]["input_example"]
            one_row = json.loads(json.dumps(request))
            if "inputs" in one_row:
                one_row["inputs"] = {k: v[:1] for k, v in one_row["inputs"].items()}
            else:
                one_row["dataframe_split"]["data"] = one_row["dataframe_split"]["data"][:1]
            cold = statistics.median(timed_runs(isolated + [BUNDLE_COLD, str(bundle), json.dumps(one_row)], args.runs, lambda_env)) * 1000
            mlflow_request = {"inputs": list(one_row["inputs"].values())[0]} if "inputs" in one_row else one_row
            mlflow_cold = statistics.median(timed_runs([sys.executable, "-c", MLFLOW_COLD, str(model_dir), json.dumps(mlflow_request)], args.mlflow_runs)) * 1000
            warm = json.loads(subprocess.run(isolated + [WARM, str(bundle), json.dumps(one_row)], capture_output=True, text=True, env=lambda_env, check=True).stdout)
            framework_us = warm_framework(framework_predict)
            zipped_mb = report["artifact"]["zipped_bytes"] / 2**20
            rows += [
                (
                    f"{name}: build, cold / cached env / local",
                    f"{cold_s:.1f} s / {cached_s:.1f} s / {local_s:.1f} s",
                    verdict(cached_s / local_s, FLOORS["cached_vs_local"], f"{FLOORS['cached_vs_local']}x local", True) + f" ({cached_s / local_s:.2f}x)",
                ),
                (f"{name}: zip zipped / unzipped", f"{zipped_mb:.1f} MB / {report['artifact']['unzipped_bytes'] / 2**20:.1f} MB", verdict(zipped_mb, FLOORS["zip_mb"], f"{FLOORS['zip_mb']:.0f} MB")),
                (
                    f"{name}: cold start, bundle / MLflow",
                    f"{cold:.0f} ms / {mlflow_cold:.0f} ms",
                    verdict(mlflow_cold / cold, FLOORS["cold_ratio"], f"{FLOORS['cold_ratio']:.0f}x", at_most=False) + f" ({mlflow_cold / cold:.1f}x)",
                ),
                (f"{name}: warm one row, bundle / framework", f"p50 {warm['p50_us']:.0f} us / {framework_us:.0f} us", f"{framework_us / warm['p50_us']:.1f}x"),
            ]
    print_table(f"mpack flavors benchmark ({args.runs} bundle cold starts, {args.mlflow_runs} MLflow loads per flavor)", rows)


if __name__ == "__main__":
    main()
