"""Endpoints the garbage probe adds to a benchmark app: client calls, some of them failing.

- `/db-error`: a query the database rejects (an unknown column), the error handled by
  the view (pymysql for Flask and FastAPI, psycopg through Django's connection);
- `/pg/psycopg2` (Flask), `/pg/psycopg-async` (FastAPI): a PostgreSQL connection opened
  for the request, one query, closed;
- `/call/requests`, `/call/httpx`: an outgoing call to `GARBAGE_DOWNSTREAM` (a local
  HTTP server the test runs);
- `/call/refused/requests`, `/call/refused/httpx`: the same call to `GARBAGE_REFUSED`,
  a port nothing listens on, the connection error handled by the view.

`django-fresh` is the Django app with Django's default `CONN_MAX_AGE = 0` (a connection
per request) instead of the benchmark's persistent one; `django-asgi` the Django app
served through its ASGI handler (where Django opens a connection per request too).
FastAPI's httpx calls use an `AsyncClient` per request (each probe phase runs its own
event loop); Flask's share one `httpx.Client`, as apps usually do.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

_MISSING_COLUMN = "SELECT no_such_column FROM bench_items WHERE id = %s"
_ITEM = "SELECT id, name FROM bench_items WHERE id = %s"
PG_DSN = "host=127.0.0.1 dbname=test user=postgres"


def _urls() -> Dict[str, str]:
    return {
        "/call/requests": os.environ.get("GARBAGE_DOWNSTREAM", "http://127.0.0.1:9/"),
        "/call/refused/requests": os.environ.get("GARBAGE_REFUSED", "http://127.0.0.1:9/"),
    }


def _requests_call(url: str) -> Callable[[], Dict[str, Any]]:
    import requests

    def call() -> Dict[str, Any]:
        try:
            return {"status": requests.get(url, timeout=10).status_code}
        except requests.ConnectionError:
            return {"status": None}

    return call


def _httpx_call(url: str) -> Callable[[], Dict[str, Any]]:
    import httpx

    client = httpx.Client(timeout=10)

    def call() -> Dict[str, Any]:
        try:
            return {"status": client.get(url).status_code}
        except httpx.ConnectError:
            return {"status": None}

    return call


def _async_httpx_call(url: str) -> Callable[[], Any]:
    import httpx

    async def call() -> Dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                return {"status": (await client.get(url)).status_code}
        except httpx.ConnectError:
            return {"status": None}

    return call


def _calls() -> Dict[str, Callable[[], Any]]:
    urls = _urls()
    downstream, refused = urls["/call/requests"], urls["/call/refused/requests"]
    return {
        "/call/requests": _requests_call(downstream),
        "/call/refused/requests": _requests_call(refused),
        "/call/httpx": _httpx_call(downstream),
        "/call/refused/httpx": _httpx_call(refused),
    }


def add_flask() -> None:
    import flask_app
    import pymysql

    def db_error() -> Dict[str, Any]:
        try:
            with flask_app._db().cursor() as cur:
                cur.execute(_MISSING_COLUMN, (42,))
        except pymysql.Error as exc:
            return {"error": exc.args[0]}
        return {"error": None}

    def psycopg2_item() -> Dict[str, Any]:
        import psycopg2

        connection = psycopg2.connect(PG_DSN)
        try:
            with connection.cursor() as cur:
                cur.execute(_ITEM, (42,))
                row = cur.fetchone()
        finally:
            connection.close()
        return {"id": row[0], "name": row[1]}

    flask_app.app.add_url_rule("/db-error", "db_error", db_error)
    flask_app.app.add_url_rule("/pg/psycopg2", "psycopg2_item", psycopg2_item)
    for path, call in _calls().items():
        flask_app.app.add_url_rule(path, path, call)


def add_fastapi() -> None:
    import fastapi_app
    import pymysql

    def db_error() -> Dict[str, Any]:
        try:
            with fastapi_app._db().cursor() as cur:
                cur.execute(_MISSING_COLUMN, (42,))
        except pymysql.Error as exc:
            return {"error": exc.args[0]}
        return {"error": None}

    async def psycopg_async_item() -> Dict[str, Any]:
        import psycopg

        async with await psycopg.AsyncConnection.connect(PG_DSN) as connection:
            cur = await connection.execute(_ITEM, (42,))
            row = await cur.fetchone()
        assert row is not None
        return {"id": row[0], "name": row[1]}

    fastapi_app.app.add_api_route("/db-error", db_error)
    fastapi_app.app.add_api_route("/pg/psycopg-async", psycopg_async_item)
    urls = _urls()
    for path, url in urls.items():
        fastapi_app.app.add_api_route(path, _requests_call(url))
        fastapi_app.app.add_api_route(path.replace("requests", "httpx"), _async_httpx_call(url))


def add_django() -> None:
    import django_settings
    from django.db import Error, connection
    from django.http import JsonResponse
    from django.urls import path as route

    def db_error(request: Any) -> JsonResponse:
        try:
            with connection.cursor() as cur:
                cur.execute(_MISSING_COLUMN, [42])
        except Error as exc:
            return JsonResponse({"error": type(exc).__name__})
        return JsonResponse({"error": None})

    def view(call: Callable[[], Dict[str, Any]]) -> Callable[[Any], JsonResponse]:
        return lambda request: JsonResponse(call())

    django_settings.urlpatterns.append(route("db-error", db_error))
    for path, call in _calls().items():
        django_settings.urlpatterns.append(route(path.lstrip("/"), view(call)))


def add_django_fresh() -> None:
    """Django with its default `CONN_MAX_AGE = 0`: a new connection for every request."""
    import django_settings

    django_settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    add_django()


ADD = {
    "flask": add_flask,
    "fastapi": add_fastapi,
    "django": add_django,
    "django-fresh": add_django_fresh,
    "django-asgi": add_django,
}
