"""`FastSpans.start_span` through `LeanStart` starts the span `tracer.start_span` starts.

The same span is started through the SDK's `start_span` and through the lean start, under
the same random seed (the default id generator's ids are then the same), on real SDK
tracer providers, and everything the span carries is compared: its class, context (ids,
trace flags, trace state), parent, kind, attributes, resource, scope, limits, what span
processors and samplers saw. Parents: none, remote and local, sampled or not, with and
without the random-trace-id flag.
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, Tracer, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations._fastspan import fast_spans
from lumigo_opentelemetry.instrumentations._leanstart import variant
from lumigo_opentelemetry.sampling import LumigoSampler

START = {"http.method": "GET", "http.target": "/hello", "net.host.port": 8000}


class Seen(SpanProcessor):
    """A user's span processor: what each span is when it starts."""

    def __init__(self) -> None:
        self.seen: List[Any] = []

    def on_start(self, span: Any, parent_context: Optional[Context] = None) -> None:
        self.seen.append((span.name, dict(span.attributes), span.context, parent_context))


class Counting(IdGenerator):
    """A user's id generator whose trace ids are not random."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return self.next


def _parents() -> List[Optional[Context]]:
    state = TraceState([("vendor", "v1")])
    parents: List[Optional[Context]] = [None, Context()]
    for remote in (True, False):
        for flags in (0, 1, 2, 3):
            parent = SpanContext(0xABC, 0xDEF, remote, TraceFlags(flags), state)
            parents.append(trace.set_span_in_context(NonRecordingSpan(parent)))
    return parents


def _start(lean: bool, sampler: Any, parent: Optional[Context], ids: Any = None) -> Any:
    provider = TracerProvider(
        sampler=sampler, id_generator=ids, span_limits=SpanLimits(max_span_attributes=50)
    )
    seen = Seen()
    provider.add_span_processor(seen)
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask", "1.0")
    spans = fast_spans(tracer)
    assert (spans._lean is not None) is True
    if not lean:
        spans._lean = None  # the SDK's start_span, through the same layers
    random.seed(7)
    span = spans.start_span("GET /hello", parent, SpanKind.SERVER, dict(START), 1_000)
    return span, seen.seen


def _fields(span: Any) -> Dict[str, Any]:
    if not span.is_recording():
        return {"class": type(span), "context": span.get_span_context()}
    return {
        "class": type(span),
        "context": span.get_span_context(),
        "flags": int(span.get_span_context().trace_flags),
        "parent": span.parent,
        "name": span.name,
        "kind": span.kind,
        "attributes": list(span.attributes.items()),
        "start": span.start_time,
        "resource": span.resource,
        "scope": span.instrumentation_scope,
        "limits": repr(span._limits),
        "events": list(span.events),
        "links": list(span.links),
        "record_exception": span._record_exception,
        "status": span.status.status_code,
    }


SAMPLERS = {
    "lumigo default": lambda: LumigoSampler(Config.from_environ({})),
    "lumigo ratio": lambda: LumigoSampler(
        Config.from_environ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"})
    ),
    "lumigo parent-based off": lambda: LumigoSampler(
        Config.from_environ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"})
    ),
    "lumigo always off": lambda: LumigoSampler(
        Config.from_environ({"OTEL_TRACES_SAMPLER": "always_off"})
    ),
    "lumigo filtered": lambda: LumigoSampler(
        Config.from_environ({"LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX": ".*hello.*"})
    ),
    "ratio": lambda: TraceIdRatioBased(0.5),
    "parent-based off": lambda: ParentBased(ALWAYS_OFF),
}


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("ids", [None, Counting])
def test_the_lean_start_starts_the_sdks_span(sampler: str, ids: Any) -> None:
    for parent in _parents():
        ours, ours_seen = _start(True, SAMPLERS[sampler](), parent, ids and ids())
        theirs, theirs_seen = _start(False, SAMPLERS[sampler](), parent, ids and ids())
        assert _fields(ours) == _fields(theirs)
        assert ours_seen == theirs_seen


def test_a_sampler_that_changes_the_attributes_has_them_recorded() -> None:
    from test_fastspan import Recording

    for extra in ({"sampler.added": "x"}, {"http.target": "/changed"}):
        ours, _ = _start(True, Recording(extra), None)
        theirs, _ = _start(False, Recording(extra), None)
        assert _fields(ours) == _fields(theirs)
        assert dict(ours.attributes) == {**START, **extra}


def test_the_sdk_starts_what_the_lean_start_does_not_know() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    spans = fast_spans(tracer)
    lean = spans._lean
    assert lean is not None
    # a disabled tracer: the SDK's non-recording span
    tracer._tracer_config = type(tracer._tracer_config)(is_enabled=False)
    assert lean.start("s", None, SpanKind.SERVER, dict(START), None) is None
    span = spans.start_span("s", None, SpanKind.SERVER, dict(START))
    assert not span.is_recording()
    tracer._tracer_config = type(tracer._tracer_config)(is_enabled=True)
    # a start_span replaced on the tracer
    calls: List[str] = []
    original = tracer.start_span

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append("wrapped")
        return original(*args, **kwargs)

    tracer.start_span = wrapped  # type: ignore[method-assign]
    spans.start_span("s", None, SpanKind.SERVER, dict(START)).end()
    assert calls == ["wrapped"]


def test_only_the_start_spans_read_are_recognised() -> None:
    assert variant(Tracer.start_span, "1.45.1") is not None  # the installed SDK's

    def other(self: Any) -> None:
        self.sampler.should_sample()

    assert variant(other, "1.45.1") is None
    assert variant(Tracer.start_span, "1.46.0") is None


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_a_span_without_attributes_under_the_current_span(sampler: str) -> None:
    """As a DB-API span starts: no attributes, no context (the current one's span is
    the parent), through `start_span(name, None, kind, None)`."""
    from opentelemetry import context

    def start(lean: bool) -> Any:
        provider = TracerProvider(sampler=SAMPLERS[sampler]())
        seen = Seen()
        provider.add_span_processor(seen)
        random.seed(5)
        server = provider.get_tracer("server").start_span("GET /db", kind=SpanKind.SERVER)
        tracer = provider.get_tracer("opentelemetry.instrumentation.dbapi", "1.0")
        token = context.attach(trace.set_span_in_context(server))
        try:
            random.seed(11)
            if lean:
                span = fast_spans(tracer).start_span("SELECT", None, SpanKind.CLIENT, None)
            else:
                span = tracer.start_span("SELECT", kind=SpanKind.CLIENT)
        finally:
            context.detach(token)
        return span, seen.seen[1:], server.get_span_context()

    ours, ours_seen, ours_parent = start(True)
    theirs, theirs_seen, theirs_parent = start(False)
    assert ours_parent == theirs_parent
    fields, reference = _fields(ours), _fields(theirs)
    fields.pop("start", None), reference.pop("start", None)  # now, for both
    assert fields == reference
    assert [seen[:3] for seen in ours_seen] == [seen[:3] for seen in theirs_seen]
    if ours.is_recording():
        assert ours.parent == ours_parent
