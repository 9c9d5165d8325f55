"""`end_span` through `LeanEnd` ends a span as `span.end()` does.

Spans are started through `FastSpans` on a provider set up as the distro sets it up
(`SkipExportFilter` around `EncodingBatchSpanProcessor` and the distro's exporter) and
ended once with the SDK's `end` and once with `end_span`: what the real OTLP receiver
gets must be the same, and the lean end must really have been taken. Then each case the
lean end does not know (a user's span processor, a plain batch processor, a span ended
twice or never started, a span whose `end` was replaced, a span that is not the SDK's,
an SDK release not read) must take `span.end` and behave exactly as it does.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Dict, List, Optional, Tuple

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider, _Span
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.early import EncodingBatchSpanProcessor
from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter
from lumigo_opentelemetry.export.skip import SKIP_EXPORT_ATTRIBUTE, SkipExportFilter
from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans, set_attributes
from lumigo_opentelemetry.instrumentations._leanend import variant
from tests.helpers.data_tracing import received_span_bytes

START = {"http.method": "GET", "net.peer.port": 40001, "http.target": "/hello"}


class Hooks(SpanProcessor):
    """A user's span processor: each hook it sees, with the span's state then."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, Any, Any]] = []

    def _on_ending(self, span: Any) -> None:
        self.calls.append(("_on_ending", span.name, span.end_time, type(span)))

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("on_end", span.name, dict(span.attributes), type(span)))


class _SampledOddTraces(Sampler):
    """Records every span, samples half of them (the others are not exported)."""

    def should_sample(self, parent: Any, trace_id: int, *args: Any, **kwargs: Any) -> Any:
        kept = Decision.RECORD_AND_SAMPLE if trace_id % 2 else Decision.RECORD_ONLY
        return SamplingResult(kept, kwargs.get("attributes"))

    def get_description(self) -> str:
        return "odd"


def _provider(receiver: OtlpReceiver, sampler: Optional[Sampler] = None) -> TracerProvider:
    config = Config(token="t_lean", endpoint=receiver.url)
    provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    provider.add_span_processor(
        SkipExportFilter(build_batch_processor(config, build_exporter(config)))
    )
    return provider


def _batch(provider: TracerProvider) -> Any:
    return provider._active_span_processor._span_processors[0].inner  # type: ignore[attr-defined]


def _send(receiver: OtlpReceiver, lean: bool, sampler: Optional[Sampler] = None) -> List[bytes]:
    """Spans of every kind, ended at fixed times by `end_span` (lean) or `span.end`."""
    receiver.clear()
    random.seed(7)  # the same ids both ways
    provider = _provider(receiver, sampler)
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask", "0.1")
    spans = fast_spans(tracer)
    end = end_span if lean else Span.end
    for n in range(6):
        span = spans.start_span(f"GET {n}", Context(), SpanKind.SERVER, dict(START), 10 * n)
        set_attributes(span, {"http.status_code": 200 + n, "request.id": f"r-{n}"})
        if n == 1:
            span.set_status(Status(StatusCode.ERROR, "failed"))
            span.record_exception(ValueError("bad"), timestamp=12)
        if n == 2:
            span.set_attribute(SKIP_EXPORT_ATTRIBUTE, True)  # held back
        if n == 3:
            span.set_attribute(SKIP_EXPORT_ATTRIBUTE, "true")  # not a mark: sent
        end(span, 10 * n + 5)
    assert provider.force_flush(10_000)
    provider.shutdown()
    return received_span_bytes(receiver)


def test_the_lean_end_sends_what_span_end_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[str] = []
    live = EncodingBatchSpanProcessor.on_end_live

    def spy(self: Any, span: Any) -> None:
        calls.append(span.name)
        live(self, span)

    monkeypatch.setattr(EncodingBatchSpanProcessor, "on_end_live", spy)
    with OtlpReceiver() as receiver:
        sdk = _send(receiver, lean=False)
        assert calls == []
        ours = _send(receiver, lean=True)
        assert calls == ["GET 0", "GET 1", "GET 3", "GET 4", "GET 5"]  # the lean end's
        assert ours == sdk and len(ours) == 5
        calls.clear()
        assert _send(receiver, True, _SampledOddTraces()) == _send(
            receiver, False, _SampledOddTraces()
        )
        assert calls  # the recorded but unsampled spans were ended, not queued


def test_the_ended_span_is_as_span_end_leaves_it() -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        spans = fast_spans(provider.get_tracer("t"))
        ours, sdk = (spans.start_span(n, Context(), SpanKind.SERVER, dict(START)) for n in "ab")
        end_span(ours)
        sdk.end()
        for span in (ours, sdk):
            assert span.end_time is not None and not span.is_recording()
            span.set_attribute("late", 1)
            assert "late" not in span.attributes
        attributes: Any = ours._attributes  # type: ignore[attr-defined]
        assert attributes._immutable == sdk._attributes._immutable  # type: ignore[attr-defined]
        queued = list(_batch(provider)._batch_processor._queue)
        assert [type(item) for item in queued] == [type(queued[1])] * 2  # both encoded or not
        provider.shutdown()


