"""Lambda event sources, one small class each, chosen by its ``infer(event)`` (as Mangum chooses
its handlers): direct invocation, SQS batches, API Gateway REST (v1) and HTTP API (v2), Function
URLs and ALB. Each answers in its own shape through the one protocol core.

HTTP events are read through Powertools' event data classes (imported on the first HTTP event,
so direct invocations never pay for them).
"""

from __future__ import annotations

from .errors import RequestError
from .protocol import Response, ScoringService, error_response

DIRECT, SQS, APIGW_REST, APIGW_HTTP, FUNCTION_URL, ALB = "direct", "sqs", "apigw-rest", "apigw-http", "function-url", "alb"


_STR_MAP = "an object of strings"


def http_event_problem(event: dict, kind: str) -> str | None:
    """What makes an HTTP event unreadable (a hand-made or fuzzed one, never AWS's), or None.

    Checked before Powertools or Mangum read it, so both modes refuse the same events with a 400
    instead of failing on a list where a string belongs."""
    checks = [("body", (str, type(None)), "a string"), ("isBase64Encoded", (bool, type(None)), "true or false")]
    if kind in (APIGW_HTTP, FUNCTION_URL):
        http = event["requestContext"]["http"]
        if not isinstance(http, dict) or not isinstance(http.get("method"), str) or not http["method"].isalpha():
            return "requestContext.http.method must be an HTTP method (GET, POST, ...)"
        checks += [("rawPath", (str,), "a string"), ("rawQueryString", (str, type(None)), "a string"), ("cookies", (list, type(None)), "a list")]
    else:
        checks += [("httpMethod", (str,), "a string"), ("path", (str,), "a string")]
        if isinstance(event.get("httpMethod"), str) and not event["httpMethod"].isalpha():
            return "httpMethod must be an HTTP method (GET, POST, ...)"
        for name in ("multiValueHeaders", "multiValueQueryStringParameters"):
            value = event.get(name)
            if value is not None and not (isinstance(value, dict) and all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in value.values())):
                return f"{name} must be an object of string lists"
    for name, types, expected in checks:
        if not isinstance(event.get(name), types):
            return f"{name} must be {expected}"
    for name in ("headers", "queryStringParameters", "pathParameters", "stageVariables"):
        value = event.get(name)
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            return f"{name} must be {_STR_MAP}"
    cookies = event.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)):
        return "cookies must be a list of strings"
    if event.get("isBase64Encoded") and event.get("body"):
        import base64
        import binascii

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
        result["statusDescription"] = status_description(response.status)
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
        except ValueError:  # binascii.Error is a ValueError
            response = error_response(RequestError("request body is not valid base64, and isBase64Encoded is true", error_code="MALFORMED_REQUEST"))
        else:
            try:
                method, path, content_type = wrapped.http_method, wrapped.path, (wrapped.headers or {}).get("content-type")
            except (KeyError, TypeError, AttributeError) as missing:  # a hand-made event, not AWS's
                response = error_response(RequestError(f"the {kind} event is incomplete: {missing!s} is missing or malformed", error_code="MALFORMED_REQUEST"))
            else:
                response = with_request_id(self.service.handle_http(method, path, content_type, body), context)
        return http_result(wrapped, kind, response), response


def with_request_id(response: Response, context) -> Response:
    """A model failure (5xx) names the invocation's request id, to find its log lines by."""
    if response.status < 500 or not isinstance(response.body, dict):
        return response
    return Response(response.status, {**response.body, "request_id": getattr(context, "aws_request_id", None)}, response.rows, response.headers)


def http_result(wrapped, kind: str, response: Response) -> dict:
    """The proxy-integration answer, with headers serialized the way this event source expects."""
    result = {"statusCode": response.status, "body": response.json(), "isBase64Encoded": False}
    result.update(wrapped.header_serializer().serialize(headers=dict(response.headers), cookies=[]))
    if kind == ALB:
        result["statusDescription"] = status_description(response.status)
    return result


def log_failure(logger, kind: str, response: Response) -> None:
    """One log line for a refused request (warning) or a model failure (error)."""
    if response.status >= 500:
        logger.error("prediction failed", extra={"event_source": kind, "status": response.status, "response": response.body})
    elif response.status >= 400:
        logger.warning("request refused", extra={"event_source": kind, "status": response.status, "response": response.body})


