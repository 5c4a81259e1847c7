"""The Azure Functions entry point (Python v2 programming model): the worker imports this module
and indexes the FunctionApp named ``app``. mpack's adapter builds it; the model loads on import."""

from mpack.handlers.azure_function import app  # noqa: F401  (indexed by the Functions host)
