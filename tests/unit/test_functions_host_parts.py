"""The local Functions host's pure parts: route templates as the host matches them, auth levels and
keys, host.json's timespans, and the azure target's option checks."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mpack.infra.errors import MpackError
from mpack.infra.functions_host.app_config import parse_timespan, read_host_json
from mpack.infra.functions_host.keys import HostKeys
from mpack.infra.functions_host.routes import compile_route, find_route, route_table


def _function(name, route=None, methods=None, level="function"):
    return {"name": name, "route": route, "methods": methods, "auth_level": level, "trigger": "httpTrigger", "binding": "req"}


@pytest.mark.parametrize(
    "route, path, params",
    [
        ("invocations", "/api/invocations", {}),
        ("invocations", "/api/Invocations/", {}),  # case-insensitive, trailing slash
        ("v2/{*path}", "/api/v2/models/fraud/infer", {"path": "models/fraud/infer"}),
        ("v2/{*path}", "/api/v2", {}),
        ("items/{id:int}", "/api/items/42", {"id": "42"}),
        ("items/{id:int}", "/api/items/x", None),
        ("items/{name?}", "/api/items", {}),
        ("items/{name}", "/api/items/a%20b", {"name": "a b"}),
        ("items/{name}", "/api/items/a/b", None),
        (None, "/api/ping_fn", {}),  # no route: the function's name
    ],
)
def test_route_templates(route, path, params):
    function = _function("ping_fn", route)
    assert compile_route("api", function).match("GET", path) == params


def test_literal_routes_win_and_methods_must_match():
    routes = route_table("api", [_function("catch", "{*rest}"), _function("ping", "ping", ["GET"])])
    assert find_route(routes, "GET", "/api/ping")[0].function["name"] == "ping"
    assert find_route(routes, "POST", "/api/ping")[0].function["name"] == "catch"
    only = route_table("", [_function("ping", "ping", ["GET"])])
    assert find_route(only, "DELETE", "/ping") is None and find_route(only, "GET", "/ping") is not None


def test_auth_levels_and_keys():
    keys = HostKeys()
    own = keys.for_function("score")
    assert keys.allows("anonymous", "score", {}, {})
    assert not keys.allows("function", "score", {}, {})
    assert keys.allows("function", "score", {"x-functions-key": own}, {})
    assert keys.allows("function", "score", {}, {"code": keys.host_default})
    assert not keys.allows("function", "other", {"x-functions-key": own}, {})  # a function key is its function's only
    assert not keys.allows("admin", "score", {"x-functions-key": keys.host_default}, {})
    assert keys.allows("admin", "score", {"x-functions-key": keys.master}, {})


def test_timespans_and_host_json(tmp_path):
    assert parse_timespan("00:05:00", tmp_path) == 300
    assert parse_timespan("1.02:00:00", tmp_path) == 93600
    assert parse_timespan("-1", tmp_path) is None and parse_timespan(None, tmp_path) == 1800
    with pytest.raises(MpackError, match="not a timespan"):
        parse_timespan("5 minutes", tmp_path)
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}))
    assert read_host_json(tmp_path).route_prefix == ""
    (tmp_path / "host.json").write_text('{"version": "1.0"}')
    with pytest.raises(MpackError, match="version 2.0"):
        read_host_json(tmp_path)
    (tmp_path / "host.json").unlink()
    with pytest.raises(MpackError, match="not a Functions app"):
        read_host_json(tmp_path)


def test_azure_options_are_checked():
    from mpack.packager.pipeline import BuildOptions
    from mpack.packager.targets import check_target_options, get_target

    azure, lambda_zip = get_target("azure"), get_target("lambda")
    base = BuildOptions(model="m", target="azure")
    check_target_options(azure, replace(base, auth="anonymous", instance_memory_mb=4096))
    with pytest.raises(MpackError, match="--auth public is not an auth level"):
        check_target_options(azure, replace(base, auth="public"))
    with pytest.raises(MpackError, match="only applies to --target azure"):
        check_target_options(lambda_zip, replace(base, target="lambda", instance_memory_mb=2048))
    with pytest.raises(MpackError, match="--lambda-http"):
        check_target_options(azure, replace(base, lambda_http="asgi"))
