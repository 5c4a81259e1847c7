#!/usr/bin/env bash
# The main job on the bundled example: train and register a demo model in a local sqlite MLflow
# store, build its Lambda zip, then answer a prediction through the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "==> training and registering models:/demo-fraud@champion in .mpack-example/"
TRACKING_URI=$(python examples/train_demo.py --store .mpack-example 2>/dev/null | tail -n 1)
echo "    tracking store: $TRACKING_URI"
echo "==> mpack build --model models:/demo-fraud@champion --target lambda"
mpack build --model models:/demo-fraud@champion --target lambda --tracking-uri "$TRACKING_URI" --output dist/demo-fraud-lambda.zip
echo "==> a prediction through the bundle (fresh interpreter, only the bundle on its path)"
python examples/predict_with_bundle.py dist/demo-fraud-lambda.zip
