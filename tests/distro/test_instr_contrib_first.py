"""A library first imported by its OTel contrib module is still instrumented by the distro.

An app that imports `opentelemetry.instrumentation.<library>` (say, for some manual
instrumentation) before the library itself has the library's first import run inside
the contrib module's, half executed. Each case is a fresh app activated by the
environment, using the library for real (PostgreSQL, MariaDB, a local HTTP server), its
spans at a real OTLP receiver: no "is not instrumented" warning, each operation traced
once, secrets in statements masked; the usual order (library alone) is unchanged.
"""

from __future__ import annotations

import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import distro_lines, run_app, traced_env
from tests.helpers.need import tcp_service

PORTS = {"psycopg": 5432, "psycopg2": 5432, "pymysql": 3306}
ORDERS = [pytest.param(True, id="contrib-first"), pytest.param(False, id="library-first")]


def _run(options: dict[str, Any], expected: int) -> tuple[list[Any], str]:
    with OtlpReceiver() as receiver:
        done = run_app("contrib_first.py", traced_env(receiver), options)
        assert done.returncode == 0 and f"ran {expected}" in done.stdout, done.stderr
        receiver.wait_for_spans(expected)
        spans = receiver.spans()
    assert not [line for line in distro_lines(done.stderr) if "not instrumented" in line]
    return spans, done.stderr


@pytest.mark.parametrize("contrib_first", ORDERS)
@pytest.mark.parametrize("library", ["psycopg", "psycopg2", "pymysql"])
def test_statements_are_traced_once_and_masked(library: str, contrib_first: bool) -> None:
    tcp_service("127.0.0.1", PORTS[library], library)
    table = f"contrib_{uuid.uuid4().hex[:8]}"
    options = {"library": library, "contrib_first": contrib_first, "table": table}
    spans, stderr = _run(options, 3)
    statements = [s.attributes["db.statement"] for s in spans if "db.statement" in s.attributes]
    assert len(statements) == 3, (statements, stderr)  # each statement once, not doubled
    assert f"CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT, password TEXT)" in statements
    assert f"DROP TABLE {table}" in statements
    [update] = [s for s in statements if s.startswith("UPDATE")]
    assert update.startswith(f"UPDATE {table} SET password = ") and update.endswith("WHERE id = 1")
    assert "'x'" not in update, update  # the literal is masked by the distro


class _Hello(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("contrib_first", ORDERS)
def test_requests_calls_are_traced_once(contrib_first: bool) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hello?token=secret"
        spans, stderr = _run({"library": "requests", "contrib_first": contrib_first, "url": url}, 2)
    finally:
        server.shutdown()
        server.server_close()
    clients = [s for s in spans if s.kind == "CLIENT"]
    assert len(clients) == 2, ([(s.name, s.attributes) for s in spans], stderr)
    for span in clients:
        assert span.attributes["http.method"] == "GET"
        assert span.attributes["http.status_code"] == 200
