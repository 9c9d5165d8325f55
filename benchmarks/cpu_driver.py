"""Serve N in-process requests to a benchmark app, then flush the tracer (runs in a venv).

    python cpu_driver.py flask|fastapi|django N [FLUSH_EVERY] [PATH] [same|varied]

No HTTP server and no load generator: the app's WSGI/ASGI callable is called directly
with `GET PATH` (`/hello` unless given) N times, on one thread (FastAPI runs its sync
endpoint in its thread pool, as under uvicorn). The traffic (`same` unless given) is
either the identical request wrk sends every time (a few headers, no query), or
`varied`, requests as a real server sees them: each request `n` (counted from the first,
warm-up included) adds a query with an id (`?id=n`), carries a request id of its own
(`x-request-id`), one of 20 user agents, `accept-encoding`, and, on every second
request, an incoming W3C `traceparent` with a trace id of its own.

The client port is the connection's, as `run.py`'s servers see wrk's: for the WSGI apps
(gunicorn's sync worker closes every connection) a new one per request; for the ASGI
apps (uvicorn keeps them open) one port, or with varied traffic one of a pool of 50
connections. The WSGI environ holds the request line's target (`RAW_URI`), as
gunicorn's and most WSGI servers' do. Every value is a function of `n`, so two runs
send the same requests and count the same instructions; untraced and traced runs get
the same.

The active tracer provider, if any, is flushed after the warm-up and then after every
`FLUSH_EVERY` requests (10 unless given; cpu.py sets the batch processor's timer far
out, so no export happens at a time-dependent point): the export of every span (to the
receiver the environment names) happens inside the measured process, at the same points
in every run. Prints `requests=N` and the tracer provider's class name.
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
TRAFFIC = ("same", "varied")
_traffic = ["same"]
CLIENT_PORT = 40000
#: varied traffic: client ports (of kept-open connections) and user agents rotate
#: through pools of these sizes
PORTS = 50
#: the client ports a server that closes each connection sees, in turn (as the kernel's
#: ephemeral port range gives them)
CONNECTION_PORTS = 28000
AGENTS = 20
_MASK64 = (1 << 64) - 1


def _mix(n: int, salt: int) -> int:
    """A 64-bit value that looks random, from `n` alone (splitmix64's finaliser)."""
    z = (n * 0x9E3779B97F4A7C15 + salt) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def request_parts(
    n: int, traffic: str = "same", per_request_connection: bool = False
) -> tuple[str, int, list[tuple[str, str]]]:
    """Request `n`'s query string, client port and headers (lower-case names, in order);
    `per_request_connection`: a server that closes each connection (a new client port
    for every request), else one that keeps them open."""
    if per_request_connection:
        port = CLIENT_PORT + n % CONNECTION_PORTS
    else:
        port = CLIENT_PORT if traffic == "same" else CLIENT_PORT + n % PORTS
    if traffic == "same":
        return "", port, HEADERS
    headers = [
        ("host", "127.0.0.1:8000"),
        ("user-agent", f"client/{n % AGENTS}.0 (bench)"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip, deflate"),
        ("x-request-id", f"{_mix(n, 1):016x}{_mix(n, 2):016x}"),
    ]
    if n % 2 == 0:
        trace_id = f"{_mix(n, 3):016x}{_mix(n, 4):016x}"
        headers.append(("traceparent", f"00-{trace_id}-{_mix(n, 5) | 1:016x}-01"))
    return f"id={n}", port, headers


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
        "REMOTE_PORT": str(CLIENT_PORT),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in HEADERS:
        base["HTTP_" + name.upper().replace("-", "_")] = value
    traffic = _traffic[0]
    varied = traffic == "varied"
    if varied:
        for name, _ in HEADERS:
            del base["HTTP_" + name.upper().replace("-", "_")]
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    for done in range(count):
        every(done)
        environ = dict(base)
        query, port, headers = request_parts(done, traffic, per_request_connection=True)
        environ["REMOTE_PORT"] = str(port)
        environ["RAW_URI"] = f"{path}?{query}" if query else path  # as gunicorn sets it
        if varied:
            environ["QUERY_STRING"] = query
            for name, value in headers:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
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
    varied = _traffic[0] == "varied"
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
            query, port, headers = b"", CLIENT_PORT, list(raw_headers)
            if varied:
                text, port, parts = request_parts(done, "varied")
                query = text.encode()
                headers = [(k.encode(), v.encode()) for k, v in parts]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": query,
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", port),
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
    if len(sys.argv) > 5:
        if sys.argv[5] not in TRAFFIC:
            raise SystemExit(f"traffic must be one of {TRAFFIC}, not {sys.argv[5]!r}")
        _traffic[0] = sys.argv[5]
    serve = {"flask": flask_requests, "django": django_requests}.get(app, fastapi_requests)
    serve(WARMUP + count, flush_points, path)
    print(f"requests={count} provider={flush()} traffic={_traffic[0]}")


if __name__ == "__main__":
    main()
