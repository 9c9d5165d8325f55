"""In-process tracing for the botocore/pymongo/pymysql instrumentation tests.

One TracerProvider for the session (pymongo's listener keeps the first provider it
gets), exporting synchronously through a real OTLP/HTTP exporter to the current test's
`otlp_receiver`. Instrumentation is switched on per test module (`instrumented(...)`) and
off again afterwards, so other test modules in the same process see the plain libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from lumigo_opentelemetry.config import Config

CONFIG = Config.from_environ({})


class SwitchableExporter(SpanExporter):
    """Exports to whatever OTLP exporter the running test set; drops spans otherwise."""

    def __init__(self) -> None:
        self.target: OTLPSpanExporter | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.target is None:
            return SpanExportResult.SUCCESS
        return self.target.export(spans)

    def shutdown(self) -> None:
        if self.target is not None:
            self.target.shutdown()


class Tracing:
    def __init__(self) -> None:
        self.exporter = SwitchableExporter()
        # Importing lumigo_opentelemetry activates the distro in this process too, and its
        # hooks may already have instrumented a library with the global provider (pymongo
        # then keeps it for good): reuse that provider when there is one.
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            self.provider = current
        else:
            self.provider = TracerProvider(
                span_limits=SpanLimits(max_attribute_length=CONFIG.attribute_length_limit)
            )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("app")


_tracing: Tracing | None = None


def tracing() -> Tracing:
    global _tracing
    if _tracing is None:
        _tracing = Tracing()
    return _tracing


@contextmanager
def instrumented(name: str, config: Config = CONFIG) -> Iterator[Any]:
    """Instrument `name` (botocore, pymongo, pymysql) with the session provider."""
    module = importlib.import_module(f"lumigo_opentelemetry.instrumentations.{name}")
    module.uninstrument()  # the distro's own hook may have instrumented it already
    module.instrument(config, tracing().provider)
    try:
        yield module
    finally:
        module.uninstrument()


@pytest.fixture
def receiver(otlp_receiver: OtlpReceiver) -> Iterator[OtlpReceiver]:
    """The test's OTLP receiver, wired to the session provider's exporter."""
    exporter = tracing().exporter
    exporter.target = OTLPSpanExporter(endpoint=otlp_receiver.url, timeout=10)
    try:
        yield otlp_receiver
    finally:
        exporter.target = None


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    """The single span called `name`."""
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r}, got {[s.name for s in spans]}"
    return found[0]


def received_span_bytes(receiver: OtlpReceiver) -> list[bytes]:
    """Each span the receiver got, serialized as sent (for byte-for-byte comparisons)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    out = []
    for request in receiver.requests():
        message = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                out += [span.SerializeToString() for span in scope_spans.spans]
    return out


@contextmanager
def mariadb_connection() -> Iterator[Any]:
    """A PyMySQL connection to the local MariaDB's `test` database, closed after use."""
    from tests.helpers.need import tcp_service

    tcp_service("127.0.0.1", 3306, "MariaDB")
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test")
    try:
        yield conn
    finally:
        conn.close()
