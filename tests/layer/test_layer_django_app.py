"""Through the layer: an unmodified Django app on PostgreSQL (psycopg 3) with Redis as its
cache, injected by environment only. One request is one trace: the Django server span,
its SQL and its cache calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.layer_apps import (
    RunningApp,
    copy_like_init,
    exercise,
    injected_env,
    layer_for_tests,
    make_venv,
    plain_env,
)
from tests.helpers.need import tcp_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

DJANGO_APP = '''"""A plain Django app: PostgreSQL through the ORM connection, Redis as the cache."""
import os
import signal
import sys
import uuid
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings

RUN = uuid.uuid4().hex[:8]
settings.configure(
    DEBUG=False,
    SECRET_KEY="layer-test",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1",
                           "PORT": "5432", "NAME": "test", "USER": "postgres"}},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": "redis://127.0.0.1:6379/0"}},
    INSTALLED_APPS=[],
)

import django

django.setup()

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.urls import path


def price(request, item):
    key = "price:%s:%s" % (RUN, item)
    cached = cache.get(key)
    if cached is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT length(%s) * 100", [item])
            cached = cursor.fetchone()[0]
        cache.set(key, cached, 60)
    return JsonResponse({"item": item, "price": cached})


def facts(request):
    names = ("lumigo_opentelemetry", "opentelemetry.trace")
    modules = {n: getattr(sys.modules.get(n), "__file__", None) for n in names}
    return JsonResponse({"modules": modules})


urlpatterns = [path("price/<str:item>/", price), path("facts", facts)]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def _stop(*_args):
    raise SystemExit(0)


if __name__ == "__main__":
    from django.core.wsgi import get_wsgi_application

    signal.signal(signal.SIGTERM, _stop)
    server = make_server("127.0.0.1", int(os.environ["PORT"]), get_wsgi_application(),
                         handler_class=Quiet)
    print("app ready", flush=True)
    try:
        server.serve_forever()
    finally:
        print("app stopped", flush=True)
'''


def test_django_view_its_sql_and_its_cache_calls_are_one_trace(
    tmp_path: Path, otlp_receiver: Any
) -> None:
    tcp_service("127.0.0.1", 5432, "PostgreSQL")
    tcp_service("127.0.0.1", 6379, "Redis")
    layer = copy_like_init(layer_for_tests(), tmp_path / "volume" / "lumigo-otel")
    venv = make_venv("3.12", ["django>=4.2", "psycopg[binary]", "redis"])
    script = tmp_path / "app" / "django_app.py"
    script.parent.mkdir()
    script.write_text(DJANGO_APP, encoding="utf-8")
    service = "django-shop"
    paths = ("/price/book/", "/price/book/")  # the second answer comes from the cache

    def wait(_app: RunningApp) -> None:
        otlp_receiver.wait_for_spans(
            2, timeout=60, where=lambda s: s.service == service and s.kind == "SERVER"
        )

    baseline = exercise(venv, script, plain_env(), paths)
    injected = exercise(
        venv, script, injected_env(layer, otlp_receiver.url, service), paths, while_running=wait
    )
    assert injected.bodies == baseline.bodies == [{"item": "book", "price": 400}] * 2
    # the layer writes nothing to the app's stdout (the baseline's last line depends on how
    # quickly the stopped server noticed SIGTERM, so only the app's own lines are compared)
    app_lines = {"app ready", "app stopped"}
    assert set(injected.output.stdout.splitlines()) <= app_lines
    assert set(baseline.output.stdout.splitlines()) <= app_lines
    assert injected.output.stdout.startswith("app ready\n")
    assert injected.output.layer_warnings() == []
    assert "Traceback" not in injected.output.stderr, injected.output.stderr
    assert injected.facts["modules"]["lumigo_opentelemetry"].startswith(str(layer))

    spans = [s for s in otlp_receiver.spans() if s.service == service]
    servers = [s for s in spans if s.kind == "SERVER" and s.name == "GET price/<str:item>/"]
    assert len(servers) == 2
    first, second = (
        [s for s in spans if s.trace_id == server.trace_id] for server in servers
    )  # one trace per request
    by_id = {s.span_id: s for s in first}

    def under_server(span: Any) -> bool:
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
        return span is by_id[servers[0].span_id] or span.span_id == servers[0].span_id

    sql = [s for s in first if s.attributes.get("db.system") == "postgresql"]
    cache = [s for s in first if s.attributes.get("db.system") == "redis"]
    assert "SELECT length(%s) * 100" in [s.attributes.get("db.statement") for s in sql]
    assert [s.name for s in cache] == ["GET", "SET"]
    assert all(under_server(s) for s in sql + cache)
    # the second request: a cache hit, no SQL of ours
    assert [s.name for s in second if s.attributes.get("db.system") == "redis"] == ["GET"]
    assert "SELECT length(%s) * 100" not in [s.attributes.get("db.statement") for s in second]
