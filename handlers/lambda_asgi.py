"""``--lambda-http asgi``: HTTP events go through Mangum to the same ASGI app the containers serve."""

from __future__ import annotations

from mangum import Mangum

from .asgi_app import create_app
from .protocol import Response, ScoringService


class AsgiHttp:
    def __init__(self, service: ScoringService) -> None:
        self._mangum = Mangum(create_app(service), lifespan="off")

    def __call__(self, event: dict, context, kind: str) -> tuple[dict, Response]:
        # API Gateway and ALB may send null for these; Mangum expects an object or no key at all
        if event.get("headers") is None:
            event = dict(event, headers={})
        for key in ("multiValueHeaders", "multiValueQueryStringParameters"):
            if key in event and event[key] is None:
                event = {k: v for k, v in event.items() if k != key}
        result = self._mangum(event, context)
        return result, Response(result.get("statusCode", 500), None)
