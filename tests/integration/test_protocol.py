"""The protocol core in-process, on real models converted by the build's own stages (``pipeline.staged``
up to the manifest: the graph and the manifest a Lambda zip ships): every request format, the
bad-input table, and arbitrary input never raising."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mpack.handlers.loader import create_session
from mpack.handlers.protocol import MAX_BODY_BYTES, ScoringService
from mpack.packager.pipeline import BuildOptions, staged


def _service(store, runtime_cache, uri: str) -> ScoringService:
    """The scoring core on the graph the build ships (``--runtime onnx``) and its manifest's served view."""
    options = BuildOptions(model=uri, runtime="onnx", tracking_uri=store.uri, cache_dir=runtime_cache, env_manager="local", allow_pickle=True)
    with staged(options, through="manifest") as state:
        assert [f.name for f in state.files] == ["model.onnx", "mpack.json"] and state.unit.artifact.parity.passed
        return ScoringService(state.manifest, create_session(state.unit.artifact.data, threads=1))


@pytest.fixture(scope="module")
def fraud(store, runtime_cache):
    return _service(store, runtime_cache, "models:/fraud@champion")


@pytest.fixture(scope="module")
def mixed(store, runtime_cache):
    return _service(store, runtime_cache, "models:/mixed/1")


def _split(frame, rows=slice(0, 5)):
    part = frame.iloc[rows]
    return {"columns": list(part.columns), "data": json.loads(part.to_json(orient="values"))}


def test_every_request_format_gives_the_original_models_labels(store, fraud):
    frame = store.frames["fraud"].iloc[:6]
    expected = store.estimators["fraud"].predict(frame).tolist()
    split = _split(frame, slice(None))
    records = json.loads(frame.to_json(orient="records"))
    bodies = [
        {"dataframe_split": split},
        {"dataframe_split": {"columns": split["columns"][::-1], "data": [row[::-1] for row in split["data"]]}},
        {"dataframe_records": records},
        {"instances": records},
        {"instances": split["data"]},
        {"inputs": split["data"]},
        {"inputs": {c: frame[c].tolist() for c in frame.columns}},
    ]
    for body in bodies:
        response = fraud.score_body(json.dumps(body), "application/json")
        assert response.status == 200, (body, response.body)
        assert response.body["predictions"] == expected
    csv_body = frame.to_csv(index=False)
    assert fraud.score_body(csv_body, "text/csv").body["predictions"] == expected


def test_probabilities_on_request_match_predict_proba(store, fraud):
    frame = store.frames["fraud"].iloc[:20]
    response = fraud.score_document({"dataframe_split": _split(frame, slice(None)), "params": {"predict_method": "predict_proba"}})
    assert response.status == 200
    expected = store.estimators["fraud"].predict_proba(frame)
    assert np.abs(np.asarray(response.body["predictions"]) - expected).max() < 1e-5


def test_mixed_column_types_and_missing_values_are_served(store, mixed):
    frame = store.frames["mixed"].iloc[:30]
    records = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]
    assert any(r["age"] is None for r in records)  # imputer-backed column: null means missing
    response = mixed.score_document({"dataframe_records": records})
    assert response.status == 200, response.body
    assert response.body["predictions"] == store.estimators["mixed"].predict(frame).tolist()


