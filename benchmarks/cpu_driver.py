"""Serve N in-process requests to a benchmark app, then flush the tracer (runs in a venv).

    python cpu_driver.py flask|fastapi|django N [FLUSH_EVERY] [PATH]

No HTTP server and no load generator: the app's WSGI/ASGI callable is called directly
with a request like the one wrk sends (`GET PATH`, `/hello` unless given, a few headers),
N times, on one
thread (FastAPI runs its sync endpoint in its thread pool, as under uvicorn). The
active tracer provider, if any, is flushed after the warm-up and then after every
`FLUSH_EVERY` requests (10 unless given; cpu.py sets the batch processor's timer far
out, so no export happens at a time-dependent point): the export of every span (to the receiver the
environment names) happens inside the measured process, at the same points in every
run. Prints `requests=N` and the tracer provider's class name.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

HEADERS = [("host", "127.0.0.1:8000"), ("user-agent", "wrk/4.2"), ("accept", "*/*")]
WARMUP = 5
#: requests between two forced flushes (request counts are multiples of it)
FLUSH_EVERY = 10
_every = [FLUSH_EVERY]


def flask_requests(count: int, every: Callable[[int], None], path: str = "/hello") -> None:
    from flask_app import app

    wsgi_requests(app, count, every, path)


def django_requests(count: int, every: Callable[[int], None], path: str = "/hello") -> None:
    """The Django app (PostgreSQL behind `/db`; `/hello` touches no database) through its
    WSGI handler."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")
    from django_app import application

    wsgi_requests(application, count, every, path)


def wsgi_requests(
    app: Callable[..., Any], count: int, every: Callable[[int], None], path: str
) -> None:
    base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in HEADERS:
        base["HTTP_" + name.upper().replace("-", "_")] = value
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    for done in range(count):
        every(done)
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not body:
            raise SystemExit("empty response")
    if any(not s.startswith("200") for s in statuses):
        raise SystemExit(f"unexpected status: {set(statuses)}")


def fastapi_requests(count: int, every: Callable[[int], None], path: str = "/hello") -> None:
    from fastapi_app import app

    asgi_requests(app, count, every, path)


_django_asgi: list[Any] = []


def django_asgi_requests(count: int, every: Callable[[int], None], path: str = "/hello") -> None:
    """The Django app through its ASGI handler (made once), as under uvicorn."""
    if not _django_asgi:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")
        from django.core.asgi import get_asgi_application

        _django_asgi.append(get_asgi_application())
    asgi_requests(_django_asgi[0], count, every, path, wait_after_body=True)


def asgi_requests(
    app: Callable[..., Any],
    count: int,
    every: Callable[[int], None],
    path: str,
    wait_after_body: bool = False,
) -> None:
    """`wait_after_body`: a `receive` after the body waits (for a disconnect that never
    comes), as a server's does; otherwise it hands the body again."""
    raw_headers = [(k.encode(), v.encode()) for k, v in HEADERS]
    statuses: list[int] = []

    body_sent = [False]

    async def receive() -> dict:
        if wait_after_body and body_sent[0]:
            await asyncio.Event().wait()
        body_sent[0] = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def serve() -> None:
        for done in range(count):
            every(done)
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": list(raw_headers),
                "client": ("127.0.0.1", 40000),
                "server": ("127.0.0.1", 8000),
                "state": {},
            }
            body_sent[0] = False
            await app(scope, receive, send)

    asyncio.run(serve())
    if any(s != 200 for s in statuses):
        raise SystemExit(f"unexpected status: {set(statuses)}")


def flush() -> str:
    """Flush the active tracer provider (if any); returns its class name."""
    try:
        from opentelemetry import trace
    except ImportError:
        return "none"
    provider = trace.get_tracer_provider()
    flush_all = getattr(provider, "force_flush", None)
    if flush_all is not None:
        flush_all()
    return type(provider).__name__


_traced: list[bool] = []


def flush_points(done: int) -> None:
    """Called before each request: flush once the warm-up is over, then every FLUSH_EVERY."""
    if done >= WARMUP and (done - WARMUP) % _every[0] == 0:
        if not _traced:  # the untraced baseline pays no failed import per flush point
            _traced.append(flush() != "none")
        elif _traced[0]:
            flush()


def main() -> None:
    app, count = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3:
        _every[0] = int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/hello"
    serve = {"flask": flask_requests, "django": django_requests}.get(app, fastapi_requests)
    serve(WARMUP + count, flush_points, path)
    print(f"requests={count} provider={flush()}")


if __name__ == "__main__":
    main()
