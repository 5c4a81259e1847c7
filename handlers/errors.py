"""The one error a request can cause: it carries the HTTP status and MLflow's error code.

Every platform adapter turns it into the same JSON body, so a bad request reads the same on Lambda,
Azure and in a container.
"""

from __future__ import annotations

BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
MALFORMED_REQUEST = "MALFORMED_REQUEST"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
NOT_FOUND = "ENDPOINT_NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
INTERNAL_ERROR = "INTERNAL_ERROR"


class RequestError(Exception):
    """A request the model cannot answer, with the status and a message naming the field."""

    def __init__(self, message: str, status: int = 400, error_code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code

    def body(self) -> dict:
        return {"error_code": self.error_code, "message": self.message}


class ModelLoadError(Exception):
    """The bundle cannot serve: the manifest or the model file is missing, corrupt or altered."""
