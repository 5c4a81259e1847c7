"""What `pip install mpack-serverless` costs: size on disk and install time of the core and of
`[all]`, each in a fresh virtual environment, installed from this checkout (not editable) (issue 23).

    .venv/bin/python bench/install.py [--only core|all] [--ref GIT_REF]

Each install: `python -m venv` (with its bundled pip), then `pip install <checkout>[extra]`, timed
wall-clock (pip's wheel and HTTP cache allowed, as on a developer's machine or a CI runner with a
cache: the time is mostly unpacking, byte-compiling and building mpack's own wheel, not downloading).
Size: `du` of site-packages (pip, setuptools and every .pyc pip compiled included) and of the whole
venv (bin/ holds uv's binary). Packages: the distributions in site-packages. `--ref` also measures
the checkout at a git ref (e.g. the commit before the light install) the same way.
Floor: the core at most a third of the 1,109 MB the install took before (issue 23).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE_MB = 1109  # `pip install .` before issue 23: 124 packages (the figure)
FLOOR_RATIO = 1 / 3


def du_mb(path: Path) -> float:
    """Disk usage as `du -s` counts it (blocks, not file lengths)."""
    kib = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    return int(kib) / 1024


def measure(name: str, source: Path, extra: str, work: Path) -> dict:
    venv = work / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    spec = f"{source}[{extra}]" if extra else str(source)
    started = time.perf_counter()
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", spec], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"pip install {spec} failed:\n{done.stderr[-3000:]}")
    site = next((venv / "lib").glob("python3.*/site-packages"))
    return {
        "install": name,
        "site_packages_mb": round(du_mb(site), 1),
        "venv_mb": round(du_mb(venv), 1),
        "packages": len(list(site.glob("*.dist-info"))),
        "seconds": round(seconds, 1),
    }


def checkout_at(ref: str, work: Path) -> Path:
    """The tree at ``ref``, as files (pip installs a folder, not a commit)."""
    folder = work / f"src-{ref}"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def print_table(rows: list[dict]) -> None:
    print(f"\n{'install':<22} {'site-packages MB':>17} {'venv MB':>9} {'packages':>9} {'seconds':>8} {'vs 1,109 MB':>12}")
    for row in rows:
        print(f"{row['install']:<22} {row['site_packages_mb']:>17,.1f} {row['venv_mb']:>9,.1f} {row['packages']:>9} {row['seconds']:>8.1f} {row['site_packages_mb'] / BEFORE_MB:>11.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("core", "all"), help="measure one install")
    parser.add_argument("--ref", help="also measure this git ref's checkout (its plain `pip install .`)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}; fresh venvs, non-editable installs from {ROOT}; pip's cache allowed (not cleared)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpack-install-") as scratch:
        work = Path(scratch)
        for name, extra in (("core", ""), ("all", "all")):
            if args.only in (None, name):
                rows.append(measure(name if not extra else f"[{extra}]", ROOT, extra, work))
                print(f"  measured {rows[-1]['install']}")
        if args.ref:
            rows.append(measure(f"{args.ref[:12]} (before)", checkout_at(args.ref, work), "", work))
    print_table(rows)
    core = next((row for row in rows if row["install"] == "core"), None)
    if core:
        ok = core["site_packages_mb"] <= BEFORE_MB * FLOOR_RATIO
        print(f"\nfloor: core {core['site_packages_mb']:,.0f} MB <= {BEFORE_MB * FLOOR_RATIO:,.0f} MB (a third of {BEFORE_MB:,} MB): {'met' if ok else 'NOT MET'}")
    if args.json:
        print(json.dumps(rows, indent=2))
    if core and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
