"""Endpoints the garbage probe adds to a benchmark app: the request paths that fail inside.

- `/db-error`: a query the database rejects (an unknown column), the error handled by
  the view (pymysql for Flask and FastAPI, psycopg through Django's connection);
- `/call/requests`, `/call/httpx`: an outgoing call to `GARBAGE_DOWNSTREAM` (a local
  HTTP server the test runs);
- `/call/refused/requests`, `/call/refused/httpx`: the same call to `GARBAGE_REFUSED`,
  a port nothing listens on, the connection error handled by the view.

FastAPI's httpx calls use an `AsyncClient` per request (each probe phase runs its own
event loop); Flask's share one `httpx.Client`, as apps usually do.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

_MISSING_COLUMN = "SELECT no_such_column FROM bench_items WHERE id = %s"


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

    flask_app.app.add_url_rule("/db-error", "db_error", db_error)
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

    fastapi_app.app.add_api_route("/db-error", db_error)
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


ADD = {"flask": add_flask, "fastapi": add_fastapi, "django": add_django}
