"""Helpers for the distro tests: run fixture apps with env vars only, and fake backends.

Apps run with the workspace venv's interpreter (autowrapt's .pth lives there), in a
clean environment (nothing LUMIGO_*/OTEL_* leaks in from the test runner), with proxies
pointing nowhere so nothing can reach a public host by accident.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lumigo_devtools.receiver import OtlpReceiver

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "fixtures" / "apps" / "distro"
DISTRO_SRC = REPO / "distro" / "src"
PYTHON = sys.executable
TOKEN = "t_test_0123456789"


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment plus `extra` (values of None are left out)."""
    env = {
        key: os.environ[key]
        for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        if key in os.environ
    }
    env.update(
        {
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def traced_env(receiver: OtlpReceiver | None = None, **extra: str) -> dict[str, str]:
    """Env of an app activated by autowrapt, exporting to `receiver` with a token."""
    base = {
        "AUTOWRAPT_BOOTSTRAP": "lumigo_opentelemetry",
        "LUMIGO_TRACER_TOKEN": TOKEN,
        "OTEL_SERVICE_NAME": "distro-test-app",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
    }
    if receiver is not None:
        base["LUMIGO_ENDPOINT"] = receiver.url
    base.update(extra)
    return clean_env(**base)


def run_app(
    script: str,
    env: Mapping[str, str],
    options: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    argv: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a fixture app to completion; `options` go to argv[1] as JSON (or pass `argv`)."""
    command = [PYTHON, str(APPS / script), *(argv or [])]
    if options is not None:
        command.append(json.dumps(options))
    return subprocess.run(
        command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def last_json(stdout: str) -> dict[str, Any]:
    """The app's JSON report (its last stdout line)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "the app printed nothing"
    return dict(json.loads(lines[-1]))


def distro_lines(stderr: str, level: str | None = None) -> list[str]:
    """The distro's own log lines (optionally of one level)."""
    prefix = "lumigo-opentelemetry" + (f" {level}:" if level else "")
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HangingServer:
    """Accepts TCP connections and never answers (a backend that hangs).

    `marker`, when given, is a file created on the first connection (apps can wait for it).
    """

    def __init__(self, marker: Path | None = None) -> None:
        self.marker = marker
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._conns: list[socket.socket] = []
        self._stop = False
        self.accepted = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def url(self, path: str = "/v1/traces") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            if self.marker is not None:
                self.marker.touch()
            self.accepted.set()

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._sock.close()
        for conn in self._conns:
            conn.close()


class _JsonRoutes(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path.rstrip("/"), (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def json_server(routes: Mapping[str, tuple[int, bytes]]) -> Iterator[str]:
    """A local HTTP server answering GET `path` with (status, body); yields its base URL."""
    handler = type("Routes", (_JsonRoutes,), {"routes": dict(routes)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class GatedProxy:
    """Holds every OTLP request until `open()`, then forwards it to a real receiver."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.gate = threading.Event()
        self.held = threading.Event()
        gate, held, target = self.gate, self.held, receiver.url

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                held.set()
                gate.wait(60)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("content-type", "content-encoding", "authorization")
                }
                request = urllib.request.Request(target, data=body, headers=headers)
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(request, timeout=10) as response:
                    answer = response.read()
                    status = response.status
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"

    def __enter__(self) -> GatedProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


class HttpApp:
    """The fixture `http_app.py` as a running server process."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(APPS / "http_app.py")],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.proc.kill()
            raise AssertionError(f"app did not start: {self.proc.communicate()[1]}")
        self.port = int(line)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str) -> dict[str, Any]:
        with self._opener.open(f"http://127.0.0.1:{self.port}{path}", timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def request_loop(self, count: int) -> float:
        """`count` requests, each answer checked; returns the elapsed seconds."""
        start = time.monotonic()
        for i in range(count):
            n = 100 + i
            assert self.get(f"/{n}") == {"n": n, "sum": sum(range(n))}
        return time.monotonic() - start

    def quit(self, timeout: float = 60) -> float:
        """Ask the app to stop; returns the seconds until the process exited."""
        start = time.monotonic()
        self.get("/quit")
        self.proc.wait(timeout)
        return time.monotonic() - start

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
