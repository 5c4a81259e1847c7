#!/usr/bin/env bash
# Install mpack and run the whole test suite (real MLflow store, real builds, real bundles).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/azurite.sh || echo "    (Azurite could not be installed: the Azure deploy tests will fail)"
bash scripts/docker.sh || echo "    (no Docker engine: image tests will fail under CI=true, skip otherwise)"
echo "==> running the test suite"
exec .venv/bin/python -m pytest -v --durations=10 "$@"
