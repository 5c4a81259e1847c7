"""SQS batches: every record is one scoring request; only failed records are retried.

Uses Powertools' batch utility (partial batch response ``{"batchItemFailures": [...]}``); the
function's event source mapping must enable ReportBatchItemFailures.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from .errors import RequestError
from .mlflow_request import parse_json
from .protocol import ScoringService


class RecordRejected(Exception):
    """A record whose request was refused; raising marks it failed in the batch response."""


WHOLE_BATCH = ""  # an empty itemIdentifier makes Lambda retry the whole batch (AWS's rule)


def handle_batch(event: dict, context, service: ScoringService, logger) -> tuple[dict, int, int]:
    """(batch response, rows scored, failed records).

    Every record that cannot be scored is reported, so SQS retries it (and, past maxReceiveCount,
    moves it to the dead-letter queue); none is lost. A record without a string messageId cannot be
    named, so the whole batch is reported failed and retried rather than dropped."""
    records = event["Records"]
    readable = [r for r in records if isinstance(r, dict) and isinstance(r.get("messageId"), str)]
    if len(readable) != len(records):
        logger.warning("SQS event has records without a messageId; the whole batch will be retried")
        return {"batchItemFailures": [{"itemIdentifier": WHOLE_BATCH}]}, 0, len(records)
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    rows = 0

    def score_record(record) -> None:
        nonlocal rows
        body = record.raw_event.get("body")
        if not isinstance(body, str):
            raise RecordRejected("the record's body must be a string holding a JSON scoring request")
        try:
            response = service.score_document(parse_json(body))
        except RequestError as error:
            raise RecordRejected(error.message) from None
        if not response.ok:
            raise RecordRejected(response.body.get("message", "request failed"))
        rows += response.rows
        logger.info("scored SQS record", extra={"message_id": record.message_id, "predictions": response.body["predictions"]})

    result = process_partial_response(event=event, record_handler=score_record, processor=processor, context=context)
    failures = len(result.get("batchItemFailures", []))
    if failures:
        logger.warning("SQS records failed", extra={"failed": failures, "errors": [str(e[1]) for e in processor.exceptions][:10]})
    return result, rows, failures
