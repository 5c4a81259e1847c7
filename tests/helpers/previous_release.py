"""The previous release of mpack, run from its own source: its commit's tree extracted with ``git
archive`` and its command line started with this environment's Python, so a test can build a bundle
exactly as that release wrote it (manifest schema 1) and check that today's mpack still runs it.

mpack is installed editable here, and the editable finder would import today's code whatever the
path says; a small bootstrap drops it and puts the old tree first, and says which code it imported.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

PREVIOUS_RELEASE = "f1e3de4"  # the last commit that wrote manifest schema 1
REPOSITORY = Path(__file__).resolve().parents[2]
WINGS = ("packager", "handlers", "infra", "templates")  # the folders installed as mpack.<wing>
MARKER = "previous mpack from "

BOOTSTRAP = f"""
import sys
site = sys.argv.pop(1)
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path[:] = [site] + [p for p in sys.path if "__editable__" not in p]
import mpack
import mpack.packager.cli.app as app
assert list(mpack.__path__)[0].startswith(site) and app.__file__.startswith(site), (list(mpack.__path__), app.__file__)
print({MARKER!r} + app.__file__, file=sys.stderr, flush=True)
sys.argv[0] = "mpack"
app.main()
"""


class PreviousRelease:
    """The release's source under ``folder``: ``tree`` (its files) and ``site`` (mpack/<wing> links)."""

    def __init__(self, folder: Path, commit: str = PREVIOUS_RELEASE) -> None:
        self.commit, self.tree, self.site = commit, folder / "tree", folder / "site"
        archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", "--format=tar", commit], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(self.tree, filter="data")
        (self.site / "mpack").mkdir(parents=True)
        for wing in WINGS:
            (self.site / "mpack" / wing).symlink_to(self.tree / wing, target_is_directory=True)

    def mpack(self, *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        """Its `mpack` command line; its own subprocesses import it too (PYTHONPATH, ahead of the editable finder)."""
        path = os.pathsep.join([str(self.site), *filter(None, [os.environ.get("PYTHONPATH")])])
        environment = {**os.environ, **(env or {}), "PYTHONPATH": path}
        command = [sys.executable, "-c", BOOTSTRAP, str(self.site), *args]
        return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout, input="", check=False)

    def ran_it(self, result: subprocess.CompletedProcess) -> bool:
        """Whether ``result`` came from this release's code, not today's."""
        return f"{MARKER}{self.site}" in result.stderr
