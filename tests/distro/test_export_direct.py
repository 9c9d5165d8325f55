"""OTLP posts on a kept-alive `http.client` connection (`export/direct.py`), real servers.

`requests.Session.send` is made to fail in the tests that must not need it: what
reaches the receiver then came through the direct connection. What it sends decodes
to the reference encoding, with the token, content type and the SDK's user agent; TLS
is verified against the configured CA; a connection the backend dropped is reopened;
gzip compression is the SDK's, as before.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.otlp import otlp_exporter
from tests.distro.test_distro_encoder import _spans
from tests.helpers.kube import TestCertificates


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any post through requests fails: only the direct connection can deliver."""
    import requests

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise requests.exceptions.ConnectionError("requests was used")

    monkeypatch.setattr(requests.Session, "send", refuse)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_posts_arrive_through_the_direct_connection(
    receiver: OtlpReceiver, no_requests: None
) -> None:
    spans = _spans(12)
    batches = [spans[0:5], spans[5:10], spans[10:12]]
    exporter = otlp_exporter(Config(token="t_direct", endpoint=receiver.url))
    try:
        for batch in batches:
            assert exporter.export(batch).name == "SUCCESS"
    finally:
        exporter.shutdown()
    requests = receiver.requests()
    assert [ExportTraceServiceRequest.FromString(r.body) for r in requests] == [
        encode_spans(batch) for batch in batches
    ]
    for request in requests:
        assert request.headers["authorization"] == "LumigoToken t_direct"
        assert request.headers["content-type"] == "application/x-protobuf"
        assert request.headers["user-agent"].startswith("OTel-OTLP-Exporter-Python/")
        assert int(request.headers["content-length"]) == len(request.body)


def test_gzip_compression_is_kept(
    receiver: OtlpReceiver, no_requests: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    spans = _spans(3)
    exporter = otlp_exporter(Config(token="t_gzip", endpoint=receiver.url))
    try:
        assert exporter.export(spans).name == "SUCCESS"
    finally:
        exporter.shutdown()
    (request,) = receiver.requests()
    assert request.headers["content-encoding"] == "gzip"
    assert ExportTraceServiceRequest.FromString(request.body) == encode_spans(spans)


class _Backend(http.server.BaseHTTPRequestHandler):
    """Answers 200 to each POST; `drop` closes the connection after each answer
    without saying so (as a load balancer's idle timeout does)."""

    protocol_version = "HTTP/1.1"
    drop = False
    bodies: list[bytes]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if self.drop:
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        return None


def _serve(handler: type[_Backend], context: ssl.SSLContext | None = None) -> Any:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_connection_the_backend_dropped_is_reopened(no_requests: None) -> None:
    class Dropping(_Backend):
        drop = True
        bodies: list[bytes] = []

    server = _serve(Dropping)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    exporter = otlp_exporter(Config(token="t_drop", endpoint=endpoint))
    try:
        results = [exporter.export(_spans(1)).name for _ in range(3)]
    finally:
        exporter.shutdown()
        server.shutdown()
        server.server_close()
    assert results == ["SUCCESS"] * 3
    assert len(Dropping.bodies) == 3


@pytest.mark.parametrize("trusted", [True, False])
def test_https_is_verified_against_the_configured_ca(
    tmp_path: Path, no_requests: None, monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    """`OTEL_EXPORTER_OTLP_CERTIFICATE` names the CA: its server is trusted; without
    it the default bundle does not know the CA and nothing is sent."""
    certs = TestCertificates(tmp_path)
    ca, cert, key = certs.ca_file, certs.cert_file, certs.key_file
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "OTEL_EXPORTER_OTLP_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    if trusted:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(ca))
    else:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", raising=False)

    class Tls(_Backend):
        bodies: list[bytes] = []

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = _serve(Tls, context)
    endpoint = f"https://127.0.0.1:{server.server_address[1]}/v1/traces"
    spans = _spans(2)
    exporter = otlp_exporter(Config(token="t_tls", endpoint=endpoint, export_timeout=2))
    try:
        result = exporter.export(spans).name
    finally:
        exporter.shutdown()
        server.shutdown()
        server.server_close()
    if trusted:
        assert result == "SUCCESS"
        assert [ExportTraceServiceRequest.FromString(b) for b in Tls.bodies] == [
            encode_spans(spans)
        ]
    else:
        assert result == "FAILURE"
        assert Tls.bodies == []
