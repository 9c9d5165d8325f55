"""The embedded OTLP/HTTP receiver: decodes `ExportTraceServiceRequest` protobuf.

Used by `lumigo-injector demo` to show traces without a Lumigo account, by the
tests as the real receiving end of the exporter, and by the benchmarks. It also
accepts the distro's dependency report (`POST /v1/dependencies`, JSON) and OTLP/HTTP
log records (`POST /v1/logs`, `ExportLogsServiceRequest`).
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if which is None:
        return None
    return getattr(value, which)


def _attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in items}


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, decoded to plain Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status: str

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", "?"))

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request the receiver answered."""

    path: str
    headers: dict[str, str]
    span_count: int
    body: bytes = b""


@dataclass(frozen=True)
class ReceivedLog:
    """One log record as it arrived, decoded to plain Python values."""

    body: Any
    severity_text: str
    severity_number: int
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


def decode_logs_request(payload: bytes) -> list[ReceivedLog]:
    """Decode an OTLP `ExportLogsServiceRequest` protobuf into log records."""
    request = ExportLogsServiceRequest()
    request.ParseFromString(payload)
    records: list[ReceivedLog] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                records.append(
                    ReceivedLog(
                        body=_any_value(record.body),
                        severity_text=record.severity_text,
                        severity_number=int(record.severity_number),
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        attributes=_attributes(record.attributes),
                        resource=resource,
                        scope=scope_logs.scope.name,
                    )
                )
    return records


def decode_export_request(payload: bytes) -> list[ReceivedSpan]:
    """Decode an OTLP `ExportTraceServiceRequest` protobuf into spans."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_KINDS.get(span.kind, str(span.kind)),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status=_STATUS.get(span.status.code, str(span.status.code)),
                    )
                )
    return spans


@dataclass
class _State:
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    logs: list[ReceivedLog] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


def _make_handler(
    state: _State, on_spans: Callable[[list[ReceivedSpan]], None] | None, decode: bool
) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the receiver reports through its API

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                return gzip.decompress(raw)
            if encoding == "deflate":
                return zlib.decompress(raw)
            return raw

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = self._body()
            except (OSError, ValueError, EOFError, zlib.error) as exc:
                self._reply(400, f"unreadable body: {exc}".encode(), "text/plain")
                return
            if path.endswith("/v1/traces") and not decode:
                with state.cond:
                    state.requests.append(ReceivedRequest(path, {}, 0))
                    state.cond.notify_all()
                self._reply(200, b"", "application/x-protobuf")
                return
            if path.endswith("/v1/traces"):
                try:
                    spans = decode_export_request(body)
                except Exception as exc:  # a protobuf DecodeError, or worse
                    with state.cond:
                        state.errors.append(f"bad ExportTraceServiceRequest: {exc}")
                    self._reply(400, b"bad ExportTraceServiceRequest", "text/plain")
                    return
                with state.cond:
                    state.spans.extend(spans)
                    state.requests.append(ReceivedRequest(path, headers, len(spans), body))
                    state.cond.notify_all()
                if on_spans is not None and spans:
                    on_spans(spans)
                self._reply(
                    200,
                    ExportTraceServiceResponse().SerializeToString(),
                    "application/x-protobuf",
                )
                return
            if path.endswith("/v1/logs"):
                try:
                    records = decode_logs_request(body)
                except Exception as exc:  # a protobuf DecodeError, or worse
                    with state.cond:
                        state.errors.append(f"bad ExportLogsServiceRequest: {exc}")
                    self._reply(400, b"bad ExportLogsServiceRequest", "text/plain")
                    return
                with state.cond:
                    state.logs.extend(records)
                    state.requests.append(ReceivedRequest(path, headers, 0, body))
                    state.cond.notify_all()
                self._reply(
                    200, ExportLogsServiceResponse().SerializeToString(), "application/x-protobuf"
                )
                return
            if path.endswith("/v1/dependencies"):
                try:
                    doc = json.loads(body or b"{}")
                except ValueError:
                    doc = {"unparsable": body.decode("utf-8", "replace")}
                with state.cond:
                    state.dependencies.append(doc)
                    state.requests.append(ReceivedRequest(path, headers, 0, body))
                    state.cond.notify_all()
                self._reply(200, b"{}", "application/json")
                return
            self._reply(404, b"not found", "text/plain")

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-connection (an app killed at the end of a run) is normal."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class OtlpReceiver:
    """A real OTLP/HTTP (protobuf) trace receiver on a local port.

    Use as a context manager, or call `start()`/`stop()`. `port=0` picks a free port.
    `decode=False` answers without decoding or keeping spans (for load benchmarks).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        on_spans: Callable[[list[ReceivedSpan]], None] | None = None,
        decode: bool = True,
    ) -> None:
        self._state = _State()
        handler = _make_handler(self._state, on_spans, decode)
        self._server = _QuietServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self._server.server_address[0]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The traces endpoint, as `LUMIGO_ENDPOINT` expects it."""
        return f"{self.base_url}/v1/traces"

    def start(self) -> OtlpReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what arrived -------------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        with self._state.cond:
            return list(self._state.spans)

    def requests(self) -> list[ReceivedRequest]:
        with self._state.cond:
            return list(self._state.requests)

    def dependencies(self) -> list[dict[str, Any]]:
        with self._state.cond:
            return list(self._state.dependencies)

    def logs(self) -> list[ReceivedLog]:
        with self._state.cond:
            return list(self._state.logs)

    def wait_for_logs(
        self,
        count: int = 1,
        timeout: float = 15.0,
        where: Callable[[ReceivedLog], bool] | None = None,
    ) -> list[ReceivedLog]:
        """Wait until at least `count` log records (matching `where`) arrived; return those."""
        match = where or (lambda _r: True)
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while sum(1 for r in self._state.logs if match(r)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    bodies = [r.body for r in self._state.logs]
                    raise TimeoutError(f"log records never matched within {timeout}s; got {bodies}")
                self._state.cond.wait(remaining)
            return [r for r in self._state.logs if match(r)]

    def errors(self) -> list[str]:
        with self._state.cond:
            return list(self._state.errors)

    def clear(self) -> None:
        with self._state.cond:
            self._state.spans.clear()
            self._state.requests.clear()
            self._state.dependencies.clear()
            self._state.logs.clear()

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 15.0
    ) -> list[ReceivedSpan]:
        """Block until `predicate(all spans)` holds; return the spans (or raise TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while not predicate(self._state.spans):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [(s.service, s.name, s.kind) for s in self._state.spans]
                    raise TimeoutError(f"spans never matched within {timeout}s; got {names}")
                self._state.cond.wait(remaining)
            return list(self._state.spans)

    def wait_for_spans(
        self,
        count: int = 1,
        timeout: float = 15.0,
        where: Callable[[ReceivedSpan], bool] | None = None,
    ) -> list[ReceivedSpan]:
        """Wait until at least `count` spans (matching `where`) arrived; return those spans."""
        match = where or (lambda _s: True)
        spans = self.wait_for(lambda all_: sum(1 for s in all_ if match(s)) >= count, timeout)
        return [s for s in spans if match(s)]

    def wait_for_dependencies(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while not self._state.dependencies:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no dependency report within {timeout}s")
                self._state.cond.wait(remaining)
            return list(self._state.dependencies)
