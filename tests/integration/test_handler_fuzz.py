"""The Lambda handler of a real built bundle, fed arbitrary events of every source (hypothesis):
no exception escapes it and no client error becomes a 5xx, in native and ASGI modes and on the
micro runtime (standard library only). The
regressions the first fuzzing found are pinned as plain cases below.

The handler runs in this process (fuzzing needs thousands of calls) from the unzipped bundle's
manifest and model; the isolated-interpreter runs of the same bundles are in test_lambda_bundle.py.
The Lambda context is a small stand-in object: there is no Lambda service here to make one.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import time
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpack.infra.local.events import wrap_event

from tests.helpers.asgi import asgi_request as _asgi
from tests.helpers.bundle_runner import unzip

pytestmark = pytest.mark.slow
HTTP_KINDS = ("apigw-rest", "apigw-http", "function-url", "alb")


@dataclass
class Context:
    function_name: str = "fuzz"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fuzz"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def _handler(folder, adapter: str = "lambda_function"):
    """Import the bundle's handler module afresh against ``folder`` (its init phase)."""
    os.environ["MPACK_BUNDLE_ROOT"] = str(folder)
    try:
        module = importlib.import_module(f"mpack.handlers.{adapter}")
        return importlib.reload(module).handler
    finally:
        os.environ.pop("MPACK_BUNDLE_ROOT", None)


@pytest.fixture(scope="module")
def handlers(built, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    native = unzip(built("models:/mixed/1", runtime="onnx").artifact, folder / "native")
    asgi = unzip(built("models:/mixed/1", lambda_http="asgi").artifact, folder / "asgi")
    micro = unzip(built("models:/mixed/1", runtime="micro").artifact, folder / "micro")
    return {"native": _handler(native), "asgi": _handler(asgi), "micro": _handler(micro, "micro_lambda")}


ROW = {"age": 30.0, "income": 50_000.0, "city": "oslo", "plan": "pro"}

_scalar = st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400) | st.floats() | st.text(max_size=8)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_column = st.sampled_from(list(ROW) + ["id", "Age", ""])
_record = st.dictionaries(_column, _scalar, max_size=6) | st.just(ROW) | st.builds(lambda v: dict(ROW, income=v), _scalar)
_document = st.one_of(
    _json,
    st.fixed_dictionaries({"dataframe_records": st.lists(_record, max_size=3)}, optional={"params": _json}),
    st.fixed_dictionaries(
        {"dataframe_split": st.fixed_dictionaries({"columns": st.lists(_column, max_size=6), "data": st.lists(st.lists(_scalar, max_size=6), max_size=3)})}, optional={"params": _json}
    ),
    st.fixed_dictionaries({"inputs": st.dictionaries(_column, _json, max_size=5)}),
    st.fixed_dictionaries({"dataframe_records": st.just([ROW])}, optional={"params": st.dictionaries(st.sampled_from(["predict_method", "x"]), _json, max_size=2) | _json}),
)
_body = _document.map(json.dumps) | st.text(max_size=40) | st.binary(max_size=40)


def _mutated(event: dict, draw_value, paths) -> dict:
    """The event with some fields replaced by arbitrary JSON (non-string headers, odd methods...)."""
    for path, value in zip(paths, draw_value):
        target = event
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                break
        else:
            target[path[-1]] = value
    return event


_FIELDS = [
    ("headers",),
    ("headers", "content-type"),
    ("httpMethod",),
    ("path",),
    ("rawPath",),
    ("isBase64Encoded",),
    ("requestContext", "http", "method"),
    ("requestContext", "http"),
    ("queryStringParameters",),
    ("multiValueHeaders",),
    ("cookies",),
    ("version",),
    ("routeKey",),
    ("requestContext", "elb"),
]


@st.composite
def http_events(draw):
    kind = draw(st.sampled_from(HTTP_KINDS))
    body = draw(_body)
    event = wrap_event(kind, body if not isinstance(body, bytes) else body.decode("latin-1"), content_type=draw(st.sampled_from(["application/json", "text/csv", "text/plain", ""])))
    event["isBase64Encoded"] = draw(st.booleans()) if draw(st.booleans()) else event.get("isBase64Encoded", False)
    paths = draw(st.lists(st.sampled_from(_FIELDS), max_size=3))
    values = [draw(_json) for _ in paths]
    return kind, _mutated(event, values, paths)