def test_a_span_ended_twice_or_never_started_is_told_as_the_sdk_tells_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        tracer = provider.get_tracer("t")
        span = fast_spans(tracer).start_span("s", Context(), SpanKind.SERVER, dict(START))
        end_span(span, 5)
        with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace"):
            end_span(span, 9)
        assert "Calling end() on an ended span." in caplog.text
        assert span.end_time == 5
        assert len(_batch(provider)._batch_processor._queue) == 1
        never = tracer.start_span("never")
        never._start_time = None  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="not started"):
            end_span(never)
        provider.shutdown()


def _ended_with(provider: TracerProvider, hooks: Optional[Hooks] = None) -> List[Any]:
    """A span ended by `end_span`, `hooks` added to the provider after it started."""
    span = fast_spans(provider.get_tracer("t")).start_span(
        "s", Context(), SpanKind.SERVER, dict(START)
    )
    if hooks is not None:
        provider.add_span_processor(hooks)
    end_span(span, 7)
    return list(_batch(provider)._batch_processor._queue)


def test_a_users_span_processor_sees_every_span_as_today() -> None:
    with OtlpReceiver() as receiver:
        hooks = Hooks()
        provider = _provider(receiver)
        queued = _ended_with(provider, hooks)
        provider.shutdown()
        assert hooks.calls == [
            ("_on_ending", "s", 7, _Span),
            ("on_end", "s", START, ReadableSpan),
        ]
        assert len(queued) == 1


class _Keep(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@pytest.mark.parametrize("where", [SkipExportFilter, EncodingBatchSpanProcessor])
def test_an_on_ending_hook_with_a_body_is_called_as_the_sdk_calls_it(
    monkeypatch: pytest.MonkeyPatch, where: type
) -> None:
    """The filter's `_on_ending` is called (an SDK release where it does something); the
    batch processor's is not: the filter does not pass it on."""
    seen: List[Tuple[str, Optional[int]]] = []

    def on_ending(self: Any, span: Any) -> None:
        seen.append((span.name, span.end_time))

    monkeypatch.setattr(where, "_on_ending", on_ending)
    runs = []
    with OtlpReceiver() as receiver:
        for lean in (False, True):
            provider = _provider(receiver)
            span = fast_spans(provider.get_tracer("t")).start_span(
                "s", Context(), SpanKind.SERVER, dict(START)
            )
            (end_span if lean else Span.end)(span, 7)
            runs.append(list(seen))
            seen.clear()
            provider.shutdown()
    assert runs[0] == runs[1] == ([("s", 7)] if where is SkipExportFilter else [])


def test_a_plain_batch_processor_or_another_exporter_gets_a_readable_span() -> None:
    for processor in (BatchSpanProcessor(_Keep()), EncodingBatchSpanProcessor(_Keep())):
        provider = TracerProvider()
        provider.add_span_processor(SkipExportFilter(processor))
        queued = _ended_with(provider)
        assert [type(item) for item in queued] == [ReadableSpan]
        assert queued[0].end_time == 7
        provider.shutdown()


def test_a_replaced_end_or_another_span_class_is_called() -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        tracer = provider.get_tracer("t")
        span = fast_spans(tracer).start_span("s", Context(), SpanKind.SERVER, dict(START))
        ended: List[Optional[int]] = []
        original = span.end

        def replaced(end_time: Optional[int] = None) -> None:
            ended.append(end_time)
            original(end_time)

        span.end = replaced  # type: ignore[method-assign]
        end_span(span, 3)
        assert ended == [3] and span.end_time == 3
        NonRecordingSpan(span.get_span_context()).end()
        end_span(NonRecordingSpan(span.get_span_context()))  # nothing to do, no error
        provider.shutdown()


def test_without_the_lean_end_the_sdk_ends_the_span() -> None:
    """An SDK release the lean end does not read: `lean_end` is None, `span.end` runs."""
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        tracer = provider.get_tracer("t")
        spans = fast_spans(tracer)
        tracer.span_processor.lean_end = None  # type: ignore[attr-defined]
        hooks: Dict[str, int] = {"on_end": 0}
        batch = _batch(provider)
        on_end = batch.on_end

        def counted(span: Any) -> None:
            hooks["on_end"] += 1
            on_end(span)

        batch.on_end = counted
        span = spans.start_span("s", Context(), SpanKind.SERVER, dict(START))
        end_span(span, 4)
        assert hooks == {"on_end": 1} and span.end_time == 4
        provider.shutdown()


def test_only_the_ends_read_are_recognised() -> None:
    assert variant(Span.end, "1.45.1") is not None  # the installed SDK's

    def other(self: Any) -> None:
        self._span_processor.on_end(self)

    assert variant(other, "1.45.1") is None
    assert variant(Span.end, "1.46.0") is None
    assert variant(Span.end, "1.40.0") is None
