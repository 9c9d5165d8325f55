"""A traced request's objects die with the request, as an untraced one's do.

Objects in a reference cycle outlive their request until the cycle collector runs; the
more a request leaves, the more often the collector runs and the longer a full
collection stalls every request behind it (the p99 tail). Tracing must leave no more of
them than the app itself does: the same benchmark app is served in-process, untraced and
traced, and the cycle collector's findings are compared, for the server span alone and
with client spans inside it (MariaDB, PostgreSQL, requests, httpx), the query or call
succeeding or failing.

Where the app itself leaves a cycle holding the call stack (Django's database error
wrapper, urllib3's connection error), the tracer's frames on that stack are freed with
it: there tracing may add to what the cycle holds (`all`), never a cycle of its own
(`cyclic`).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator

import pytest

from lumigo_devtools.receiver import OtlpReceiver

PROBE = Path(__file__).with_name("garbage_probe.py")
REQUESTS = 60

#: (app, path, whether the untraced app leaves nothing that could hold the tracer's objects)
PATHS = [
    ("flask", "/hello", True),
    ("flask", "/db", True),
    ("flask", "/db-error", True),
    ("flask", "/pg/psycopg2", True),  # a connection per request
    ("flask", "/call/requests", True),
    ("flask", "/call/refused/requests", False),  # urllib3's own error cycle
    ("flask", "/call/httpx", False),  # httpx's own cycle holds the request's headers
    ("flask", "/call/refused/httpx", True),
    ("fastapi", "/hello", True),
    ("fastapi", "/db", True),
    ("fastapi", "/db-error", True),
    ("fastapi", "/pg/psycopg-async", True),  # a connection per request
    ("fastapi", "/call/refused/httpx", True),
    ("django", "/hello", True),
    ("django", "/db", True),
    ("django", "/db-error", False),  # Django's DatabaseErrorWrapper re-raise cycle
    ("django-fresh", "/db", True),  # a connection per request
    ("django-asgi", "/hello", True),
    ("django-asgi", "/db", True),  # a connection per request
]


class _Downstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def urls() -> Iterator[Dict[str, str]]:
    """A downstream HTTP service, and a port nothing listens on."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Downstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
    try:
        yield {
            "GARBAGE_DOWNSTREAM": f"http://127.0.0.1:{server.server_address[1]}/downstream",
            "GARBAGE_REFUSED": f"http://127.0.0.1:{refused_port}/downstream",
        }
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tables() -> Dict[str, str]:
    """The benchmark apps' `bench_items` in MariaDB and PostgreSQL; why one is missing."""
    import pymysql

    missing: Dict[str, str] = {}
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_items (id INT PRIMARY KEY, name VARCHAR(64))")
        cur.execute("INSERT IGNORE INTO bench_items VALUES (42, 'item-42')")
    conn.commit()
    conn.close()
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 dbname=test user=postgres", autocommit=True) as pg:
            pg.execute("CREATE TABLE IF NOT EXISTS bench_items (id INT PRIMARY KEY, name TEXT)")
            pg.execute("INSERT INTO bench_items VALUES (42, 'item-42') ON CONFLICT DO NOTHING")
    except Exception as exc:  # the Django app needs PostgreSQL at 127.0.0.1:5432
        missing["postgresql"] = f"PostgreSQL unavailable: {exc}"
    return missing


def garbage(
    app: str, path: str, env_extra: Dict[str, str], traced_to: str | None
) -> Dict[str, Counter[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMIGO_", "OTEL_"))}
    env.pop("AUTOWRAPT_BOOTSTRAP", None)
    env.update(env_extra)
    if traced_to is not None:
        env.update(
            AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
            LUMIGO_TRACER_TOKEN="t_garbage",
            LUMIGO_ENDPOINT=traced_to,
            LUMIGO_REPORT_DEPENDENCIES="false",
        )
    done = subprocess.run(
        [sys.executable, str(PROBE), app, path, str(REQUESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {key: Counter(found[key]) for key in ("all", "cyclic")}


@pytest.mark.parametrize(("app", "path", "alone"), PATHS, ids=[f"{a}{p}" for a, p, _ in PATHS])
def test_tracing_leaves_no_request_objects_to_the_cycle_collector(
    app: str, path: str, alone: bool, urls: Dict[str, str], tables: Dict[str, str]
) -> None:
    if "postgresql" in tables and (
        (app.startswith("django") and path.startswith("/db")) or path.startswith("/pg")
    ):
        pytest.skip(tables["postgresql"])
    with OtlpReceiver() as receiver:
        traced = garbage(app, path, urls, receiver.url)
        exported = receiver.spans()
    assert exported, "the traced run exported nothing: it was not traced"
    if path != "/hello":
        assert any(s.kind == "CLIENT" for s in exported), "no client span: not the path meant"
    untraced = garbage(app, path, urls, None)
    new_cycles = traced["cyclic"] - untraced["cyclic"]
    assert not new_cycles, f"cycles made by tracing, over {REQUESTS} requests: {new_cycles}"
    if alone:
        extra = traced["all"] - untraced["all"]
        assert not extra, (
            f"left for the cycle collector by tracing, over {REQUESTS} requests: {extra}"
        )
