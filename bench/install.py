"""What `pip install mpack-serverless` costs: size on disk and install time of the core and of
`[all]`, each in a fresh virtual environment, installed from this checkout (not editable) (issue 23).

    .venv/bin/python bench/install.py [--only core|all|no-compile|uv] [--ref GIT_REF]

Each install: `python -m venv` (with its bundled pip), then `pip install <checkout>[extra]`, timed
wall-clock (pip's wheel and HTTP cache allowed, as on a developer's machine or a CI runner with a
cache: the time is mostly unpacking, byte-compiling and building mpack's own wheel, not downloading).
Size: `du` of site-packages (pip, setuptools and every .pyc pip compiled included) and of the whole
venv (bin/ holds uv's binary). Packages: the distributions in site-packages. `--ref` also measures
the checkout at a git ref (e.g. the commit before the light install) the same way.
Floor: the core at most a third of the 1,109 MB the install took before (issue 23).

Bytecode: pip compiles a `.pyc` for every module of every package at install time (117 MB of the core);
Python otherwise writes one only for a module it imports, on first import. So the core is measured
three more ways, each in its own fresh `python -m venv` (pip, setuptools and their .pyc from ensurepip
in every row):
  - `core, pip --no-compile`: `pip install --no-compile <checkout>`, no bytecode beyond ensurepip's;
  - `core, pip --no-compile, after use`: that venv once its `mpack` has done the main job: build a
    registered scikit-learn model (trained with this interpreter, which has scikit-learn, into a sqlite
    store; the core venv never holds scikit-learn) for Lambda in the model's own uv environment (kept in
    the mpack cache, outside the venv, warm as on a CI runner with a cache), and answer the bundle's input
    example under `mpack invoke`; the .pyc Python wrote for the modules it imported now count;
  - `core, uv pip install`: uv (a core dependency; what mpack installs model environments with) into the
    same kind of venv; uv compiles nothing at install either.
Only the first `core` row is like for like with the 1,109 MB, which pip measured with eager bytecode;
the exit status follows its floor. PYTHONDONTWRITEBYTECODE is removed from every command's environment
(a user's default: the after-use row would otherwise write nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE_MB = 1109  # `pip install .` before issue 23: 124 packages (the figure)
FLOOR_RATIO = 1 / 3
LIKE_FOR_LIKE = "core"  # pip with eager bytecode, as the 1,109 MB was measured
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # the bundle is verified here, without Docker
MODEL = "bench-install"


def du_mb(path: Path) -> float:
    """Disk usage as `du -s` counts it (blocks, not file lengths)."""
    kib = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    return int(kib) / 1024


def pyc_mb(site: Path) -> float:
    """Disk usage of the bytecode in site-packages (blocks, as du counts them)."""
    return sum(pyc.stat().st_blocks * 512 for pyc in site.rglob("*.pyc")) / 2**20


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*/site-packages"))


def sized(name: str, venv: Path, seconds: float | None) -> dict:
    site = site_packages(venv)
    return {
        "install": name,
        "site_packages_mb": round(du_mb(site), 1),
        "venv_mb": round(du_mb(venv), 1),
        "packages": len(list(site.glob("*.dist-info"))),
        "seconds": None if seconds is None else round(seconds, 1),
        "pyc_mb": round(pyc_mb(site), 1),
    }


def measure(name: str, source: Path, extra: str, work: Path, installer: str = "pip", no_compile: bool = False) -> tuple[dict, Path]:
    venv = work / name.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=ENV)
    spec = f"{source}[{extra}]" if extra else str(source)
    python = str(venv / "bin" / "python")
    if installer == "uv":
        command = [uv_bin(), "pip", "install", "--quiet", "--python", python, spec]
    else:
        command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *(["--no-compile"] if no_compile else []), spec]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=ENV)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{installer} install {spec} failed:\n{done.stderr[-3000:]}")
    return sized(name, venv, seconds), venv


def uv_bin() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except ImportError:
        found = shutil.which("uv")
        if not found:
            sys.exit("uv is not installed here (pip install uv)")
        return found


def use(venv: Path, work: Path) -> dict:
    """The main job with the venv's own `mpack`: build a registered scikit-learn model, answer its input example."""
    store = work / "mlflow"
    train = "import sys\nfrom examples.train_demo import train_and_register\nprint(train_and_register(__import__('pathlib').Path(sys.argv[1]), sys.argv[2], trees=20))"
    trained = subprocess.run([sys.executable, "-c", train, str(store), MODEL], cwd=ROOT, capture_output=True, text=True, check=False, env=ENV)
    if trained.returncode != 0:
        sys.exit(f"training the model with {sys.executable} failed (it needs scikit-learn: pip install -e '.[test]'):\n{trained.stderr[-3000:]}")
    tracking_uri = trained.stdout.strip().splitlines()[-1]
    cache = os.environ.get("MPACK_TEST_CACHE", str(Path.home() / ".cache" / "mpack-tests"))
    env = {**ENV, "MPACK_CACHE_DIR": cache, "NO_COLOR": "1"}
    bundle = work / f"{MODEL}.zip"
    mpack = str(venv / "bin" / "mpack")
    steps = {
        "build": [mpack, "build", "--model", f"models:/{MODEL}@champion", "--tracking-uri", tracking_uri, "--target", "lambda", "--python", HOST_PYTHON, "--output", str(bundle)],
        "invoke": [mpack, "invoke", str(bundle)],
    }
    seconds = {}
    for step, command in steps.items():
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, stdin=subprocess.DEVNULL)
        seconds[step] = round(time.perf_counter() - started, 1)
        if done.returncode != 0:
            sys.exit(f"mpack {step} in the core venv failed:\n{done.stderr[-3000:]}")
        if step == "invoke":
            predictions = len(json.loads(done.stdout)["predictions"])
    return {"build_s": seconds["build"], "invoke_s": seconds["invoke"], "predictions": predictions}


