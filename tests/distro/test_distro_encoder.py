"""Our OTLP encoder against the SDK's reference encoder, over real HTTP to the receiver.

The same finished spans go through the distro's exporter (our encoder, the SDK's
transport) to the real local OTLP/HTTP receiver; what arrives is parsed with
`opentelemetry-proto` and must equal the reference `encode_spans` output exactly.
Also: the dropped-spans warning at exit counts every span that was lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.encoder import SpanEncoder
from lumigo_opentelemetry.export.otlp import otlp_exporter
from tests.helpers.distro_apps import distro_lines, free_port, run_app, traced_env


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _spans(count: int) -> list[ReadableSpan]:
    """Realistic and odd spans: two resources, three scopes, every attribute type,
    events, links, error status, remote and local parents, trace state."""
    kept = _Keep()
    providers = [
        TracerProvider(resource=Resource.create({"service.name": "shop", "k8s.pod.uid": "u-1"})),
        TracerProvider(
            resource=Resource(
                {"service.name": "other", "n": 7, "f": 0.5, "tags": ("a", "b")},
                schema_url="https://s/1",
            )
        ),
    ]
    for provider in providers:
        provider.add_span_processor(kept)
    server = providers[0].get_tracer("opentelemetry.instrumentation.flask", "0.66b1")
    client = providers[0].get_tracer(
        "opentelemetry.instrumentation.requests",
        schema_url="https://opentelemetry.io/schemas/1.11.0",
    )
    plain = providers[1].get_tracer("plain")
    remote = TraceContextTextMapPropagator().extract(
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
        }
    )
    for i in range(count):
        attributes: dict[str, Any] = {
            "http.method": "GET",
            "http.scheme": "http",
            "http.status_code": 200,
            "http.target": f"/orders/{i}",
            "net.peer.port": 40000 + i,
            "ok": i % 2 == 0,
            "ratio": i / 3,
            "zero": 0,
            "negative": -i - 1,
            "empty": "",
            "long": "é" * (100 + i % 7),
            "ints": (1, 2, i),
            "strs": ["x", "y"],
            "bools": (True, False),
            "floats": (0.5, -1.0),
        }
        with (
            server.start_as_current_span(
                "GET /orders/<id>",
                kind=SpanKind.SERVER,
                attributes=attributes,
                context=remote if i % 3 == 0 else None,
            ) as parent,
            client.start_as_current_span(
                "GET", kind=SpanKind.CLIENT, links=[Link(parent.get_span_context(), {"l": i})]
            ) as child,
        ):
            child.add_event("retry", {"attempt": i, "why": "timeout"})
            child.add_event("bare")
            if i % 4 == 0:
                child.set_status(Status(StatusCode.ERROR, f"boom {i}"))
                child.record_exception(ValueError("bad"))
        with plain.start_as_current_span("job", kind=SpanKind.CONSUMER) as job:
            job.set_status(Status(StatusCode.OK))
    return kept.spans


@pytest.fixture()
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


def test_what_we_send_equals_the_reference_encoding(receiver: OtlpReceiver) -> None:
    spans = _spans(200)  # 600 spans: more than one encoding slice
    exporter = otlp_exporter(Config(token="t_enc", endpoint=receiver.url))
    try:
        assert exporter.export(spans).name == "SUCCESS"
    finally:
        exporter.shutdown()
    (request,) = receiver.requests()
    assert request.headers["authorization"] == "LumigoToken t_enc"
    assert request.headers["content-type"] == "application/x-protobuf"
    sent = ExportTraceServiceRequest.FromString(request.body)
    reference = encode_spans(spans)
    assert len(sent.resource_spans) == 2
    assert sum(len(s.spans) for r in sent.resource_spans for s in r.scope_spans) == 600
    assert sent == reference
    assert receiver.errors() == []


def test_encoder_is_stable_across_batches_and_cache_resets() -> None:
    spans = _spans(30)
    encoder = SpanEncoder(slice_size=7)
    first = encoder.encode(spans)
    encoder._span_attributes.clear()  # a cache reset must not change a byte
    assert encoder.encode(spans) == first
    assert ExportTraceServiceRequest.FromString(first) == encode_spans(spans)


def test_unencodable_attribute_is_left_out_like_the_reference() -> None:
    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("fine", 1)
        span._attributes._dict["huge"] = 1 << 70  # type: ignore[attr-defined]  # int64 overflow
    sent = ExportTraceServiceRequest.FromString(SpanEncoder().encode(kept.spans))
    assert [kv.key for kv in sent.resource_spans[0].scope_spans[0].spans[0].attributes] == ["fine"]


@pytest.mark.parametrize("count", [3, 1500])
def test_dropped_spans_warning_counts_every_lost_span(count: int) -> None:
    env = traced_env(
        None,
        LUMIGO_ENDPOINT=f"http://127.0.0.1:{free_port()}/v1/traces",
        OTEL_BSP_SCHEDULE_DELAY="600000",  # nothing leaves before exit
        OTEL_EXPORTER_OTLP_TIMEOUT="2",
    )
    done = run_app("emit_spans.py", env, {"spans": count})
    assert done.returncode == 0, done.stderr
    warnings = [line for line in distro_lines(done.stderr, "WARNING") if "dropped" in line]
    assert warnings == [
        f"lumigo-opentelemetry WARNING: dropped {count} spans at exit: "
        "the backend did not take them"
    ]
