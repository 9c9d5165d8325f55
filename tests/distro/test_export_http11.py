"""The OTLP post's HTTP/1.1 reader (`export/http11.py`) against a real TCP server.

The server answers each request with canned bytes, so each framing rule `http.client`
follows is exercised on the wire: Content-Length, chunked bodies with trailers, bodies
that end with the connection, interim 1xx answers, `Connection: close`, HTTP/1.0
keep-alive, folded and repeated headers; a connection closed before the answer is
`RemoteDisconnected`, a short body `IncompleteRead`. Through the exporter, an answer
that sets a cookie sends the next post through requests with the cookie.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.http11 import Connection, host_header, request_head
from lumigo_opentelemetry.export.otlp import otlp_exporter
from tests.distro.test_distro_encoder import _spans


class CannedServer:
    """Accepts connections; for each request read (head and Content-Length body) sends
    the next canned answer; `None` closes the connection instead of answering."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while self.answers:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                answer = self.answers.pop(0)
                if answer is None:
                    return
                conn.sendall(answer)
                lowered = answer.lower()
                closes = b"connection: close" in lowered or answer.startswith(b"HTTP/1.0")
                if closes and b"keep-alive" not in lowered:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    made: list[CannedServer] = []

    def start(*answers: bytes | None) -> CannedServer:
        made.append(CannedServer(list(answers)))
        return made[-1]

    yield start
    for server in made:
        server.close()


HEAD = request_head("POST", "/v1/traces", [("Host", "127.0.0.1"), ("X-Test", "1")])


def _post(server: CannedServer, body: bytes = b"spans") -> Any:
    connection = Connection("127.0.0.1", server.port, None, 5)
    try:
        return connection.post(HEAD, body, 5)
    finally:
        connection.close()


def test_the_request_is_sent_as_http_client_sends_it(serve: Any) -> None:
    server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    response = _post(server, b"\x0a\x02ab")
    assert server.requests == [
        b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: 1\r\n"
        b"Content-Length: 4\r\n\r\n\x0a\x02ab"
    ]
    assert (response.status, response.reason, response.body, response.will_close) == (
        200,
        "OK",
        b"",
        False,
    )


@pytest.mark.parametrize(
    ("answer", "body", "closes"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello", False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"hello",
            False,
        ),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", b"hello", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Close\r\n\r\nok", b"ok", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", b"ok", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", b"", False),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", b"ok", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok", b"ok", False),
        (b"HTTP/1.1 200 OK\nContent-Length: 3\n\r\n\nok", b"\nok", False),
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok", b"ok", False),
    ],
    ids=[
        "length",
        "chunked",
        "until-close",
        "close",
        "1.0",
        "1.0-keep-alive",
        "100",
        "bare-lf",
        "crlf-then-lf",
        "lf-then-crlf",
        "folded",
    ],
)
def test_framing_follows_http_client(serve: Any, answer: bytes, body: bytes, closes: bool) -> None:
    response = _post(serve(answer))
    assert response.body == body
    assert response.will_close is closes
    reference = http.client.HTTPResponse(_FakeSocket(answer))  # type: ignore[arg-type]
    reference.begin()
    assert (response.status, response.reason) == (reference.status, reference.reason)
    assert reference.read() == body
    assert reference.will_close is closes


class _FakeSocket:
    """What `http.client.HTTPResponse` reads an answer from (the reference parse)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> Any:
        import io

        return io.BytesIO(self.data)


def test_headers_keep_repeats_folds_and_case(serve: Any) -> None:
    server = serve(
        b"HTTP/1.1 202 Accepted\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n"
        b"X-Long: one\r\n two\r\nContent-Length: 0\r\n\r\n"
    )
    headers = _post(server).headers
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert headers.get("x-long") == "one two"
    assert headers.get("missing", "none") == "none"
    assert headers.keys() == ["Set-Cookie", "set-cookie", "X-Long", "Content-Length"]


def test_a_kept_alive_connection_carries_several_posts(serve: Any) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    server = serve(ok, ok, ok)
    connection = Connection("127.0.0.1", server.port, None, 5)
    try:
        bodies = [connection.post(HEAD, b"x" * n, 5).body for n in (1, 70000, 3)]
    finally:
        connection.close()
    assert bodies == [b"ok"] * 3
    assert server.connections == 1
    assert [len(r.partition(b"\r\n\r\n")[2]) for r in server.requests] == [1, 70000, 3]


def test_errors_are_http_client_errors(serve: Any) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        _post(serve(None))
    with pytest.raises(http.client.IncompleteRead):
        _post(serve(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nshort"))
    with pytest.raises(http.client.BadStatusLine):
        _post(serve(b"SMTP ready\r\n\r\n"))


def test_head_building() -> None:
    assert host_header("example.com", 443, 443) == "example.com"
    assert host_header("::1", 4318, 80) == "[::1]:4318"
    with pytest.raises(ValueError):
        request_head("POST", "/v1/traces", [("X-Bad", "a\r\nInjected: 1")])
    with pytest.raises(ValueError):
        request_head("POST", "/v1 traces", [])


def test_a_cookie_sends_the_next_post_through_requests(serve: Any) -> None:
    """As with requests: the cookie an answer set goes back with the next post."""
    server = serve(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: route=b1; Path=/\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    )
    endpoint = f"http://127.0.0.1:{server.port}/v1/traces"
    exporter = otlp_exporter(Config(token="t_cookie", endpoint=endpoint))
    try:
        results = [exporter.export(_spans(1)).name for _ in range(2)]
    finally:
        exporter.shutdown()
    assert results == ["SUCCESS", "SUCCESS"]
    assert b"cookie: route=b1" not in server.requests[0].lower()
    assert b"cookie: route=b1" in server.requests[1].lower()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n" + b"x" * 100,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (400, b"y" * 400) for _ in range(10))
        + b"0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 5000,
    ],
    ids=["content-length", "chunked", "until-closed"],
)
def test_an_oversized_answer_keeps_its_status_and_is_not_read_on(
    serve: Any, monkeypatch: pytest.MonkeyPatch, answer: bytes
) -> None:
    monkeypatch.setattr("lumigo_opentelemetry.export.http11.MAX_BODY", 1000)
    response = _post(serve(answer))  # a 10 GiB Content-Length would block or exhaust memory
    assert (response.status, response.body, response.will_close) == (200, b"", True)


def test_a_backend_answering_a_huge_body_still_gets_the_spans_once(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lumigo_opentelemetry.export.http11.MAX_BODY", 1000)
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n" + b"x" * 2000
    server = serve(huge, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    exporter = otlp_exporter(
        Config(token="t_big", endpoint=f"http://127.0.0.1:{server.port}/v1/traces")
    )
    try:
        assert exporter.export(_spans(2)).name == "SUCCESS"  # accepted: not retried
        assert exporter.export(_spans(2)).name == "SUCCESS"  # on a new connection
    finally:
        exporter.shutdown()
    assert len(server.requests) == 2 and server.connections == 2
