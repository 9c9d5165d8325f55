"""httpx in-process (sync and async clients) against a local HTTP server; spans at OTLP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers.data_tracing import instrumented, one, receiver, tracing

__all__ = ["receiver"]


class _Echo(BaseHTTPRequestHandler):
    """Answers with the request's headers and body as JSON."""

    def do_POST(self) -> None:
        body = self._read_body().decode()
        payload = json.dumps({"headers": dict(self.headers), "body": body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=abc")
        self.send_header("X-Served-By", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _httpx() -> Iterator[None]:
    with instrumented("httpx"):
        yield


def _check(span: Any, request: Any, echoed: dict[str, Any]) -> None:
    assert span.kind == "CLIENT"
    assert span.parent_span_id == request.span_id
    # the callee got the trace context of this client span
    traceparent = echoed["headers"]["traceparent"]
    assert traceparent.split("-")[1:3] == [span.trace_id, span.span_id]
    sent = json.loads(span.attributes["http.request.headers"])
    assert sent["authorization"] == "****" and sent["x-api-key"] == "****"
    assert sent["x-trace-me"] == "yes"
    assert json.loads(span.attributes["http.request.body"]) == {"user": "ada", "password": "****"}
    received = json.loads(span.attributes["http.response.headers"])
    assert received["x-served-by"] == "echo" and received["set-cookie"] == "****"
    assert "api_key=****" in str(span.attributes.get("url.full", span.attributes.get("http.url")))


HEADERS = {"Authorization": "Bearer abc", "X-Api-Key": "k-1", "X-Trace-Me": "yes"}
BODY = {"user": "ada", "password": "hunter2"}


def test_sync_client_span_carries_masked_payloads_and_traceparent(
    server: str, receiver: Any
) -> None:
    import httpx

    with tracing().tracer.start_as_current_span("request"), httpx.Client() as client:
        response = client.post(f"{server}/login?api_key=t-9&x=1", json=BODY, headers=HEADERS)
    echoed = response.json()
    assert json.loads(echoed["body"]) == BODY  # the app's request went out unchanged
    spans = receiver.wait_for_spans(2)
    _check(one(spans, "POST"), one(spans, "request"), echoed)
    assert "hunter2" not in str([s.attributes for s in spans])


def test_async_client_span_carries_masked_payloads_and_traceparent(
    server: str, receiver: Any
) -> None:
    import httpx

    async def call() -> Any:
        with tracing().tracer.start_as_current_span("request"):
            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"{server}/login?api_key=t-9&x=1", json=BODY, headers=HEADERS
                )
        return response.json()

    echoed = asyncio.run(call())
    assert json.loads(echoed["body"]) == BODY
    spans = receiver.wait_for_spans(2)
    _check(one(spans, "POST"), one(spans, "request"), echoed)


def test_a_streamed_upload_is_sent_whole_and_not_read_by_the_capture(
    server: str, receiver: Any
) -> None:
    import httpx

    def chunks() -> Iterator[bytes]:
        yield b"part-1;"
        yield b"part-2"

    with httpx.Client() as client:
        echoed = client.post(f"{server}/upload", content=chunks()).json()
    assert echoed["body"] == "part-1;part-2"
    span = receiver.wait_for_spans(1)[0]
    assert "http.request.body" not in span.attributes
    assert "http.request.headers" in span.attributes


def test_response_headers_are_masked_by_the_response_header_setting(
    server: str, receiver: Any
) -> None:
    """LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS governs the response headers (and
    only them): a header it names is masked there and kept in the request headers."""
    import httpx

    from lumigo_opentelemetry.config import Config

    config = Config.from_environ(
        {"LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS": '["x-served-by", "x-trace-me"]'}
    )
    with instrumented("httpx", config), httpx.Client() as client:
        client.post(f"{server}/login", json=BODY, headers=HEADERS)
    span = one(receiver.wait_for_spans(1), "POST")
    received = json.loads(span.attributes["http.response.headers"])
    assert received["x-served-by"] == "****"
    assert json.loads(span.attributes["http.request.headers"])["x-trace-me"] == "yes"
