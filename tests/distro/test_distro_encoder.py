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


def _cache_spans(count: int, names: int) -> list[ReadableSpan]:
    """Spans whose attribute pairs repeat (cache hits), vary without end (cache misses and
    resets), and sit on the cache's edges: `True` next to `1` under one key, strings at
    and just over the cached length, unicode, int64's limits, arrays, events, links."""
    kept = _Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "cache"}))
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("cache-test", "1.0")
    for i in range(count):
        attributes: dict[str, Any] = {
            "http.method": "GET",  # the same on every span
            "flag": True if i % 2 else 1,  # equal and same hash, different encodings
            "zero": False if i % 3 else 0,
            "n": i,  # a new value per span: far more than the cache holds
            "text": f"value-{i % 50}",
            "at.limit": "x" * 128 if i % 2 else "y" * 128,
            "over.limit": "z" * 129,
            "unicode": "héllo ✓ 😀" if i % 2 else "日本語",
            "ünïcode.kéy": i % 3,
            "big": (1 << 63) - 1 - (i % 2),
            "small": -(1 << 63) + (i % 2),
            "ints": (i, -i, 1 << 40),
            "mixed.strs": ("a", "é", ""),
        }
        with tracer.start_as_current_span(f"op-{i % names}", attributes=attributes) as span:
            span.add_event("e", {"n": i, "flag": True})
            if i % 5 == 0:
                span.set_status(Status(StatusCode.ERROR, f"failed {i % 3}"))
        with tracer.start_as_current_span(
            "linked", links=[Link(span.get_span_context(), {"n": i % 4, "flag": 1})]
        ) as other:
            other.set_status(Status(StatusCode.OK))
    return kept.spans


def test_cached_encoding_equals_the_reference_across_batches() -> None:
    """A small cache, filled, reset and refilled over many batches: every batch still
    decodes to exactly what the reference encoder gives."""
    spans = _cache_spans(300, names=40)
    encoder = SpanEncoder(slice_size=16, cache_limit=32)
    for size in (1, 7, 64, 600):
        for start in range(0, len(spans), size):
            batch = spans[start : start + size]
            assert ExportTraceServiceRequest.FromString(encoder.encode(batch)) == encode_spans(
                batch
            )
    # the same spans again: now mostly from the cache
    assert ExportTraceServiceRequest.FromString(encoder.encode(spans)) == encode_spans(spans)


def test_true_and_one_under_one_key_stay_apart() -> None:
    spans = _cache_spans(4, names=1)
    encoder = SpanEncoder()
    sent = ExportTraceServiceRequest.FromString(encoder.encode(spans))
    flags = [
        next(kv.value for kv in s.attributes if kv.key == "flag")
        for s in sent.resource_spans[0].scope_spans[0].spans
        if s.name.startswith("op-")
    ]
    assert [v.WhichOneof("value") for v in flags] == ["int_value", "bool_value"] * 2


def test_values_equal_across_types_under_one_key_keep_their_own_type() -> None:
    """The cache holds str and int pairs by `(key, value)`: a bool, a float or an int
    subclass equal to a cached int (or a str subclass equal to a cached str) must still
    encode as the reference does, in spans of every mix of types, cached or not."""
    import enum

    class Code(enum.IntEnum):
        OK = 200

    class Text(str):
        pass

    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("t")
    values: list[Any] = [200, 200.0, Code.OK, 1, True, 0, False, 1.0, "GET", Text("GET")]
    for _ in range(2):
        for value in values:
            tracer.start_span("s", attributes={"k": value, "m": "GET"}).end()
            tracer.start_span("s", attributes={"k": value}).end()
    spans = kept.spans
    encoder = SpanEncoder()
    for span in spans:  # one at a time: each lookup sees what the previous ones cached
        got = ExportTraceServiceRequest.FromString(encoder.encode([span]))
        assert got == encode_spans([span])
    assert ExportTraceServiceRequest.FromString(encoder.encode(spans)) == encode_spans(spans)


def test_ints_of_every_varint_length_equal_the_reference() -> None:
    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("t")
    edges = [0, 1, 127, 128, 16383, 16384, 40000, 65535, 2097151, 2097152, -1, -(1 << 63)]
    edges += [(1 << 63) - 1, 1 << 40]
    for value in edges:
        tracer.start_span("s", attributes={"net.peer.port": value}).end()
    spans = kept.spans
    encoder = SpanEncoder()
    for _ in range(2):  # encoded, then from the cache
        got = ExportTraceServiceRequest.FromString(encoder.encode(spans))
        assert got == encode_spans(spans)


def test_the_cache_stays_within_its_bound() -> None:
    encoder = SpanEncoder(cache_limit=16)
    spans = _cache_spans(200, names=200)  # 200 distinct names, ~200 distinct `n` values
    for start in range(0, len(spans), 10):
        encoder.encode(spans[start : start + 10])
        assert encoder.cache_entries <= 4 * 16  # pairs and names, two generations each
    assert encoder.cache_entries > 0


