"""Spans encoded as they end: same bytes at the receiver, nothing for the cycle collector.

The distro's batch processor (`export/early.py`) queues each span already encoded. What
reaches the real OTLP receiver must equal the reference encoder's output for the same
spans; a queued span must hold nothing the cycle collector tracks (else the p99 tail
comes back); any other exporter, or an OTLP exporter too old to send our encoding, gets
the SDK spans themselves.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export import early
from lumigo_opentelemetry.export.encoder import Groups, SpanEncoder
from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter
from tests.distro.test_distro_encoder import _spans


@pytest.fixture()
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


class _Keep(SpanExporter):
    """An exporter that is not the distro's: keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS


def _replay(processor: Any, spans: list[ReadableSpan]) -> None:
    for span in spans:
        processor.on_end(span)


def _queued(processor: Any) -> list[Any]:
    return list(processor._batch_processor._queue)


def test_spans_encoded_as_they_end_arrive_as_the_reference_encodes_them(
    receiver: OtlpReceiver,
) -> None:
    spans = _spans(100)  # 300 spans, two resources, three scopes
    config = Config(token="t_early", endpoint=receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    try:
        _replay(processor, spans)
        assert processor.force_flush(10_000)
    finally:
        processor.shutdown()
    sent = [ExportTraceServiceRequest.FromString(r.body) for r in receiver.requests()]
    got = [span for request in sent for rs in request.resource_spans for ss in rs.scope_spans
           for span in ss.spans]  # fmt: skip
    assert len(got) == len(spans)
    reference = encode_spans(spans)
    assert _grouped(sent) == _grouped([reference])
    assert all(r.headers["authorization"] == "LumigoToken t_early" for r in receiver.requests())


def _grouped(requests: list[ExportTraceServiceRequest]) -> dict[tuple[bytes, ...], list[bytes]]:
    """Spans (serialized) under each (resource, scope), whichever batch carried them."""
    out: dict[tuple[bytes, ...], list[bytes]] = {}
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                key = (rs.resource.SerializeToString(), ss.scope.SerializeToString())
                out.setdefault(key, []).extend(s.SerializeToString() for s in ss.spans)
    return out


def test_a_queued_span_holds_nothing_the_cycle_collector_tracks(receiver: OtlpReceiver) -> None:
    config = Config(token="t_early", endpoint=receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    try:
        _replay(processor, _spans(10))
        queued = _queued(processor)
        assert len(queued) == 30
        gc.collect()  # the collector stops tracking tuples of untracked values when it meets them
        assert [item for item in queued if gc.is_tracked(item)] == []
    finally:
        processor.shutdown()


def test_mixed_batches_of_encoded_and_plain_spans_encode_as_the_reference() -> None:
    spans = _spans(20)
    encoder = SpanEncoder(slice_size=7)
    mixed = [encoder.early(span) if i % 3 else span for i, span in enumerate(spans)]
    assert all(type(item) is tuple for i, item in enumerate(mixed) if i % 3)
    assert ExportTraceServiceRequest.FromString(encoder.encode(mixed)) == encode_spans(spans)


def test_past_the_group_limit_spans_are_queued_unencoded(monkeypatch: pytest.MonkeyPatch) -> None:
    groups = Groups(limit=1)
    monkeypatch.setattr("lumigo_opentelemetry.export.encoder.GROUPS", groups)
    spans = _spans(2)  # three scopes
    encoder = SpanEncoder()
    items = [encoder.early(span) for span in spans]
    first_scope = spans[0].instrumentation_scope
    assert [item is not None for item in items] == [
        span.instrumentation_scope is first_scope and span.resource is spans[0].resource
        for span in spans
    ]
    assert ExportTraceServiceRequest.FromString(
        encoder.encode([item or span for item, span in zip(items, spans)])
    ) == encode_spans(spans)


def test_another_exporter_gets_the_sdk_spans_themselves() -> None:
    kept = _Keep()
    processor = build_batch_processor(Config(token="t"), kept)
    spans = _spans(3)
    _replay(processor, spans)
    processor.force_flush(5_000)
    processor.shutdown()
    assert [span for batch in kept.batches for span in batch] == spans


def test_an_exporter_too_old_to_send_our_encoding_gets_the_spans(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    looked_up: list[str] = []

    def installed_version(name: str) -> str | None:
        looked_up.append(name)
        return "1.41.0" if name == "opentelemetry-exporter-otlp-proto-http" else None

    monkeypatch.setattr(
        "lumigo_opentelemetry.instrumentations._version_gate.installed_version",
        installed_version,
    )
    config = Config(token="t_early", endpoint=receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    try:
        _replay(processor, _spans(2))
        assert all(isinstance(item, ReadableSpan) for item in _queued(processor))
        # the metadata is read once per processor, not once per span
        assert looked_up == ["opentelemetry-exporter-otlp-proto-http"]
    finally:
        processor.shutdown()


@pytest.mark.parametrize(
    ("version", "sends"),
    [
        ("1.42.0", True),
        ("1.45.1", True),
        ("2.0", True),
        ("1.42.0rc1", True),
        ("1.41.2", False),
        ("1.x", False),
        ("", False),
    ],
)
def test_which_exporter_releases_send_our_encoding(
    monkeypatch: pytest.MonkeyPatch, version: str, sends: bool
) -> None:
    monkeypatch.setattr(
        "lumigo_opentelemetry.instrumentations._version_gate.installed_version",
        lambda name: version if name == "opentelemetry-exporter-otlp-proto-http" else None,
    )
    assert early.exporter_sends_our_encoding() is sends


class _RecordOnly(Sampler):
    """Spans are recorded (processors see them end) but not sampled."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record only"


def test_recorded_but_unsampled_spans_are_not_queued(receiver: OtlpReceiver) -> None:
    config = Config(token="t_early", endpoint=receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    provider = TracerProvider(resource=Resource.create({}), sampler=_RecordOnly())
    provider.add_span_processor(processor)
    try:
        span = provider.get_tracer("t").start_span("recorded only")
        assert span.is_recording()
        span.end()
        assert _queued(processor) == []
    finally:
        provider.shutdown()


class _Failing:
    def early(self, span: Any) -> Any:
        raise ValueError("cannot encode")


def test_a_span_that_cannot_be_encoded_is_queued_as_is(receiver: OtlpReceiver) -> None:
    config = Config(token="t_early", endpoint=receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    span = _spans(1)[0]
    try:
        processor.on_end(span)  # decides, and builds its encoder
        processor._encoder = _Failing()
        processor.on_end(span)
        first, second = reversed(_queued(processor))
        assert type(first) is tuple and second is span
    finally:
        processor.shutdown()


def test_when_the_choice_fails_spans_are_queued_as_they_are(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    def broken() -> bool:
        raise OSError("metadata unreadable")

    monkeypatch.setattr(early, "exporter_sends_our_encoding", broken)
    config = Config(token="t_early", endpoint=receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    try:
        spans = _spans(2)
        _replay(processor, spans)
        assert list(reversed(_queued(processor))) == spans
        assert processor.force_flush(10_000)
    finally:
        processor.shutdown()
    got = [ExportTraceServiceRequest.FromString(r.body) for r in receiver.requests()]
    assert _grouped(got) == _grouped([encode_spans(spans)])


def test_values_that_compare_equal_and_large_spans_encode_as_the_reference() -> None:
    """The attribute cache keeps `True`, `1` and `1.0` (equal, same hash) apart, and
    -0.0 from 0.0; a span over 16 KiB gets its three-byte length."""
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    spans = []
    for value in (True, 1, 1.0, False, 0, 0.0, -0.0, "1", "x" * 20000):
        span = tracer.start_span("s", attributes={"k": value, "n": 1, "flag": True})
        span.end()
        spans.append(span)
    encoder = SpanEncoder()
    for _ in range(2):  # the second pass from the cache
        items = [encoder.early(span) for span in spans]
        decoded = ExportTraceServiceRequest.FromString(encoder.encode(items))
        assert decoded == encode_spans(spans)


def test_spans_are_queued_without_emit_when_its_steps_are_the_ones_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK's `BatchProcessor` read: spans go into its queue without `emit`, in order;
    after a fork (another pid), when shut down, a full queue or a processor not read:
    through `emit`, as before."""
    from opentelemetry.sdk._shared_internal import BatchProcessor

    calls: list[Any] = []
    emit = BatchProcessor.emit

    def spy(self: Any, data: Any) -> None:
        calls.append(data)
        emit(self, data)

    kept = _Keep()
    processor = build_batch_processor(Config(token="t"), kept)
    monkeypatch.setattr(BatchProcessor, "emit", spy)  # (read at creation: still direct)
    spans = _spans(4)[:4]
    _replay(processor, spans[:2])
    assert calls == [] and _queued(processor) == spans[1::-1]
    monkeypatch.setattr(early, "_pid", [-5])  # as in a child the hook did not reach
    _replay(processor, spans[2:3])
    assert calls == [spans[2]]
    monkeypatch.setattr(early, "_pid", [processor._batch_processor._pid])
    processor._batch_processor._max_queue_size = 3  # full: `emit` drops one
    _replay(processor, spans[3:])
    assert calls == [spans[2], spans[3]]
    processor.force_flush(5_000)
    processor.shutdown()
    _replay(processor, spans[:1])
    assert calls[-1] is spans[0]


def test_a_batch_processor_not_read_gets_emit() -> None:
    from opentelemetry.sdk._shared_internal import BatchProcessor

    class Other(BatchProcessor):  # type: ignore[type-arg]
        def emit(self, data: Any) -> None:
            super().emit(data)

    assert early._direct_queue(None) is None
    processor = build_batch_processor(Config(token="t"), _Keep())
    assert early._direct_queue(processor._batch_processor) is processor._batch_processor
    processor._batch_processor.__class__ = Other
    assert early._direct_queue(processor._batch_processor) is None
    processor._batch_processor.__class__ = BatchProcessor
    processor.shutdown()
