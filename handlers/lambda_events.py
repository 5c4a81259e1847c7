"""Which Lambda event source sent an event, and the native (no ASGI) answer to HTTP events.

HTTP events are read through Powertools' event data classes (imported on the first HTTP event,
so direct invocations never pay for them).
"""

from __future__ import annotations

import base64
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
        if event.get("version") == "2.0" and "http" in context:
            return FUNCTION_URL if ".lambda-url." in str(context.get("domainName", "")) else APIGW_HTTP
        if "httpMethod" in event:
            return APIGW_REST
    return DIRECT


_STR_MAP = "an object of strings"


def http_event_problem(event: dict, kind: str) -> str | None:
    """What makes an HTTP event unreadable (a hand-made or fuzzed one, never AWS's), or None.

    Checked before Powertools or Mangum read it, so both modes refuse the same events with a 400
    instead of failing on a list where a string belongs."""
    checks = [("body", (str, type(None)), "a string"), ("isBase64Encoded", (bool, type(None)), "true or false")]
    if kind in (APIGW_HTTP, FUNCTION_URL):
        http = event["requestContext"]["http"]
        if not isinstance(http, dict) or not isinstance(http.get("method"), str):
            return "requestContext.http.method must be a string"
        checks += [("rawPath", (str,), "a string"), ("rawQueryString", (str, type(None)), "a string"), ("cookies", (list, type(None)), "a list")]
        maps = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
    else:
        checks += [("httpMethod", (str,), "a string"), ("path", (str,), "a string")]
        maps = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
        for name in ("multiValueHeaders", "multiValueQueryStringParameters"):
            value = event.get(name)
            if value is not None and not (isinstance(value, dict) and all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in value.values())):
                return f"{name} must be an object of string lists"
    for name, types, expected in checks:
        if not isinstance(event.get(name), types):
            return f"{name} must be {expected}"
    for name in maps:
        value = event.get(name)
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            return f"{name} must be {_STR_MAP}"
    if event.get("cookies") and not all(isinstance(c, str) for c in event["cookies"]):
        return "cookies must be a list of strings"
    if event.get("isBase64Encoded") and event.get("body"):
        try:
            base64.b64decode(event["body"], validate=True)
        except (binascii.Error, ValueError):
            return "body is not valid base64, and isBase64Encoded is true"
    return None


def malformed_http_answer(event: dict, kind: str, problem: str) -> tuple[dict, Response]:
    """A 400 in the event source's answer shape, built without reading the malformed event."""
    response = error_response(RequestError(f"the {kind} event is malformed: {problem}", error_code="MALFORMED_REQUEST"))
    result = {"statusCode": response.status, "body": response.json(), "isBase64Encoded": False}
    if kind in (APIGW_REST, ALB) and isinstance(event.get("multiValueHeaders"), dict) and event.get("multiValueHeaders"):
        result["multiValueHeaders"] = {k: [v] for k, v in response.headers.items()}
    else:
        result["headers"] = dict(response.headers)
    if kind == ALB:
        result["statusDescription"] = f"{response.status} {HTTPStatus(response.status).phrase}"
    return result, response


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
        except UnicodeDecodeError:
            response = error_response(RequestError("request body is not valid UTF-8", error_code="MALFORMED_REQUEST"))
        except (binascii.Error, ValueError):
            response = error_response(RequestError("request body is not valid base64, and isBase64Encoded is true", error_code="MALFORMED_REQUEST"))
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