def test_pairs_every_span_carries_outlive_values_that_never_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client's port or a request id is new on every span; the pairs all spans share
    are still encoded once, not again each time the cache fills with the new values."""
    from lumigo_opentelemetry.export import encoder as module

    encoded: list[tuple[str, Any]] = []
    real = module.SpanEncoder._keep_attribute

    def counting(self: SpanEncoder, cache_key: tuple[Any, ...], field: bytes) -> None:
        if self._old_span_attributes.get(cache_key) is not field:  # encoded, not moved
            encoded.append(cache_key[:2])
        real(self, cache_key, field)

    real_missing = module._FieldCache.__missing__

    def missing(self: Any, pair: tuple[Any, Any]) -> bytes:
        before = len(encoded)
        field = real_missing(self, pair)
        # filled in place (an int of two or three varint bytes), not kept nor moved
        if len(encoded) == before and encoder._old_span_attributes.get(pair) is not field:
            encoded.append(pair)
        return field

    monkeypatch.setattr(module.SpanEncoder, "_keep_attribute", counting)
    monkeypatch.setattr(module._FieldCache, "__missing__", missing)
    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("t")
    for n in range(200):
        port = 40000 + n if n % 2 else n  # three varint bytes, or one or two
        tracer.start_span("GET", attributes={"http.method": "GET", "net.peer.port": port}).end()
    spans = kept.spans
    encoder = SpanEncoder(cache_limit=16)
    for start in range(0, len(spans), 10):
        batch = spans[start : start + 10]
        assert ExportTraceServiceRequest.FromString(encoder.encode(batch)) == encode_spans(batch)
    assert encoded.count(("http.method", "GET")) == 1
    assert len([k for k, _ in encoded if k == "net.peer.port"]) == 200


def test_pairs_the_cache_misses_are_filled_in_place() -> None:
    """A span whose pairs the cache partly holds: the ones it misses (first, in the
    middle, last, next to each other, one that cannot be encoded) come out encoded in
    the span's own order, the unencodable one left out, as the reference encoder does."""
    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("t")
    shared = {"a": "GET", "b": 1, "c": True, "d": "x" * 10, "e": 2.5}
    tracer.start_span("warm", attributes=shared).end()
    for n in range(4):
        with tracer.start_as_current_span("s") as span:
            span.set_attribute("first", n)
            span.set_attributes(shared)
            span.set_attribute("c", n % 2 == 0)  # a hit or a miss, in the middle
            span.set_attribute("long", "y" * (200 + n))  # never cached
            span.set_attribute("next.to.it", f"id-{n}")
            span.set_attribute("edge", "a" * 126 + str(n))  # 127 bytes: a short field
            span.set_attribute("wide", "é" * 63 + str(n))  # 127 characters, 127 bytes
            span.set_attribute("negative", -5 - n)  # a ten-byte varint
            span.set_attribute("flag", n % 3 == 1)
            span._attributes._dict["huge"] = 1 << (63 + n % 2)  # type: ignore[attr-defined]
            span.set_attribute("last", (n, "t"))  # an array: never cached
    encoder = SpanEncoder()
    encoder.encode(kept.spans[:1])
    for span in kept.spans[1:]:
        sent = ExportTraceServiceRequest.FromString(encoder.encode([span]))
        assert sent == encode_spans([span])
        got = sent.resource_spans[0].scope_spans[0].spans[0].attributes
        assert [kv.key for kv in got] == [key for key in span.attributes if key != "huge"]


def test_consecutive_posts_each_carry_their_own_batch(receiver: OtlpReceiver) -> None:
    """The prepared post is reused: each export still sends its own body and headers."""
    spans = _spans(10)
    first, second = spans[:7], spans[7:]
    exporter = otlp_exporter(Config(token="t_two", endpoint=receiver.url))
    try:
        assert exporter.export(first).name == "SUCCESS"
        assert exporter.export(second).name == "SUCCESS"
    finally:
        exporter.shutdown()
    requests = receiver.requests()
    assert [r.headers["authorization"] for r in requests] == ["LumigoToken t_two"] * 2
    assert [ExportTraceServiceRequest.FromString(r.body) for r in requests] == [
        encode_spans(first),
        encode_spans(second),
    ]
    assert [int(r.headers["content-length"]) for r in requests] == [len(r.body) for r in requests]


def test_a_proxy_from_the_environment_is_used(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`HTTP_PROXY` is honoured, as `requests` does: the receiver stands in for the proxy
    and sees the absolute URL of an endpoint that does not resolve."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", receiver.base_url)
    endpoint = "http://collector.lumigo-test.invalid:4318/v1/traces"
    exporter = otlp_exporter(Config(token="t_proxy", endpoint=endpoint))
    try:
        assert exporter.export(_spans(2)).name == "SUCCESS"
    finally:
        exporter.shutdown()
    (request,) = receiver.requests()
    assert request.path == endpoint
    assert request.headers["authorization"] == "LumigoToken t_proxy"


