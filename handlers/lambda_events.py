"""Which Lambda event source sent an event, and the native (no ASGI) answer to HTTP events.

HTTP events are read through Powertools' event data classes (imported on the first HTTP event,
so direct invocations never pay for them).
"""

from __future__ import annotations

import binascii
from http import HTTPStatus

from .errors import RequestError
from .protocol import Response, ScoringService, error_response

DIRECT, SQS, APIGW_REST, APIGW_HTTP, FUNCTION_URL, ALB = "direct", "sqs", "apigw-rest", "apigw-http", "function-url", "alb"


def event_kind(event) -> str:
    """The event source, from the event's shape (as AWS documents each one)."""
    if not isinstance(event, dict):
        return DIRECT
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs":
        return SQS
    context = event.get("requestContext")
    if isinstance(context, dict):
        if "elb" in context:
            return ALB
        if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
            return FUNCTION_URL if ".lambda-url." in str(context.get("domainName", "")) else APIGW_HTTP
        if "httpMethod" in event:
            return APIGW_REST
    return DIRECT


def _event_class(kind: str):
    from aws_lambda_powertools.utilities import data_classes as dc

    return {
        APIGW_REST: dc.APIGatewayProxyEvent,
        APIGW_HTTP: dc.APIGatewayProxyEventV2,
        FUNCTION_URL: dc.LambdaFunctionUrlEvent,
        ALB: dc.ALBEvent,
    }[kind]


class NativeHttp:
    """HTTP events answered straight from the protocol core."""

    def __init__(self, service: ScoringService) -> None:
        self.service = service

    def __call__(self, event: dict, context, kind: str) -> tuple[dict, Response]:
        wrapped = _event_class(kind)(event)
        try:
            body = wrapped.decoded_body
        except (UnicodeDecodeError, binascii.Error, ValueError):
            response = error_response(RequestError("request body is not valid base64-encoded UTF-8", error_code="MALFORMED_REQUEST"))
        else:
            try:
                method, path, content_type = wrapped.http_method, wrapped.path, (wrapped.headers or {}).get("content-type")
            except (KeyError, TypeError, AttributeError) as missing:  # a hand-made event, not AWS's
                response = error_response(RequestError(f"the {kind} event is incomplete: {missing!s} is missing or malformed", error_code="MALFORMED_REQUEST"))
            else:
                response = self.service.handle_http(method, path, content_type, body)
        return http_result(wrapped, kind, response), response


def http_result(wrapped, kind: str, response: Response) -> dict:
    """The proxy-integration answer, with headers serialized the way this event source expects."""
    result = {"statusCode": response.status, "body": response.json(), "isBase64Encoded": False}
    result.update(wrapped.header_serializer().serialize(headers=dict(response.headers), cookies=[]))
    if kind == ALB:
        result["statusDescription"] = f"{response.status} {HTTPStatus(response.status).phrase}"
    return result