ROW = {f"f{i}": 0.5 for i in range(8)}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "needle"),
    [
        ({"dataframe_records": [{k: v for k, v in ROW.items() if k != "f3"}]}, "application/json", 400, "missing column(s) 'f3'"),
        ({"dataframe_split": {"columns": ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "fx7"], "data": [[0.1] * 8]}}, "application/json", 400, "missing column(s) 'f7' (did you mean 'fx7'?)"),
        ({"dataframe_records": [dict(ROW, f2=1e400)]}, "application/json", 400, "column 'f2' has inf in row 0, outside the range of float64"),
        ({"dataframe_records": [dict(ROW, f2=10**400)]}, "application/json", 400, "column 'f2' has a 401-digit number in row 0"),
        ({"dataframe_records": [ROW], "params": []}, "application/json", 400, "'params' must be a JSON object"),
        ({"dataframe_records": [ROW], "params": {"predict_method": ["predict"]}}, "application/json", 400, "param 'predict_method' must be one of"),
        ({"dataframe_records": [dict(ROW, f2="high")]}, "application/json", 400, "column 'f2' expects a number, got 'high' in row 0"),
        ({"dataframe_records": [dict(ROW, f2=True)]}, "application/json", 400, "column 'f2' expects a number"),
        ({"instances": [[0.1] * 7]}, "application/json", 400, "must have 8 values"),
        ({"dataframe_split": {"columns": list(ROW), "data": []}}, "application/json", 400, "no rows"),
        ({"dataframe_records": [dict(ROW, f5=None)]}, "application/json", 400, "column 'f5' has a missing value"),
        ({"dataframe_split": {"columns": list(ROW), "data": [[0.1] * 8]}, "params": {"temperature": 1}}, "application/json", 400, "unknown param(s) 'temperature'"),
        ({"dataframe_split": {"columns": list(ROW), "data": [[0.1] * 8]}, "params": {"predict_method": "explain"}}, "application/json", 400, "predict_method"),
        ({"rows": [[1]]}, "application/json", 400, "unknown key(s) 'rows'"),
        ({}, "application/json", 400, "exactly one of"),
        ('{"dataframe_split": ', "application/json", 400, "not valid JSON"),
        (b"\xff\xfe{}", "application/json", 400, "not valid UTF-8"),
        ({"dataframe_records": [ROW]}, "application/xml", 415, "not supported"),
        ("f0,f1\n1,2\n", "text/csv", 400, "missing column(s)"),
    ],
)
def test_bad_input_is_answered_with_a_message_naming_the_problem(fraud, body, content_type, status, needle):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = fraud.score_body(raw, content_type)
    assert response.status == status
    assert needle in response.body["message"], response.body
    assert response.body["error_code"]
    # ...and the service answers the next request normally
    assert fraud.score_document({"dataframe_records": [ROW]}).status == 200


def test_extra_columns_are_ignored_like_mlflow_and_named_in_a_log_line(fraud, caplog):
    plain = fraud.score_document({"dataframe_records": [ROW]})
    with caplog.at_level("WARNING", logger="mpack"):
        extra = fraud.score_document({"dataframe_records": [dict(ROW, customer_id="c-1")]})
        split = fraud.score_document({"dataframe_split": {"columns": ["request_id", *ROW], "data": [["r-1", *ROW.values()]]}})
    assert plain.body == extra.body == split.body and plain.status == 200
    assert "customer_id" in caplog.text and "request_id" in caplog.text


def test_nan_literal_where_the_model_cannot_take_it_is_refused(fraud):
    response = fraud.score_body('{"dataframe_records": [' + json.dumps(dict(ROW, f1=0)).replace("0}", "NaN}").replace('"f1": 0,', '"f1": NaN,') + "]}", "application/json")
    assert response.status == 400 and "missing value" in response.body["message"]


def test_oversized_body_is_413(fraud):
    body = '{"instances": [' + ",".join(["[0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1]"] * 200_000) + "]}"
    assert len(body) > MAX_BODY_BYTES
    response = fraud.score_body(body, "application/json")
    assert response.status == 413 and response.body["error_code"] == "PAYLOAD_TOO_LARGE"


def test_http_routes(fraud):
    assert fraud.handle_http("GET", "/ping", None, None).status == 200
    assert fraud.handle_http("GET", "/health", None, None).status == 200
    version = fraud.handle_http("GET", "/version", None, None)
    assert version.status == 200 and version.headers["Content-Type"].startswith("text/plain") and version.json() == version.body
    metadata = fraud.handle_http("GET", "/metadata", None, None)
    assert metadata.status == 200 and metadata.body["model"]["name"] == "fraud"
    assert fraud.handle_http("GET", "/invocations", None, None).status == 405
    assert fraud.handle_http("POST", "/nowhere", "application/json", "{}").status == 404
    assert fraud.handle_http("POST", "/invocations", "application/json", json.dumps({"dataframe_records": [ROW]})).status == 200


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)
_keys = st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "params", "columns", "data", "f0", "f1"])
_shaped = st.dictionaries(_keys, _json | st.dictionaries(_keys, _json, max_size=4), max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=_json | _shaped)
def test_arbitrary_json_documents_get_a_well_formed_answer(fraud, mixed, document):
    for service in (fraud, mixed):
        response = service.score_document(document)
        assert response.status in (200, 400, 413, 415), response.body
        assert ("predictions" in response.body) if response.status == 200 else {"error_code", "message"} <= set(response.body)
        json.dumps(response.body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/csv", None, "text/plain", "application/x-www-form-urlencoded"]))
def test_arbitrary_bytes_get_a_well_formed_answer(fraud, mixed, body, content_type):
    for service in (fraud, mixed):
        response = service.score_body(body, content_type)
        assert 200 <= response.status < 500, response.body
        json.dumps(response.body)
