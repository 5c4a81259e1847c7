"""HTTP events and SQS batches read with the standard library, for bundles without Powertools (the
micro runtime). Same answers as ``lambda_sources.NativeHttp`` and ``lambda_sqs``: the proxy result
in each source's header shape, partial batch responses naming only the failed records.
"""

from __future__ import annotations

from .errors import RequestError
from .lambda_sources import ALB, APIGW_HTTP, APIGW_REST, FUNCTION_URL, Outcome, SqsBatch, status_description, with_request_id
from .mlflow_request import parse_json
from .protocol import Response, ScoringService, error_response

WHOLE_BATCH = ""  # an empty itemIdentifier makes Lambda retry the whole batch (AWS's rule)


def _request_line(event: dict, kind: str) -> tuple[str, str, dict]:
    """(method, path, headers) of an (already shape-checked) HTTP event."""
    if kind in (APIGW_HTTP, FUNCTION_URL):
        return event["requestContext"]["http"]["method"], event.get("rawPath") or "/", event.get("headers") or {}
    headers = event.get("headers") or {k: v[-1] for k, v in (event.get("multiValueHeaders") or {}).items() if v}
    return event["httpMethod"], event["path"], headers


def _body(event: dict):
    body = event.get("body")
    if body and event.get("isBase64Encoded"):
        import base64  # only for base64 bodies: ~8 ms of a cold start otherwise

        return base64.b64decode(body, validate=True)
    return body


class MicroHttp:
    """HTTP events answered straight from the protocol core."""

    def __init__(self, service: ScoringService) -> None:
        self.service = service

    def __call__(self, event: dict, context, kind: str) -> tuple[dict, Response]:
        method, path, headers = _request_line(event, kind)
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        try:
            body = _body(event)
        except ValueError:  # binascii.Error is a ValueError
            response = error_response(RequestError("request body is not valid base64, and isBase64Encoded is true", error_code="MALFORMED_REQUEST"))
        else:
            response = with_request_id(self.service.handle_http(method, path, content_type, body), context)
        return proxy_result(event, kind, response), response


def proxy_result(event: dict, kind: str, response: Response) -> dict:
    """The proxy-integration answer with headers as each source expects them (as Powertools'
    header serializers write them): REST and multi-value ALB events get multiValueHeaders."""
    result = {"statusCode": response.status, "body": response.json(), "isBase64Encoded": False}
    headers = dict(response.headers)
    if kind in (APIGW_HTTP, FUNCTION_URL):
        result.update(headers=headers, cookies=[])
    elif kind == APIGW_REST or (kind == ALB and event.get("multiValueHeaders")):
        result["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    else:
        result["headers"] = headers
    if kind == ALB:
        result["statusDescription"] = status_description(response.status)
    return result


class MicroSqsBatch(SqsBatch):
    """Each record a request; failed records come back in ``batchItemFailures`` (as Powertools'
    batch utility answers for ``SqsBatch``)."""

    def answer(self, event, context) -> Outcome:
        records = event["Records"]
        if not all(isinstance(r, dict) and isinstance(r.get("messageId"), str) for r in records):
            self.logger.warning("SQS event has records without a messageId; the whole batch will be retried")
            return Outcome({"batchItemFailures": [{"itemIdentifier": WHOLE_BATCH}]}, 0, len(records))
        failures, errors, rows = [], [], 0
        for record in records:
            problem, scored = self._score(record)
            if problem is None:
                rows += scored
            else:
                failures.append({"itemIdentifier": record["messageId"]})
                errors.append(problem)
        if failures:
            self.logger.warning("SQS records failed", extra={"failed": len(failures), "errors": errors[:10]})
        return Outcome({"batchItemFailures": failures}, rows, len(failures))

    def _score(self, record: dict) -> tuple[str | None, int]:
        body = record.get("body")
        if not isinstance(body, str):
            return "the record's body must be a string holding a JSON scoring request", 0
        try:
            response = self.service.score_document(parse_json(body))
        except RequestError as error:
            return error.message, 0
        if not response.ok:
            return response.body.get("message", "request failed"), 0
        self.logger.info("scored SQS record", extra={"message_id": record["messageId"], "predictions": response.body["predictions"]})
        return None, response.rows