@st.composite
def sqs_events(draw):
    bodies = draw(st.lists(_body.map(lambda b: b if isinstance(b, str) else b.decode("latin-1")), min_size=1, max_size=4))
    event = wrap_event("sqs", bodies)
    if draw(st.booleans()):
        record = event["Records"][0]
        for key in draw(st.lists(st.sampled_from(["body", "messageId", "attributes", "messageAttributes", "receiptHandle"]), max_size=2)):
            record[key] = draw(_json)
    return event


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(document=_document)
def test_direct_invocations_always_get_an_mlflow_answer(handlers, document):
    for handler in handlers.values():
        answer = handler(copy.deepcopy(document), Context())
        assert isinstance(answer, dict) and ("predictions" in answer or {"error_code", "message"} <= set(answer)), answer
        assert answer.get("error_code") != "INTERNAL_ERROR", answer
        json.dumps(answer)


@FUZZ
@given(case=http_events())
def test_http_events_never_raise_and_never_answer_a_client_error_with_5xx(handlers, case):
    kind, event = case
    for mode, handler in handlers.items():
        answer = handler(copy.deepcopy(event), Context())
        if "statusCode" not in answer:  # fuzzing removed what makes it an HTTP event: a direct call
            assert answer["error_code"] != "INTERNAL_ERROR", answer
            continue
        assert isinstance(answer.get("statusCode"), int), (mode, answer)
        assert 200 <= answer["statusCode"] < 500, (mode, kind, answer)
        json.loads(answer["body"])  # every answer body is JSON, in both modes


@FUZZ
@given(event=sqs_events())
def test_sqs_batches_always_get_a_partial_batch_response(handlers, event):
    for handler in handlers.values():
        answer = handler(copy.deepcopy(event), Context())
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        named = {r.get("messageId") for r in event["Records"] if isinstance(r.get("messageId"), str)}
        if len(named) < len(event["Records"]):  # unnameable records: the whole batch is retried
            assert failed == {""}
        else:
            assert failed <= named


# -- the container target: the same ASGI app the image serves, called in process --------------------


@pytest.fixture(scope="module")
def container_app(built, tmp_path_factory):
    os.environ["MPACK_BUNDLE_ROOT"] = str(unzip(built("models:/mixed/1", runtime="onnx").artifact, tmp_path_factory.mktemp("container")))
    try:
        import mpack.handlers.container_app as module

        return importlib.reload(module).app
    finally:
        os.environ.pop("MPACK_BUNDLE_ROOT", None)


_tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["age", "income", "city", "plan", "input", "x"]),
        "shape": st.lists(st.integers(-1, 4), max_size=3),
        "datatype": st.sampled_from(["FP64", "FP32", "BYTES", "INT64", "BOOL", "??"]),
    },
    optional={"data": _json, "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-2, 64) | _scalar})},
)
_oip = st.fixed_dictionaries({"inputs": st.lists(_tensor, max_size=4)}, optional={"outputs": _json, "parameters": _json, "id": _scalar})


@FUZZ
@given(
    path=st.sampled_from(["/invocations", "/v2/models/mixed/infer", "/v2/models/mixed", "/ping", "/version", "/metadata", "/v2", "/x"]),
    method=st.sampled_from(["POST", "GET", "PUT", "TRACE"]),
    content_type=st.sampled_from(["application/json", "text/csv", "application/octet-stream", ""]),
    body=_body | _oip.map(lambda d: json.dumps(d).encode()),
    header_length=st.none() | st.integers(-5, 400).map(str) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=4),
    tail=st.binary(max_size=48),
)
def test_the_container_never_answers_a_client_error_with_5xx(container_app, path, method, content_type, body, header_length, tail):
    raw = (body.encode() if isinstance(body, str) else body) + (tail if header_length is not None else b"")
    headers = {"content-type": content_type} | ({"inference-header-content-length": header_length} if header_length is not None else {})
    status, response_headers, answer = _asgi(container_app, method, path, headers, raw)
    assert 200 <= status < 500, (status, answer[:300])
    if "inference-header-content-length" in response_headers:
        json.loads(answer[: int(response_headers["inference-header-content-length"])])
    elif response_headers.get("content-type", "").startswith("application/json"):
        json.loads(answer)


