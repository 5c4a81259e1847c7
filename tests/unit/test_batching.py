"""Dynamic batching (handlers/batching.py) on a real onnxruntime session of a small MLP, called
from many threads at once, as the HTTP container's thread pool calls it."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mpack.handlers.batching import BatchingSession

FEATURES, HIDDEN = 16, 256


@pytest.fixture(scope="module")
def session():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32), rng.normal(size=(HIDDEN, 3)).astype(np.float32)]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["h"]), helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w1"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(weights[0], "w0"), numpy_helper.from_array(weights[1], "w1")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def concurrently(calls: list) -> list:
    """Run every call in its own thread, released together; (result or exception) per call, in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def worker(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:  # noqa: BLE001 - the test inspects each request's own failure
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a batched call hung"
    return results


def test_concurrent_requests_are_coalesced_and_each_gets_its_own_rows_in_order(session):
    runs: list[tuple[int, int]] = []
    batching = BatchingSession(session, max_rows=256, max_wait_ms=0, observe=lambda rows, requests: runs.append((rows, requests)))
    rng = np.random.default_rng(1)
    inputs = [rng.normal(size=(1 + i % 4, FEATURES)).astype(np.float32) * (i + 1) for i in range(48)]
    answers = concurrently([lambda x=x: batching.run(["y"], {"x": x}) for x in inputs])
    for x, answer in zip(inputs, answers):
        alone = session.run(["y"], {"x": x})[0]
        assert answer[0].shape == alone.shape
        np.testing.assert_allclose(answer[0], alone, rtol=1e-5, atol=1e-4)
    assert sum(requests for _, requests in runs) == len(inputs) and sum(rows for rows, _ in runs) == sum(len(x) for x in inputs)
    assert len(runs) < len(inputs) and max(requests for _, requests in runs) > 1, runs  # coalesced
    assert batching.queue_depth == 0


def test_a_request_that_cannot_join_or_breaks_the_model_fails_alone(session):
    batching = BatchingSession(session, max_rows=64)
    good = np.ones((2, FEATURES), np.float32)
    calls = [lambda: batching.run(["y"], {"x": good}) for _ in range(10)]
    calls[3] = lambda: batching.run(["y"], {"x": np.ones((2, FEATURES + 1), np.float32)})  # wrong width
    calls[6] = lambda: batching.run(["y"], {"x": np.ones((2, FEATURES), np.float64)})  # wrong dtype
    calls[8] = lambda: batching.run(["nope"], {"x": good})  # an output the model has not
    answers = concurrently(calls)
    for index, answer in enumerate(answers):
        if index in (3, 6, 8):
            assert isinstance(answer, Exception), index
        else:
            np.testing.assert_allclose(answer[0], session.run(["y"], {"x": good})[0], rtol=1e-5)


def test_a_lone_request_runs_at_once_in_its_own_thread(session):
    threads: list[int] = []
    batching = BatchingSession(session, max_rows=64, max_wait_ms=500, observe=lambda rows, requests: threads.append(threading.get_ident()))
    for _ in range(3):
        batching.run(["y"], {"x": np.ones((1, FEATURES), np.float32)})
    assert threads == [threading.get_ident()] * 3  # no hop to another thread, and (one request per batch) no wait


def test_large_requests_and_other_sessions_pass_through(session):
    batching = BatchingSession(session, max_rows=4)
    assert batching.run(["y"], {"x": np.ones((10, FEATURES), np.float32)})[0].shape == (10, 3)
    assert batching.get_providers() == session.get_providers()  # the session's own API is still there


def test_the_dispatcher_runs_a_lone_request_inline_and_concurrent_ones_on_worker_threads():
    import asyncio

    from mpack.handlers.batching import Dispatcher

    dispatch = Dispatcher(workers=4)

    async def scenario():
        loop_thread = threading.get_ident()
        alone = await dispatch(threading.get_ident)
        together = await asyncio.gather(*(dispatch(threading.get_ident) for _ in range(5)))
        return loop_thread, alone, together

    loop_thread, alone, together = asyncio.run(scenario())
    assert alone == loop_thread  # no thread hop for a lone request
    assert loop_thread not in together and dispatch.in_flight == 0  # arrivals together meet on worker threads


def test_batch_settings_come_from_the_build_and_the_environment_overrides_them():
    from mpack.handlers.batching import batch_settings

    assert batch_settings({}, {}) == (0, 2.0)  # off unless asked
    assert batch_settings({"max_batch_size": 32, "max_batch_wait_ms": 5.0}, {}) == (32, 5.0)
    assert batch_settings({"max_batch_size": 32}, {"MPACK_MAX_BATCH_SIZE": "0"}) == (0, 2.0)  # an operator turns it off
    assert batch_settings({}, {"MPACK_MAX_BATCH_SIZE": "64", "MPACK_MAX_BATCH_WAIT_MS": "0"}) == (64, 0.0)
    with pytest.raises(SystemExit, match="MPACK_MAX_BATCH_SIZE='many'"):
        batch_settings({}, {"MPACK_MAX_BATCH_SIZE": "many"})
