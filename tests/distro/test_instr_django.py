"""Django in-process under real servers (WSGI: wsgiref, ASGI: uvicorn) on PostgreSQL.

One settings module for the whole process (Django can be configured once): views that
query PostgreSQL through Django's connection (psycopg 3), spans at OTLP.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from tests.helpers.data_tracing import instrumented, receiver
from tests.helpers.need import tcp_service

__all__ = ["receiver"]


def _configure() -> None:
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "NAME": "test",
                "USER": "postgres",
            }
        },
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    import django

    django.setup()


def order(_request: Any, order_id: int) -> Any:
    from django.db import connection
    from django.http import JsonResponse

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::int * 2", [order_id])
        doubled = cursor.fetchone()[0]
    return JsonResponse({"order": order_id, "doubled": doubled})


def login(request: Any) -> Any:
    from django.http import JsonResponse

    sent = json.loads(request.body)
    return JsonResponse({"user": sent["user"], "token_secret": "s-1"})


def never_reads(_request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ignored", content_type="text/plain")


def _urls() -> list[Any]:
    from django.urls import path

    return [
        path("orders/<int:order_id>/", order),
        path("login/", login),
        path("upload/", never_reads),
    ]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture(scope="module", autouse=True)
def _django() -> Iterator[None]:
    tcp_service("127.0.0.1", 5432, "PostgreSQL")
    _configure()
    global urlpatterns
    urlpatterns = _urls()
    with instrumented("django"), instrumented("psycopg"):
        yield


urlpatterns: list[Any] = []


@pytest.fixture(scope="module")
def wsgi_url() -> Iterator[str]:
    from django.core.wsgi import get_wsgi_application

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def asgi_url() -> Iterator[str]:
    import uvicorn
    from django.core.asgi import get_asgi_application

    config = uvicorn.Config(get_asgi_application(), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(params=["wsgi", "asgi"])
def base_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def _server_span(spans: list[Any]) -> Any:
    [server] = [s for s in spans if s.kind == "SERVER"]
    return server


def test_a_request_is_a_server_span_with_route_and_its_sql_as_children(
    base_url: str, receiver: Any
) -> None:
    response = httpx.get(f"{base_url}/orders/21/?api_key=k-9&page=2")
    assert response.json() == {"order": 21, "doubled": 42}
    spans = receiver.wait_for_spans(2, where=lambda s: s.kind in ("SERVER", "CLIENT"))
    server = _server_span(spans)
    assert server.name == "GET orders/<int:order_id>/"
    assert server.attributes["http.route"] == "orders/<int:order_id>/"
    assert server.attributes["http.status_code"] == 200
    [sql] = [s for s in spans if s.attributes.get("db.statement") == "SELECT %s::int * 2"]
    assert sql.parent_span_id == server.span_id and sql.trace_id == server.trace_id
    assert sql.attributes["db.statement"] == "SELECT %s::int * 2"
    assert sql.attributes["db.system"] == "postgresql"
    assert json.loads(server.attributes["http.response.body"]) == {"order": 21, "doubled": 42}
    urls = [str(server.attributes.get(k)) for k in ("http.target", "http.url", "url.query")]
    assert any("api_key=****&page=2" in url for url in urls), server.attributes
    assert "k-9" not in str(server.attributes)


def test_payloads_are_masked(base_url: str, receiver: Any) -> None:
    response = httpx.post(
        f"{base_url}/login/",
        json={"user": "ada", "password": "hunter2"},
        headers={"Authorization": "Bearer t", "X-Request-Id": "r-1"},
    )
    assert response.json() == {"user": "ada", "token_secret": "s-1"}
    server = _server_span(receiver.wait_for_spans(1, where=lambda s: s.kind == "SERVER"))
    assert server.name == "POST login/"
    headers = json.loads(server.attributes["http.request.headers"])
    assert headers["authorization"] == "****" and headers["x-request-id"] == "r-1"
    assert json.loads(server.attributes["http.request.body"]) == {
        "user": "ada",
        "password": "****",
    }
    assert json.loads(server.attributes["http.response.body"]) == {
        "user": "ada",
        "token_secret": "****",
    }
    assert "content-type" in json.loads(server.attributes["http.response.headers"])


def test_a_body_the_view_never_reads_is_not_read(base_url: str, receiver: Any) -> None:
    response = httpx.post(f"{base_url}/upload/", content=b"x" * 5000)
    assert response.text == "ignored"
    server = _server_span(receiver.wait_for_spans(1, where=lambda s: s.kind == "SERVER"))
    assert "http.request.body" not in server.attributes
    assert server.attributes["http.response.body"] == "ignored"


def test_the_callers_trace_is_continued(base_url: str, receiver: Any) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    # urllib: not instrumented, so the traceparent below is the one that arrives
    call = urllib.request.Request(
        f"{base_url}/orders/1/", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    )
    with urllib.request.urlopen(call, timeout=30) as answer:
        assert json.load(answer) == {"order": 1, "doubled": 2}
    server = _server_span(receiver.wait_for_spans(1, where=lambda s: s.kind == "SERVER"))
    assert (server.trace_id, server.parent_span_id) == (trace_id, parent)


def test_instrumenting_twice_wraps_once_and_one_undo_restores_django() -> None:
    from django.core.handlers.base import BaseHandler

    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import django as ours
    from tests.helpers.data_tracing import tracing

    original = BaseHandler.__dict__["load_middleware"]
    while hasattr(original, "__wrapped__"):  # the session may have instrumented it already
        original = original.__wrapped__
    ours.uninstrument()
    try:
        ours.instrument(Config(token="t_twice"), tracing().provider)
        ours.instrument(Config(token="t_twice"), tracing().provider)
        wrapped = BaseHandler.__dict__["load_middleware"]
        assert getattr(wrapped, "__wrapped__", None) is original  # one layer, not two
    finally:
        ours.uninstrument()
    assert BaseHandler.__dict__["load_middleware"] is original