# -- regressions the fuzzer found, pinned ----------------------------------------------------------


def test_a_400_digit_number_is_a_400_naming_the_column(handlers):
    for handler in handlers.values():
        answer = handler({"dataframe_records": [dict(ROW, income=10**400)]}, Context())
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE" and "income" in answer["message"] and "401-digit" in answer["message"]


@pytest.mark.parametrize("params", [{"predict_method": []}, {"predict_method": {"a": 1}}, [], "x", 0, False])
def test_params_of_the_wrong_type_are_a_400(handlers, params):
    answer = handlers["native"]({"dataframe_records": [ROW], "params": params}, Context())
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE", answer
    assert "params" in answer["message"] or "predict_method" in answer["message"]


def test_an_sqs_batch_whose_every_record_fails_reports_every_record(handlers):
    event = wrap_event("sqs", ["not json", json.dumps({"dataframe_records": [{"age": "x"}]})])
    answer = handlers["native"](event, Context())
    assert len(answer["batchItemFailures"]) == 2


def test_extra_columns_are_ignored_as_mlflow_ignores_them(handlers):
    plain = handlers["native"]({"dataframe_records": [ROW]}, Context())
    with_id = handlers["native"]({"dataframe_records": [dict(ROW, customer_id="c-17", ts=1)]}, Context())
    assert with_id == plain and "predictions" in plain


def test_a_misspelt_column_is_named_with_a_suggestion(handlers):
    record = {k: v for k, v in ROW.items() if k != "income"}
    answer = handlers["native"]({"dataframe_records": [dict(record, incme=1.0)]}, Context())
    assert "missing column(s) 'income' (did you mean 'incme'?)" in answer["message"]


def test_twenty_thousand_column_names_are_checked_in_linear_time(handlers):
    columns = list(ROW) + [f"extra_{i}" for i in range(20_000)]
    document = {"dataframe_split": {"columns": columns, "data": [list(ROW.values()) + [0] * 20_000]}}
    started = time.perf_counter()
    answer = handlers["native"](document, Context())
    assert "predictions" in answer
    missing = {"dataframe_split": {"columns": columns[1:], "data": [list(ROW.values())[1:] + [0] * 20_000]}}
    refused = handlers["native"](missing, Context())
    assert "missing column(s) 'age'" in refused["message"]
    assert time.perf_counter() - started < 2.0  # quadratic checks took 5-8 s here


@pytest.fixture(scope="module")
def azure_functions(built, tmp_path_factory):
    """The azure adapter's functions, loaded in this process against the unpacked azure bundle."""
    folder = unzip(built("models:/mixed/1", target="azure").artifact, tmp_path_factory.mktemp("fuzz-azure") / "app")
    os.environ["MPACK_BUNDLE_ROOT"] = str(folder)
    try:
        import mpack.handlers.azure_function as module

        return importlib.reload(module)
    finally:
        os.environ.pop("MPACK_BUNDLE_ROOT", None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=_body,
    content_type=st.sampled_from(["application/json", "text/csv", "text/plain", "", "application/json; charset=utf-8"]),
    route=st.sampled_from(["invocations", "v2/models/mixed/infer", "v2/models/mixed", "v2/health/ready", "v2/models/other/infer", "v2/nothing", "metadata", "ping"]),
    method=st.sampled_from(["POST", "GET", "PUT"]),
)
def test_azure_functions_answer_every_request_without_a_5xx(azure_functions, body, content_type, route, method):
    import azure.functions as func

    data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    path = route[3:] if route.startswith("v2/") else ""
    request = func.HttpRequest(
        method=method, url=f"http://localhost/api/{route}", headers={"content-type": content_type}, params={}, route_params={"path": path} if route.startswith("v2/") else {}, body=data
    )
    function = {"invocations": azure_functions.invocations, "metadata": azure_functions.probe, "ping": azure_functions.probe}.get(route, azure_functions.open_inference)
    response = function(request)
    assert response.status_code < 500, (route, response.get_body()[:300])
    if response.status_code >= 400:  # every refusal is the protocol's JSON, naming what is wrong
        document = json.loads(response.get_body())
        assert document.get("message") or document.get("error"), document
