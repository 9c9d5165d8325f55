"""`LeanExecution.run` reads, attaches and detaches the current context through
`CurrentContext` (the context variable, while the API's runtime context is the default one
it found) and starts the
query's span through `LeanStart.start` directly: the query still runs with its span
current, a child of the request's span, the context is restored after it, and the spans
are the same as through the API's functions and `FastSpans.start_span` (the general
paths, taken when the runtime context is replaced or the lane has no direct start)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Dict, List

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.helpers.data_tracing import instrumented, mariadb_connection, receiver, tracing

__all__ = ["receiver"]

QUERY = "SELECT id, name FROM bench_items WHERE id = %s"


@pytest.fixture(scope="module", autouse=True)
def _pymysql() -> Iterator[None]:
    with instrumented("pymysql"):
        yield


@pytest.fixture
def connection() -> Iterator[Any]:
    with mariadb_connection() as conn:
        yield conn


def _queries(connection: Any, seen: List[Dict[str, Any]], count: int = 2) -> None:
    """`count` queries through the lean path (a stub query method that records the
    current span and context), in a request span; checks the context around each."""
    from opentelemetry import context, trace

    tracer, lean = object.__getattribute__(connection, "_self_lumigo_tracer")
    cursor = connection.cursor().__wrapped__

    def query(*args: Any) -> int:
        span = trace.get_current_span()
        seen.append({"span": span, "context": context.get_current(), "args": args})
        return 1

    with tracing().tracer.start_as_current_span("request") as request:
        for n in range(count):
            before = context.get_current()
            assert lean.run(tracer, cursor, query, (QUERY, (n,)), {}) == 1
            assert context.get_current() is before  # restored, the same object
            span = seen[-1]["span"]
            assert span is not request and span.parent.span_id == request.get_span_context().span_id
            assert seen[-1]["args"] == (QUERY, (n,))
    cursor.close()


def _shape(spans: List[ReceivedSpan]) -> List[Any]:
    by_id = {s.span_id: s.name for s in spans}
    return sorted(
        (s.name, s.kind, by_id.get(s.parent_span_id), sorted(s.attributes.items())) for s in spans
    )


def test_the_query_runs_in_its_span_and_the_context_is_restored(
    connection: Any, receiver: OtlpReceiver
) -> None:
    seen: List[Dict[str, Any]] = []
    _queries(connection, seen)
    spans = receiver.wait_for_spans(3)
    assert [s.name for s in spans].count("SELECT") == 2
    assert _shape(spans)[0][2] == "request"


def test_a_replaced_runtime_context_gets_the_same_spans_through_the_api(
    connection: Any, receiver: OtlpReceiver
) -> None:
    from opentelemetry import context
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

    inline: List[Dict[str, Any]] = []
    _queries(connection, inline)
    reference = _shape(receiver.wait_for_spans(3))
    receiver.clear()
    original = context._RUNTIME_CONTEXT
    context._RUNTIME_CONTEXT = ContextVarsRuntimeContext()  # not the one `run` found
    try:
        through_api: List[Dict[str, Any]] = []
        _queries(connection, through_api)
    finally:
        context._RUNTIME_CONTEXT = original
    assert _shape(receiver.wait_for_spans(3)) == reference


def test_a_lane_without_a_direct_start_gets_the_same_spans(
    connection: Any, receiver: OtlpReceiver
) -> None:
    tracer, _lean = object.__getattribute__(connection, "_self_lumigo_tracer")
    direct: List[Dict[str, Any]] = []
    _queries(connection, direct)
    lane = tracer.__dict__["_lumigo_lane"]
    assert lane.start is not None  # the direct start is what ran
    reference = _shape(receiver.wait_for_spans(3))
    receiver.clear()
    start, lane.start = lane.start, None
    try:
        general: List[Dict[str, Any]] = []
        _queries(connection, general)
    finally:
        lane.start = start
    assert _shape(receiver.wait_for_spans(3)) == reference


def test_a_direct_start_that_declines_falls_back_to_fast_spans(
    connection: Any, receiver: OtlpReceiver
) -> None:
    tracer, _lean = object.__getattribute__(connection, "_self_lumigo_tracer")
    _queries(connection, [], count=1)
    reference = _shape(receiver.wait_for_spans(2))
    receiver.clear()
    lane = tracer.__dict__["_lumigo_lane"]
    start, lane.start = lane.start, lambda *args: None  # as `LeanStart.start` declines
    try:
        _queries(connection, [], count=1)
    finally:
        lane.start = start
    assert _shape(receiver.wait_for_spans(2)) == reference
