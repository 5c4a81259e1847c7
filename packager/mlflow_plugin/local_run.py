"""``mlflow deployments run-local``: build the model as the target would, then run ``mpack serve`` on the
bundle (a Lambda zip on the local Lambda platform, with the deployment's alias answered; an azure zip on
the local Functions host). It prints its URLs and serves until Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from mpack.packager.mlflow_plugin.bundles import BuildSettings, build_bundle
from mpack.packager.mlflow_plugin.config_keys import parse
from mpack.packager.mlflow_plugin.errors import as_mlflow_errors, refuse


def serve_locally(target: str, name: str, model_uri: str, flavor, config, keys, build_settings) -> int:
    """``keys``: what -C accepts; ``build_settings(values)``: the BuildSettings from the typed values."""
    values = parse(config, keys, target)
    with as_mlflow_errors(target):
        from mpack.packager.progress import RichProgress

        settings: BuildSettings = build_settings(values)
        bundle = build_bundle(model_uri, settings, RichProgress())
    if flavor not in (None, "python_function", bundle.flavor):
        raise refuse(target, f"flavor {flavor} is not what mpack serves for {model_uri} ({bundle.flavor}, through the pyfunc scoring protocol)")
    command = [sys.executable, "-m", "mpack.packager.cli", "serve", str(bundle.artifact), "--port", str(values["port"]), "--host", values["host"]]
    if settings.target != "azure":
        function, _, alias = name.partition(":")
        command += ["--name", function, "--alias", alias or values.get("alias") or "live"]
    if settings.cache_dir:
        command += ["--cache-dir", str(settings.cache_dir)]
    print(f"{target}: serving {bundle.model_uri} ({bundle.artifact}) with mpack serve", file=sys.stderr, flush=True)
    process = subprocess.Popen(command)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate()) if main else None  # mpack serve stops with us
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached mpack serve too: it stops its instances
        return process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()
        if main:
            signal.signal(signal.SIGTERM, previous)