def test_only_spans_marked_to_skip_are_held_back() -> None:
    from lumigo_opentelemetry.export.skip import SkipExportFilter, mark_skip_export

    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(SkipExportFilter(kept))
    tracer = provider.get_tracer("skip")
    with tracer.start_as_current_span("marked") as span:
        mark_skip_export(span)
    with tracer.start_as_current_span("plain", attributes={"a": 1}):
        pass
    with tracer.start_as_current_span("bare"):
        pass
    with tracer.start_as_current_span("string marker", attributes={"SKIP_EXPORT": "True"}):
        pass
    assert [s.name for s in kept.spans] == ["plain", "bare", "string marker"]


def test_a_cookie_the_backend_sets_comes_back_on_the_next_post() -> None:
    """As with `requests.Session.request`: a backend (e.g. behind a sticky load balancer)
    that sets a cookie sees it on the following posts."""
    import http.server
    import threading

    seen: list[str] = []

    class Backend(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers.get("Cookie", ""))
            self.send_response(200)
            self.send_header("Set-Cookie", f"sticky=n{len(seen)}; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    exporter = otlp_exporter(Config(token="t_cookie", endpoint=endpoint))
    try:
        for _ in range(3):
            assert exporter.export(_spans(1)).name == "SUCCESS"
    finally:
        exporter.shutdown()
        server.shutdown()
        server.server_close()
    assert seen == ["", "sticky=n1", "sticky=n2"]


def _lean_and_odd_spans() -> list[ReadableSpan]:
    """Spans the lean path of `SpanEncoder.span` takes (no trace state; a local, remote
    or no parent; every kind; unset, error and ok status) and spans it hands over to the
    general path (a dropped attribute, events and links dropped by zero limits)."""
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.trace import get_current_span

    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("lean", "1")
    remote = TraceContextTextMapPropagator().extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )
    for i, kind in enumerate(SpanKind):
        attributes = {"http.method": "GET", "net.peer.port": 40000 + i, "flag": i % 2 == 0}
        with tracer.start_as_current_span(
            f"op {i % 2}", kind=kind, attributes=attributes, context=remote if i % 2 else None
        ) as parent:
            with tracer.start_as_current_span("" if i == 3 else "child") as child:
                if i == 1:
                    child.set_status(Status(StatusCode.ERROR, "boom"))
                if i == 2:
                    child.set_status(Status(StatusCode.OK))
            parent.set_attribute("http.status_code", 200 + i)
    limits = SpanLimits(max_attributes=1, max_events=0, max_links=0)
    limited = TracerProvider(resource=provider.resource, span_limits=limits)
    limited.add_span_processor(kept)
    link = Link(get_current_span(remote).get_span_context())
    for attributes, links in (({"a": 1}, []), ({"a": 1}, [link]), ({"a": 1, "b": 2}, [])):
        with limited.get_tracer("limited").start_as_current_span(
            "limited", attributes=attributes, links=links
        ) as span:
            if not links:
                span.add_event("dropped")
    return kept.spans


def test_lean_span_path_writes_the_general_paths_bytes() -> None:
    spans = _lean_and_odd_spans()
    encoder = SpanEncoder(cache_limit=3)  # name and attribute caches turn over
    for _ in range(3):
        for span in spans:
            assert encoder.span(span) == encoder._span_fields(span), span.name
    assert ExportTraceServiceRequest.FromString(encoder.encode(spans)) == encode_spans(spans)


def test_spans_sharing_an_attributes_hint_equal_the_reference_whatever_they_carry() -> None:
    """`ATTRIBUTES_HINT` (the lean DB-API path's spans share their query plan's dict) only
    picks kept fields to try: a span whose pairs differ from the kept ones in any value,
    type (True for 1, 1.0 for 1, an IntEnum), order or count is encoded as the reference
    encodes it; one with the same pairs gets the same bytes."""
    import enum

    from lumigo_opentelemetry.export.encoder import ATTRIBUTES_HINT

    class Code(enum.IntEnum):
        ONE = 1

    plan: dict[str, Any] = {"db.system": "mysql", "db.statement": "SELECT 1", "n": 1}
    variants: list[dict[str, Any]] = [
        dict(plan),
        {**plan, "n": True},
        {**plan, "n": 1.0},
        {**plan, "n": Code.ONE},
        {**plan, "db.statement": "SELECT 2"},
        {"n": 1, "db.system": "mysql", "db.statement": "SELECT 1"},
        {**plan, "extra": "x"},
        {"db.system": "mysql", "db.statement": "SELECT 1"},
    ]
    tracer = TracerProvider().get_tracer("opentelemetry.instrumentation.dbapi")
    encoder = SpanEncoder()
    # each variant right after the plan's own pairs (kept then), and twice (kept itself)
    for attributes in [v for variant in variants for v in (plan, variant, variant)]:
        span: Any = tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes=attributes)
        setattr(span, ATTRIBUTES_HINT, plan)
        span.end()
        got = ExportTraceServiceRequest.FromString(encoder.encode([span]))
        assert got == encode_spans([span]), attributes
    assert len(encoder._hints) == 1