def status_description(status: int) -> str:
    """ALB's status line text, "200 OK" (``http`` imported only for ALB answers)."""
    from http import HTTPStatus

    return f"{status} {HTTPStatus(status).phrase}"


# -- the sources -------------------------------------------------------------------------------------


class Outcome:
    """What the handler returns to Lambda, rows scored, failures, and the protocol answer for the
    log line (None for batches)."""

    __slots__ = ("result", "rows", "errors", "response")

    def __init__(self, result: object, rows: int, errors: int, response: Response | None = None) -> None:
        self.result, self.rows, self.errors, self.response = result, rows, errors, response


class DirectInvocation:
    """The payload is an MLflow scoring request; the answer is the MLflow body. Anything that no
    other source claims is treated as one (and refused with a 400 when it is not a request)."""

    name = DIRECT

    def __init__(self, service: ScoringService) -> None:
        self.service = service

    @classmethod
    def infer(cls, event) -> bool:
        return True

    def answer(self, event, context) -> Outcome:
        response = with_request_id(self.service.score_document(event), context)
        return Outcome(response.body, response.rows, int(not response.ok), response)


class SqsBatch:
    """Each record a request; failed records come back in ``batchItemFailures``."""

    name = SQS

    def __init__(self, service: ScoringService, logger) -> None:
        self.service, self.logger = service, logger

    @classmethod
    def infer(cls, event) -> bool:
        records = event.get("Records") if isinstance(event, dict) else None
        return isinstance(records, list) and bool(records) and isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs"

    def answer(self, event, context) -> Outcome:
        from .lambda_sqs import handle_batch

        result, rows, errors = handle_batch(event, context, self.service, self.logger)
        return Outcome(result, rows, errors)


class HttpSource:
    """An HTTP event: checked for shape, then answered natively or through the ASGI app."""

    name = ""

    def __init__(self, respond) -> None:  # respond(event, context, kind) -> (result, Response)
        self.respond = respond

    def answer(self, event, context) -> Outcome:
        problem = http_event_problem(event, self.name)
        result, response = malformed_http_answer(event, self.name, problem) if problem else self.respond(event, context, self.name)
        return Outcome(result, response.rows, int(not response.ok), response)

    @staticmethod
    def _context(event) -> dict | None:
        context = event.get("requestContext") if isinstance(event, dict) else None
        return context if isinstance(context, dict) else None


class AlbRequest(HttpSource):
    name = ALB

    @classmethod
    def infer(cls, event) -> bool:
        context = cls._context(event)
        return context is not None and "elb" in context


class FunctionUrlRequest(HttpSource):
    name = FUNCTION_URL

    @classmethod
    def infer(cls, event) -> bool:
        context = cls._context(event)
        return context is not None and event.get("version") == "2.0" and "http" in context and ".lambda-url." in str(context.get("domainName", ""))


class HttpApiRequest(HttpSource):
    name = APIGW_HTTP

    @classmethod
    def infer(cls, event) -> bool:
        context = cls._context(event)
        return context is not None and event.get("version") == "2.0" and "http" in context


class RestApiRequest(HttpSource):
    name = APIGW_REST

    @classmethod
    def infer(cls, event) -> bool:
        return cls._context(event) is not None and "httpMethod" in event


HTTP_SOURCES = (AlbRequest, FunctionUrlRequest, HttpApiRequest, RestApiRequest)  # most specific first


def event_sources(service: ScoringService, respond, logger) -> tuple:
    """Every source, in the order they are asked; the direct invocation last (it claims anything)."""
    return (SqsBatch(service, logger), *(kind(respond) for kind in HTTP_SOURCES), DirectInvocation(service))


def source_for(event, sources: tuple):
    return next(source for source in sources if source.infer(event))


def event_kind(event) -> str:
    """The name of the source that would answer ``event`` (for the local platform and tests)."""
    for kind in (SqsBatch, *HTTP_SOURCES):
        if kind.infer(event):
            return kind.name
    return DIRECT
