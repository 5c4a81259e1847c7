"""Answer a prediction through a built Lambda zip, as Lambda would run it: unzipped, in a fresh
`python -I -S` whose only extra path is the bundle. Uses the bundle's own input example unless a
request is given.

    python examples/predict_with_bundle.py dist/demo-fraud-lambda.zip ['{"instances": [[...]]}']
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

from mpack.packager.verify import run_isolated


def main() -> None:
    bundle = Path(sys.argv[1])
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("mpack.json"))
    request = json.loads(sys.argv[2]) if len(sys.argv) > 2 else manifest["input_example"]
    outcome = run_isolated(bundle, [request])
    answer = outcome["answers"][0]
    print("request: ", json.dumps(request)[:160] + ("..." if len(json.dumps(request)) > 160 else ""))
    print("response:", json.dumps(answer))
    print(f"cold start (import + load) {outcome['init_s'] * 1000:.0f} ms, first invocation {outcome['invoke_s'] * 1000:.1f} ms")
    sys.exit(0 if isinstance(answer, dict) and "predictions" in answer else 1)


if __name__ == "__main__":
    main()
