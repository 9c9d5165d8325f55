"""Spans built without their event and link lists (`_lazylists`) behave as the SDK's spans.

When only the distro's exporting processor sees a span, `SpanBuilder` leaves its event
and link lists to be made on their first read. Each case here runs the same calls on
spans started that way and on spans the SDK's own `start_span` built (same ids), through
the distro's export set-up, and compares what the real OTLP receiver decoded; then the
public Span API on such a span, a thread race on its first event, and the cases that
must build the lists at once (another span processor, a class attribute in the way).
"""

from __future__ import annotations

import random
import threading
from typing import Any, Callable, Dict, List, Optional

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider, _Span
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.encoder import LISTS_UNMADE
from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter
from lumigo_opentelemetry.export.skip import SkipExportFilter
from lumigo_opentelemetry.instrumentations import _lazylists
from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans, set_attributes
from lumigo_opentelemetry.instrumentations._leanstart import span_builder
from tests.helpers.data_tracing import received_span_bytes

START = {"http.method": "GET", "net.peer.port": 40001, "http.target": "/hello"}
OTHER = SpanContext(0xABC, 0xDEF, True, TraceFlags(1))


def _provider(receiver: OtlpReceiver, limits: Optional[SpanLimits] = None) -> TracerProvider:
    config = Config(token="t_lazy", endpoint=receiver.url)
    provider = TracerProvider(span_limits=limits) if limits else TracerProvider()
    provider.add_span_processor(
        SkipExportFilter(build_batch_processor(config, build_exporter(config)))
    )
    return provider


def _plain(span: Any) -> None:
    pass


def _events(span: Any) -> None:
    span.add_event("first", {"a": 1}, timestamp=11)
    span.add_event("second", timestamp=12)


def _exception(span: Any) -> None:
    span.record_exception(ValueError("bad"), timestamp=13)
    span.set_status(Status(StatusCode.ERROR, "failed"))


def _link(span: Any) -> None:
    span.add_link(OTHER, {"why": "batch"})


def _everything(span: Any) -> None:
    assert span.is_recording()
    span.set_attribute("one", 1)
    span.update_name("renamed")
    _events(span)
    _link(span)
    assert len(span.events) == 2 and len(span.links) == 1
    span.set_status(StatusCode.OK)


def _read_only(span: Any) -> None:
    # reading the lists makes them: the span is then encoded as any other
    assert span.events == () and span.links == ()
    assert span.dropped_events == 0 and span.dropped_links == 0


def _overflow(span: Any) -> None:
    for n in range(5):  # past max_events (3): dropped counted
        span.add_event(f"e{n}", timestamp=20 + n)


CALLS: Dict[str, Callable[[Any], None]] = {
    "plain": _plain,
    "events": _events,
    "exception": _exception,
    "link": _link,
    "everything": _everything,
    "read only": _read_only,
    "overflow": _overflow,
}


def _send(receiver: OtlpReceiver, lean: bool, calls: Callable[[Any], None]) -> List[bytes]:
    receiver.clear()
    random.seed(7)  # the same ids both ways
    provider = _provider(receiver, SpanLimits(max_events=3))
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask", "0.1")
    spans = fast_spans(tracer)
    if not lean:
        spans._lean = None  # the SDK's start_span, through the same layers
    for n in range(3):
        span = spans.start_span(f"GET {n}", Context(), SpanKind.SERVER, dict(START), 10 * n)
        if lean and n:  # (the first span makes the processor layer's plan)
            assert getattr(span, LISTS_UNMADE) is True
            assert "_events" not in vars(span) and "_links" not in vars(span)
        elif not lean:
            assert not hasattr(span, LISTS_UNMADE)
        set_attributes(span, {"http.status_code": 200 + n})
        calls(span)
        end_span(span, 10 * n + 5)
    assert provider.force_flush(10_000)
    provider.shutdown()
    return received_span_bytes(receiver)


@pytest.mark.parametrize("calls", list(CALLS))
def test_spans_without_their_lists_send_what_sdk_spans_send(calls: str) -> None:
    with OtlpReceiver() as receiver:
        ours = _send(receiver, True, CALLS[calls])
        sdk = _send(receiver, False, CALLS[calls])
    assert ours == sdk and len(ours) == 3


def test_the_span_api_on_a_span_without_its_lists() -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        tracer = provider.get_tracer("t")
        spans = fast_spans(tracer)
        end_span(spans.start_span("first", Context(), SpanKind.SERVER, dict(START)))
        span = spans.start_span("s", Context(), SpanKind.SERVER, dict(START))
        assert getattr(span, LISTS_UNMADE) is True
        assert isinstance(span, _Span) and type(span) is _Span
        token = context_api.attach(trace.set_span_in_context(span))
        try:
            assert trace.get_current_span() is span
        finally:
            context_api.detach(token)
        assert span.get_span_context().is_valid and span.is_recording()
        with span:  # the context manager use ends it
            span.add_event("inside")
        assert not span.is_recording() and [e.name for e in span.events] == ["inside"]
        span.add_event("late")  # ignored, as on any ended span
        assert [e.name for e in span.events] == ["inside"]
        readable = span._readable_span()
        assert [e.name for e in readable.events] == ["inside"] and readable.links == ()
        provider.shutdown()


def test_the_first_event_from_many_threads_at_once() -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        spans = fast_spans(provider.get_tracer("t"))
        end_span(spans.start_span("first", Context(), SpanKind.SERVER, dict(START)))
        for _ in range(20):
            span = spans.start_span("s", Context(), SpanKind.SERVER, dict(START))
            assert getattr(span, LISTS_UNMADE) is True
            barrier = threading.Barrier(8)

            def add(n: int, span: Any = span, barrier: Any = barrier) -> None:
                barrier.wait()
                span.add_event(f"e{n}")
                span.add_link(OTHER)

            threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(e.name for e in span.events) == [f"e{n}" for n in range(8)]
            assert len(span.links) == 8
            end_span(span)
        provider.shutdown()


class _Seen(SpanProcessor):
    def on_start(self, span: Any, parent_context: Optional[Context] = None) -> None:
        self.fields = list(vars(span))


def test_another_span_processor_gets_spans_with_their_lists() -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        seen = _Seen()
        provider.add_span_processor(seen)
        spans = fast_spans(provider.get_tracer("t"))
        for _ in range(2):
            span = spans.start_span("s", Context(), SpanKind.SERVER, dict(START))
            assert "_events" in seen.fields and "_links" in seen.fields
            assert not hasattr(span, LISTS_UNMADE)
            end_span(span)
        provider.shutdown()


def test_a_class_attribute_in_the_way_keeps_the_lists_made_at_once() -> None:
    class Other(_Span):
        _links = ()  # a class attribute of that name: nothing installed

    assert _lazylists.install(Other) is False
    assert "_events" not in vars(Other)
    assert _lazylists.install(_Span) is True  # (installed already: kept)


def test_a_builder_whose_lazy_span_differs_builds_the_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OtlpReceiver() as receiver:
        provider = _provider(receiver)
        tracer = provider.get_tracer("t")
        assert span_builder(tracer).lazy_lists is True  # type: ignore[union-attr]
        # a list made on read that is not what the constructor makes
        monkeypatch.setattr(_Span._links, "make", lambda span: [])  # type: ignore[attr-defined]
        assert span_builder(tracer).lazy_lists is False  # type: ignore[union-attr]
        provider.shutdown()
