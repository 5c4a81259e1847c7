"""What one `mpack sync` costs, end to end through the CLI, in one run:

    .venv/bin/python bench/sync.py [--runs 3]

A real `mlflow server` (sqlite) on 127.0.0.1 holds a registered LogisticRegression (two versions); moto's server
is AWS. Timed (wall clock of the whole `mpack sync --once --json` process, as a CI step sees it):
  - plan only (`--plan`) before anything is deployed: read the registry and the platform, decide;
  - unchanged: the alias's version already serves — read, decide, nothing applied (median of --runs);
  - new version: the alias moved — build in the model's own environment (dependency caches warm, as a CI
    runner with a cache has them), deploy, smoke test on mpack's local Lambda platform, move the alias, record.
The same figures with the time mpack itself reports (`seconds` in the JSON) show the CLI's start-up share.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.mlflow_server import mlflow_server, register_versions
from tests.helpers.moto import CREDENTIALS, moto_server


def timed_sync(env: dict, config: Path, *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mpack.packager.cli", "sync", "--config", str(config), "--json", *args], capture_output=True, text=True, env={**os.environ, **env}, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sync failed: {result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return wall, json.loads(result.stdout)["releases"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with mlflow_server(root) as uri, moto_server() as endpoint:
            client = register_versions(uri, "bench-sync", strengths=(1.0, 0.1))
            config = root / "mpack.toml"
            config.write_text('[[release]]\nname = "bench"\nmodel = "models:/bench-sync@champion"\nfunction = "bench-sync"\nsmoke-test = "local"\n')
            cache = os.environ.get("MPACK_TEST_CACHE", str(Path.home() / ".cache" / "mpack-tests"))
            # bundles for the Python running this bench, as the tests build them (another one is built and verified in a container)
            env = {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS, "MLFLOW_TRACKING_URI": uri, "MPACK_CACHE_DIR": cache, "MPACK_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}"}
            figures = {"plan only (nothing deployed yet)": [timed_sync(env, config, "--plan")]}
            figures["first deploy (build, deploy, smoke test, alias)"] = [timed_sync(env, config)]
            figures["unchanged (nothing to apply)"] = [timed_sync(env, config) for _ in range(runs)]
            client.set_registered_model_alias("bench-sync", "champion", "2")
            figures["new version (build, deploy, smoke test, alias)"] = [timed_sync(env, config)]
    print(f"mpack sync, one release, {sys.platform}, Python {sys.version.split()[0]}, {os.cpu_count()} cores; median of the runs shown")
    print(f"{'case':52} {'runs':>4} {'wall s':>8} {'mpack s':>8}  outcome")
    for case, results in figures.items():
        walls, own = [w for w, _ in results], [r["seconds"] for _, r in results]
        print(f"{case:52} {len(results):>4} {statistics.median(walls):8.2f} {statistics.median(own):8.2f}  {results[-1][1]['outcome']}")


if __name__ == "__main__":
    main()
