"""The Python worker of the local Functions host: runs INSIDE the app's own process.

Started as ``python -I -S worker.py APP_ROOT`` with only the app folder and its
``.python_packages/lib/site-packages`` on the path (what Azure's worker puts there), it imports
``function_app.py``, indexes the one FunctionApp in it (as the language worker does for the Python v2
model), reports the functions to the host, then answers invocations: each request becomes a real
``azure.functions.HttpRequest``, the user's function runs (sync functions on a thread pool, async
ones on one event loop, as the real worker runs them) and its ``HttpResponse`` goes back.

Frames on both pipes: one JSON header line, then ``length`` bytes of body. This file imports only
the standard library before the app's own packages: it must not need mpack on the path.
"""

import importlib
import inspect
import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

SCRIPT_MODULE = "function_app"
SITE_PACKAGES = os.path.join(".python_packages", "lib", "site-packages")


class Channel:
    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer
        self.lock = threading.Lock()

    def send(self, header: dict, body: bytes = b"") -> None:
        line = json.dumps(dict(header, length=len(body))).encode() + b"\n"
        with self.lock:
            self.writer.write(line + body)
            self.writer.flush()

    def receive(self):
        line = self.reader.readline()
        if not line:
            return None, b""
        header = json.loads(line)
        return header, self.reader.read(header.get("length", 0)) if header.get("length") else b""


class InvocationContext:
    """What a function receives as ``context`` (the fields the real worker's Context carries)."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self.invocation_id, self.function_name, self.function_directory = invocation_id, function_name, function_directory
        self.trace_context = self.retry_context = self.thread_local_storage = None


def index(module, func) -> list:
    """The functions of the module's one FunctionApp, as the language worker indexes them."""
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if not apps:
        raise RuntimeError(f"{SCRIPT_MODULE}.py defines no FunctionApp (azure.functions.FunctionApp) at module level")
    if len({id(a) for a in apps}) > 1:
        raise RuntimeError(f"{SCRIPT_MODULE}.py defines more than one FunctionApp; the Functions host indexes exactly one")
    return apps[0].get_functions()


def describe(function) -> dict:
    bindings = function.get_bindings_dict()["bindings"]
    trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), {})
    methods = trigger.get("methods")
    return {
        "name": function.get_function_name(),
        "trigger": str(trigger.get("type")),
        "binding": trigger.get("name"),
        "route": trigger.get("route"),
        "methods": [str(getattr(m, "value", m)).upper() for m in methods] if methods else None,
        "auth_level": str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel")) or "function").lower(),
    }


class Invoker:
    def __init__(self, functions: list, func, root: str, channel: Channel) -> None:
        self.functions = {f.get_function_name(): f for f in functions}
        self.func, self.root, self.channel = func, root, channel
        threads = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        self.pool = ThreadPoolExecutor(max_workers=int(threads) if threads else min(32, (os.cpu_count() or 1) + 4))
        self.loop = None  # started with the first async function (asyncio costs ~40 ms to import)

    def _event_loop(self):
        import asyncio

        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True, name="functions-event-loop").start()
        return self.loop

    def dispatch(self, header: dict, body: bytes) -> None:
        function = self.functions[header["function"]]
        user = function.get_user_function()
        if inspect.iscoroutinefunction(user):
            import asyncio

            future = asyncio.run_coroutine_threadsafe(self._call_async(user, function, header, body), self._event_loop())
            future.add_done_callback(lambda done: self._reply(header, done.result()))
        else:
            self.pool.submit(lambda: self._reply(header, self._call(user, function, header, body)))

    def _arguments(self, user, function, header: dict, body: bytes) -> dict:
        request = self.func.HttpRequest(
            method=header["method"],
            url=header["url"],
            headers=header["headers"],
            params=header["params"],
            route_params=header["route_params"],
            body=body,
        )
        arguments = {describe(function)["binding"]: request}
        if "context" in inspect.signature(user).parameters:
            arguments["context"] = InvocationContext(header["id"], function.get_function_name(), self.root)
        return arguments

    def _call(self, user, function, header: dict, body: bytes):
        try:
            return self._response(user(**self._arguments(user, function, header, body)))
        except BaseException as exc:  # the host answers 500 and logs it; the worker lives on
            return _failure(exc)

    async def _call_async(self, user, function, header: dict, body: bytes):
        try:
            return self._response(await user(**self._arguments(user, function, header, body)))
        except BaseException as exc:
            return _failure(exc)

    def _response(self, value):
        if isinstance(value, self.func.HttpResponse):
            headers = dict(value.headers.items())
            if value.mimetype and "content-type" not in {k.lower() for k in headers}:
                headers["Content-Type"] = f"{value.mimetype}; charset={value.charset}" if value.charset else value.mimetype
            return {"ok": True, "status": value.status_code, "headers": headers}, value.get_body() or b""
        if isinstance(value, (str, bytes)):
            data = value.encode() if isinstance(value, str) else value
            return {"ok": True, "status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"}}, data
        return {"ok": False, "error": f"the function returned {type(value).__name__}, not an azure.functions.HttpResponse", "traceback": ""}, b""

    def _reply(self, header: dict, outcome) -> None:
        result, body = outcome
        self.channel.send(dict(result, type="result", id=header["id"]), body)


def _failure(exc: BaseException):
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:4000], "traceback": "".join(traceback.format_exception(exc))[-8000:]}, b""


def main() -> int:
    started = time.perf_counter()
    root = os.path.abspath(sys.argv[1])
    channel = Channel(os.fdopen(0, "rb"), os.fdopen(int(os.environ["MPACK_CHANNEL_FD"]), "wb"))
    sys.stdin = open(os.devnull)
    sys.path[:0] = [root, os.path.join(root, SITE_PACKAGES)]
    os.chdir(root)
    try:
        func = importlib.import_module("azure.functions")
        functions = index(importlib.import_module(SCRIPT_MODULE), func)
    except BaseException as exc:  # an init error: reported, then the worker exits as the real one does
        channel.send({"type": "init_error", "error": f"{type(exc).__name__}: {exc}"[:4000], "traceback": "".join(traceback.format_exception(exc))[-8000:]})
        return 1
    channel.send({"type": "indexed", "functions": [describe(f) for f in functions], "init_ms": (time.perf_counter() - started) * 1000})
    invoker = Invoker(functions, func, root, channel)
    while True:
        header, body = channel.receive()
        if header is None:  # the host closed the pipe: shut down
            return 0
        if header["type"] == "modules":
            channel.send({"type": "modules", "id": header["id"], "modules": sorted(sys.modules)})
        else:
            invoker.dispatch(header, body)


if __name__ == "__main__":
    sys.exit(main())