def checkout_at(ref: str, work: Path) -> Path:
    """The tree at ``ref``, as files (pip installs a folder, not a commit)."""
    folder = work / f"src-{ref}"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def print_table(rows: list[dict]) -> None:
    width = max(22, *(len(row["install"]) for row in rows))
    print(f"\n{'install':<{width}} {'site-packages MB':>17} {'venv MB':>9} {'packages':>9} {'seconds':>8} {'vs 1,109 MB':>12}")
    for row in rows:
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
        print(f"{row['install']:<{width}} {row['site_packages_mb']:>17,.1f} {row['venv_mb']:>9,.1f} {row['packages']:>9} {seconds:>8} {row['site_packages_mb'] / BEFORE_MB:>11.0%}")


BYTECODE = {
    "core": "like for like with the 1,109 MB: pip compiled every module's .pyc at install",
    "core, pip --no-compile": "bytecode left to first use (ensurepip's pip and setuptools .pyc only)",
    "core, pip --no-compile, after use": "bytecode of the modules `mpack build` and `mpack invoke` imported, written on first import",
    "core, uv pip install": "bytecode left to first use (uv compiles nothing at install)",
}


def print_floor(rows: list[dict]) -> None:
    floor = BEFORE_MB * FLOOR_RATIO
    cores = [row for row in rows if row["install"] in BYTECODE]
    if not cores:
        return
    width = max(len(row["install"]) for row in cores)
    print(f"\nfloor: core <= {floor:,.0f} MB (a third of {BEFORE_MB:,} MB, pip with eager bytecode)")
    for row in cores:
        verdict = "met" if row["site_packages_mb"] <= floor else "NOT MET"
        print(f"  {row['install']:<{width}}  {row['site_packages_mb']:>5,.0f} MB  {verdict:<7}  .pyc {row['pyc_mb']:>5,.1f} MB: {BYTECODE[row['install']]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("core", "all", "no-compile", "uv"), help="measure one install (no-compile: with its after-use row)")
    parser.add_argument("--ref", help="also measure this git ref's checkout (its plain `pip install .`)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}; fresh venvs, non-editable installs from {ROOT}; pip's and uv's caches allowed (not cleared)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpack-install-") as scratch:
        work = Path(scratch)
        for name, extra in (("core", ""), ("all", "all")):
            if args.only in (None, name):
                rows.append(measure(name if not extra else f"[{extra}]", ROOT, extra, work)[0])
                print(f"  measured {rows[-1]['install']}")
        if args.only in (None, "no-compile"):
            row, venv = measure("core, pip --no-compile", ROOT, "", work, no_compile=True)
            rows.append(row)
            print(f"  measured {row['install']}")
            used = use(venv, work)
            rows.append({**sized("core, pip --no-compile, after use", venv, None), **used})
            print(f"  measured {rows[-1]['install']}: mpack build {used['build_s']} s, mpack invoke {used['invoke_s']} s ({used['predictions']} predictions)")
        if args.only in (None, "uv"):
            rows.append(measure("core, uv pip install", ROOT, "", work, installer="uv")[0])
            print(f"  measured {rows[-1]['install']}")
        if args.ref:
            rows.append(measure(f"{args.ref[:12]} (before)", checkout_at(args.ref, work), "", work)[0])
    print_table(rows)
    print_floor(rows)
    core = next((row for row in rows if row["install"] == LIKE_FOR_LIKE), None)
    if args.json:
        print(json.dumps(rows, indent=2))
    if core and core["site_packages_mb"] > BEFORE_MB * FLOOR_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
