"""The lean ASGI server span ends with its late attributes (status code, response headers,
bodies) in one call (`end_span(span, None, late)`, as Flask and Django end theirs): the
span records what setting them and then ending it records; should that call fail, the
two steps are taken on their own."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lumigo_opentelemetry.instrumentations import _asgi_server, payloads
from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans, set_attributes

START = {"http.method": "GET", "http.target": "/hello", "net.peer.port": 40000}
LATE = {
    "http.status_code": 200,
    "http.response.headers": '{"content-type":"application/json"}',
    "http.response.body": '{"hello":"world"}',
}


def _tracer() -> Tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("opentelemetry.instrumentation.asgi"), exporter


def _exchange(late: Dict[str, Any]) -> Tuple[Any, InMemorySpanExporter]:
    tracer, exporter = _tracer()
    span = fast_spans(tracer).start_span("GET /hello", None, SpanKind.SERVER, dict(START))
    exchange = _asgi_server._Exchange(
        None,  # type: ignore[arg-type]  # (`end` reads nothing of its owner)
        span,
        None,
        payloads.Attributes(late),
        None,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
    )
    return exchange, exporter


def _reference(late: Dict[str, Any]) -> ReadableSpan:
    """The span as `end` recorded it before: `set_attributes`, then `end_span`."""
    tracer, exporter = _tracer()
    span = fast_spans(tracer).start_span("GET /hello", None, SpanKind.SERVER, dict(START))
    if late:
        set_attributes(span, dict(late))
    end_span(span)
    (finished,) = exporter.get_finished_spans()
    return finished


def _recorded(span: ReadableSpan) -> List[Any]:
    return [span.name, span.kind, list(span.attributes.items()), span.status.status_code]


@pytest.mark.parametrize("late", [LATE, {}, {"http.method": "POST", **LATE}])
def test_ending_in_one_call_records_what_the_two_steps_record(late: Dict[str, Any]) -> None:
    exchange, exporter = _exchange(late)
    exchange.end()
    (finished,) = exporter.get_finished_spans()
    assert _recorded(finished) == _recorded(_reference(late))
    assert exchange.ended and not exchange.late


def test_a_failing_one_call_end_takes_the_two_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[Any] = []

    def failing_once(span: Any, end_time: Any = None, late: Any = None) -> None:
        calls.append(dict(late) if late else late)
        if len(calls) == 1:
            raise RuntimeError("injected")
        end_span(span, end_time, late)

    monkeypatch.setattr(_asgi_server, "end_span", failing_once)
    exchange, exporter = _exchange(LATE)
    exchange.end()
    (finished,) = exporter.get_finished_spans()
    assert _recorded(finished) == _recorded(_reference(LATE))
    assert calls == [LATE, None]  # the late attributes set apart the second time


def test_a_span_ended_before_the_failure_is_not_ended_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ends_then_fails(span: Any, end_time: Any = None, late: Any = None) -> None:
        end_span(span, end_time, late)
        raise RuntimeError("injected")

    monkeypatch.setattr(_asgi_server, "end_span", ends_then_fails)
    exchange, exporter = _exchange(LATE)
    exchange.end()
    (finished,) = exporter.get_finished_spans()
    assert _recorded(finished) == _recorded(_reference(LATE))
