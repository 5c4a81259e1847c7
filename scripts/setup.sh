#!/usr/bin/env bash
# Create .venv and install mpack's core (what `pip install mpack-serverless` brings); with --test,
# `.[test]`: every extra (azure, local) and the test tools (the flavors' frameworks, full MLflow, test
# clients). Safe to re-run; pip's wheel cache makes later runs fast. On a fresh Debian machine,
# installs python3-venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  echo "==> installing python3-venv (Debian)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv python3-pip
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
TARGET="."; WHAT="mpack (its core install)"
if [ "${1:-}" = "--test" ]; then TARGET=".[test]"; WHAT="mpack with every extra and its test tools"; fi
echo "==> installing $WHAT into .venv (progress below)"
.venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -q --upgrade pip
.venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -e "$TARGET" 2>&1 \
  | grep -E --line-buffered "^(Collecting|Successfully|ERROR)" || true
.venv/bin/python -c "import mpack.packager.cli" || { echo "mpack failed to install" >&2; exit 1; }
echo "==> mpack installed: $(.venv/bin/mpack --help >/dev/null && echo ok)"
