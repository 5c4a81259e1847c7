"""``--lambda-http asgi``: HTTP events go through Mangum to the same ASGI app the containers serve."""

from __future__ import annotations

from mangum import Mangum

from .asgi_app import create_app
from .protocol import Response, ScoringService


class AsgiHttp:
    def __init__(self, service: ScoringService) -> None:
        self._mangum = Mangum(create_app(service), lifespan="off")

    def __call__(self, event: dict, context, kind: str) -> tuple[dict, Response]:
        if event.get("headers") is None:  # API Gateway may send null; Mangum expects an object
            event = dict(event, headers={})
        result = self._mangum(event, context)
        return result, Response(result.get("statusCode", 500), None)
