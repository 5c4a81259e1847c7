"""mpack's AWS Lambda entry point for --runtime micro (handler string: mpack_handler.handler).

The model was compiled to standard-library Python (model_micro.py): nothing but the interpreter
is imported, so the cold start is the interpreter's plus a few milliseconds.
"""

from mpack.handlers.micro_lambda import handler  # noqa: F401
