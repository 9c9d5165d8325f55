"""The lean ASGI path's span name and request attributes, through its memos (request
shape, route details, user agents), are contrib's for every request of a varied mix:
queries, clients, user agents and request ids per request, routes with and without
path parameters, a host-routed sub-application, unknown paths."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware, collect_request_attributes
from opentelemetry.instrumentation.fastapi import _get_default_span_details
from starlette.routing import Host, Router

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations._asgi_payloads import keyed_headers
from lumigo_opentelemetry.instrumentations._asgi_server import LeanServerSpans, _Shape, applies


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {}

    @app.get("/items/{item}")
    def item(item: int) -> dict[str, str]:
        return {}

    sub = Router()
    sub.add_route("/h", lambda request: None)
    app.router.routes.append(Host("api.example.com", app=sub))
    return app


def test_names_and_attributes_through_the_memos_are_contribs() -> None:
    app = _app()
    contrib = OpenTelemetryMiddleware(
        app, default_span_details=_get_default_span_details, exclude_spans=["receive", "send"]
    )
    assert applies(contrib)
    lean = LeanServerSpans(contrib, Config())
    paths = ["/hello", "/items/7", "/items/x", "/missing", "/h", "/hello/"]
    for n in range(900):  # more than each memo holds
        host = b"api.example.com" if n % 3 == 0 else b"127.0.0.1:8000"
        headers = [
            (b"host", host),
            (b"user-agent", f"client/{n % 20}.0{' bot' if n % 7 == 0 else ''}".encode()),
            (b"x-request-id", f"{n:032x}".encode()),
        ]
        scope: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "method": ("GET", "POST", "HEAD")[n % 3 % 2],
            "scheme": "http",
            "path": paths[n % len(paths)],
            "raw_path": b"",
            "query_string": f"id={n}".encode() if n % 5 else b"",
            "root_path": "",
            "headers": headers,
            "client": (f"10.0.0.{n % 4}", 40000 + n % 50),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        shape, peer = lean._shape(scope, keyed_headers(headers))
        got = dict(shape.raw)
        if peer is not None:
            got["net.peer.ip"], got["net.peer.port"] = peer
        name, extra = _get_default_span_details(scope)
        expected = collect_request_attributes(scope)
        expected.update(extra)
        assert (shape.name, list(got.items())) == (name, list(expected.items()))
    assert lean._routes  # the route details were kept apart from the shapes


def test_queries_on_a_known_shape_give_contribs_url() -> None:
    """Requests that differ only by their query take the shape without it from its
    memo and build `http.url` alone: escapes, parameters contrib redacts, non-UTF-8
    bytes, credentials in the host and several clients all give contrib's attributes."""
    app = _app()
    contrib = OpenTelemetryMiddleware(
        app, default_span_details=_get_default_span_details, exclude_spans=["receive", "send"]
    )
    lean = LeanServerSpans(contrib, Config())
    queries = [
        b"id=1",
        b"id=2&x=%20y",
        b"sig=secret&id=3",
        b"AWSAccessKeyId=a&Signature=b",
        b"q=caf\xc3\xa9",
        b"q=\xff\xfe",
        b"a=b\tc",
        b"id=4",
    ]
    hosts = [b"127.0.0.1:8000", b"user:pw@example.com"]
    for n in range(64):
        host = hosts[n // 32]
        headers = [(b"host", host), (b"user-agent", b"client/1.0")]
        scope: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": ("/hello", "/items/7")[n % 2],
            "raw_path": b"",
            "query_string": queries[n % len(queries)],
            "root_path": "",
            "headers": headers,
            "client": (f"10.0.0.{n % 3}", 40000 + n),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        try:
            expected = collect_request_attributes(scope)
        except UnicodeDecodeError:  # contrib's failure (the span is not started): ours too
            with pytest.raises(UnicodeDecodeError):
                lean._shape(scope, keyed_headers(headers))
            continue
        shape, peer = lean._shape(scope, keyed_headers(headers))
        got = dict(shape.raw)
        if peer is not None:
            got["net.peer.ip"], got["net.peer.port"] = peer
        name, extra = _get_default_span_details(scope)
        expected.update(extra)
        assert (shape.name, list(got.items())) == (name, list(expected.items())), scope
    assert lean._bases  # the shapes without their query were kept


def test_a_querys_shape_masks_and_checks_as_any_other() -> None:
    """A shape built from the one without its query masks and checks only its URL when
    the rest is known plain: the server span's attributes and the `unchecked` verdict
    are those the whole shape gives (secret parameters masked, an over-long URL left
    to `start_span`'s check), and stay so from the shape's memo."""
    app = _app()
    contrib = OpenTelemetryMiddleware(
        app, default_span_details=_get_default_span_details, exclude_spans=["receive", "send"]
    )
    config = Config()
    lean = LeanServerSpans(contrib, config)
    lean.spans.max_length = 60  # a URL with a long query is over it
    queries = [b"id=1", b"password=hunter2", b"id=" + b"9" * 40, b"api_key=k&id=2", b"id=3"]
    variants = 0
    for n in range(20):
        headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"client/1.0")]
        scope: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/hello",
            "raw_path": b"",
            "query_string": queries[n % len(queries)],
            "root_path": "",
            "headers": headers,
            "client": ("10.0.0.1", 40000 + n),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        shape, peer = lean._shape(scope, keyed_headers(headers))
        variants += shape.base is not None
        whole = _Shape(shape.name, dict(shape.raw))  # no base: every attribute checked
        expected = whole.server_attributes(config, lean.spans, peer)
        for _ in range(2):  # as found, then as kept
            attributes, unchecked = shape.server_attributes(config, lean.spans, peer)
            assert list(attributes.items()) == list(expected[0].items())
            assert unchecked == expected[1]
    assert variants >= 10
