"""mpack's AWS Lambda entry point (handler string: mpack_handler.handler).

OpenBLAS must not start a thread pool per core before numpy is imported: it costs tens of
milliseconds of cold start and the model runs in ONNX Runtime anyway.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from mpack.handlers.lambda_function import handler  # noqa: E402,F401
