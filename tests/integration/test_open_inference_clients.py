"""KServe V2 (Open Inference) through NVIDIA's own client, tritonclient, with its defaults, against
the HTTP container's server on three models: every output the metadata lists in one request, as
binary data (its default) and as JSON; a mixed table sent as one [rows, columns] BYTES tensor."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.helpers.bundle_runner import unzip
from tests.helpers.container_server import container_server

pytestmark = pytest.mark.slow
ROWS = 40


@pytest.fixture(scope="module")
def servers(built, tmp_path_factory):
    """name -> port of a server for the fraud classifier, the mixed-column classifier, the house regressor."""
    import contextlib

    with contextlib.ExitStack() as stack:
        ports = {}
        for name, uri in (("fraud", "models:/fraud@champion"), ("mixed", "models:/mixed/1"), ("house", "models:/house/1")):
            root = unzip(built(uri, runtime="onnx").artifact, tmp_path_factory.mktemp(name))
            ports[name] = stack.enter_context(container_server(root))
        yield ports


def _client(port: int):
    import tritonclient.http as triton

    return triton.InferenceServerClient(url=f"127.0.0.1:{port}")


def _column_inputs(frame):
    """One tensor per column, typed as a pandas frame types it (tritonclient's binary data by default)."""
    import tritonclient.http as triton

    inputs = []
    for column in frame.columns:
        values = frame[column].to_numpy()
        datatype = "BYTES" if values.dtype == object else "FP64"
        tensor = triton.InferInput(column, [len(frame)], datatype)
        tensor.set_data_from_numpy(values.astype(object if datatype == "BYTES" else np.float64))
        inputs.append(tensor)
    return inputs


def _expected(estimator, frame) -> dict:
    answers = {"label": estimator.predict(frame)}
    if hasattr(estimator, "predict_proba"):
        answers["probabilities"] = estimator.predict_proba(frame)
    return answers


def _assert_answers(result, names, expected) -> None:
    for name in names:
        got = result.as_numpy(name)
        assert got is not None, f"output {name} missing"
        want = expected["label" if name in ("label", "variable") else name]
        if got.dtype.kind in "fc" and name != "label":
            assert np.abs(got.reshape(want.shape) - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), name
        else:
            assert got.reshape(-1).tolist() == want.reshape(-1).tolist(), name


@pytest.mark.parametrize("model", ["fraud", "mixed", "house"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_gets_every_output_the_metadata_lists(servers, store, model, binary):
    import tritonclient.http as triton

    client = _client(servers[model])
    frame = store.frames["fraud" if model == "house" else model].iloc[:ROWS]
    listed = [output["name"] for output in client.get_model_metadata(model if model != "house" else "house")["outputs"]]
    assert listed == (["label", "probabilities"] if model != "house" else ["variable"])
    estimator = store.estimators[model]
    expected = _expected(estimator, frame)
    if model == "house":
        expected = {"label": estimator.predict(frame).reshape(-1, 1)}
    requested = [triton.InferRequestedOutput(name, binary_data=binary) for name in listed]
    result = client.infer(model, _column_inputs(frame), outputs=requested)
    _assert_answers(result, listed, expected)
    answered = [output["name"] for output in result.get_response()["outputs"]]
    assert answered == listed
    assert all(("data" in output) != binary for output in result.get_response()["outputs"])
    if len(listed) > 1:  # one output alone, the other first: as asked
        alone = client.infer(model, _column_inputs(frame), outputs=[triton.InferRequestedOutput(listed[1], binary_data=binary)])
        assert [output["name"] for output in alone.get_response()["outputs"]] == [listed[1]]
        _assert_answers(alone, [listed[1]], expected)


def test_predict_method_still_picks_the_default_outputs(servers, store):
    client = _client(servers["fraud"])
    frame = store.frames["fraud"].iloc[:ROWS]
    labels = client.infer("fraud", _column_inputs(frame))
    assert [o["name"] for o in labels.get_response()["outputs"]] == ["label"]
    proba = client.infer("fraud", _column_inputs(frame), parameters={"predict_method": "predict_proba"})
    assert [o["name"] for o in proba.get_response()["outputs"]] == ["probabilities"]
    assert np.abs(proba.as_numpy("probabilities") - store.estimators["fraud"].predict_proba(frame)).max() <= 1e-5


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_mixed_table_as_one_bytes_tensor_is_typed_column_by_column(servers, store, binary):
    import tritonclient.http as triton

    frame = store.frames["mixed"].iloc[:ROWS]
    assert frame["age"].isna().any()  # missing values travel as "nan" text too
    table = triton.InferInput("table", list(frame.shape), "BYTES")
    table.set_data_from_numpy(frame.astype(str).to_numpy(dtype=object), binary_data=binary)
    result = _client(servers["mixed"]).infer("mixed", [table], outputs=[triton.InferRequestedOutput("label"), triton.InferRequestedOutput("probabilities")])
    _assert_answers(result, ["label", "probabilities"], _expected(store.estimators["mixed"], frame))


def test_a_wrong_value_in_a_bytes_table_is_refused_naming_its_column(servers, store):
    frame = store.frames["mixed"].iloc[:3].astype(str)
    frame.iloc[1, frame.columns.get_loc("income")] = "lots"
    body = {"inputs": [{"name": "table", "shape": list(frame.shape), "datatype": "BYTES", "data": frame.to_numpy().reshape(-1).tolist()}]}
    request = urllib.request.Request(f"http://127.0.0.1:{servers['mixed']}/v2/models/mixed/infer", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    message = json.loads(refused.value.read())["error"]
    assert refused.value.code == 400 and "income" in message and "lots" in message, message


def test_an_output_the_model_does_not_have_is_refused_naming_the_ones_it_has(servers, store):
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    frame = store.frames["fraud"].iloc[:3]
    with pytest.raises(InferenceServerException, match="'scores'.*label, probabilities"):
        _client(servers["fraud"]).infer("fraud", _column_inputs(frame), outputs=[triton.InferRequestedOutput("scores")])
