#!/usr/bin/env bash
# Azurite (Microsoft's Azure Storage emulator, from npm) for the Azure deploy tests: installed once
# into the test cache the suite reads (MPACK_TEST_CACHE, default ~/.cache/mpack-tests). On a fresh
# Debian machine, installs Node.js and npm first.
set -euo pipefail
CACHE="${MPACK_TEST_CACHE:-$HOME/.cache/mpack-tests}"
if [ -x "$CACHE/azurite/node_modules/.bin/azurite-blob" ]; then
  echo "==> Azurite: cached in $CACHE/azurite"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "==> installing Node.js and npm (Debian) for Azurite"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm
fi
echo "==> installing Azurite into $CACHE/azurite"
mkdir -p "$CACHE/azurite"
npm install --prefix "$CACHE/azurite" --no-audit --no-fund --loglevel=error azurite@3
