#!/usr/bin/env bash
# The main job on the bundled example: train and register a demo model in a local sqlite MLflow
# store, build its Lambda zip, then answer a prediction through the bundle on the local Lambda
# platform (AWS's runtime interface client, the bundle unpacked read-only, limits enforced).
# The zip targets Lambda's newest Python (3.14): a Docker engine runs it in a container of that
# Python, whose image the first build makes from Debian packages (about a minute, once).
# mpack is installed as a user gets it (its core: no scikit-learn, pandas or converters); the demo
# model is trained where a data scientist would, in its own virtual environment (.mpack-example/train),
# and the build loads and converts it in the model's own environment (uv), as every build does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/docker.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "==> training and registering models:/demo-fraud@champion in .mpack-example/ (scikit-learn in .mpack-example/train)"
TRAIN=.mpack-example/train
[ -x "$TRAIN/bin/python" ] || uv venv --quiet --python .venv/bin/python "$TRAIN"
uv pip install --quiet --python "$TRAIN/bin/python" mlflow-skinny sqlalchemy alembic scikit-learn pandas skops
TRACKING_URI=$("$TRAIN/bin/python" examples/train_demo.py --store .mpack-example 2>/dev/null | tail -n 1)
echo "    tracking store: $TRACKING_URI"
echo "==> mpack build --model models:/demo-fraud@champion --target lambda"
mpack build --model models:/demo-fraud@champion --target lambda --tracking-uri "$TRACKING_URI" --output dist/demo-fraud-lambda.zip
echo "==> mpack invoke dist/demo-fraud-lambda.zip   (the bundle's input example, on the local Lambda platform)"
mpack invoke dist/demo-fraud-lambda.zip
