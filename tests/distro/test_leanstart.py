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


class Invalid(Counting):
    """A user's id generator whose span ids are invalid (the span context is then too)."""

    def generate_span_id(self) -> int:
        return 0


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
    assert spans._lean is not None and spans._lean.built is not None
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
        "context class": type(span.get_span_context()),
        "context fields": tuple(map(type, span.get_span_context())),
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
        "end metrics": getattr(span._record_end_metrics, "__qualname__", None),
        "shape": _shape(span),
    }


def _shape(span: Any) -> List[Any]:
    """The span's own attributes (names in order, classes), its attribute map's, events'
    and links' the same way, with their values but for locks."""

    def fields(value: Any) -> List[Any]:
        layered = ("_sampler", "_span_processor")  # (the layers' or the SDK's: see `start`)
        return [(key, key in layered or type(item)) for key, item in vars(value).items()]

    parts = [
        [(key, value) for key, value in vars(span._attributes).items() if key != "_lock"],
        fields(span._events),
        fields(span._links),
        (span._events._dq.maxlen, span._links._dq.maxlen, span._events.dropped),
    ]
    return [fields(span), *parts]


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
@pytest.mark.parametrize("ids", [None, Counting, Invalid])
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


def test_a_span_the_sdk_builds_otherwise_is_built_by_the_sdk(monkeypatch: Any) -> None:
    """The span builder is checked against spans the SDK's constructor built: one with
    another field (a release that adds one, say) turns it off, and the SDK builds."""
    from opentelemetry.sdk.trace import _Span

    from lumigo_opentelemetry.instrumentations._leanstart import span_builder

    tracer = TracerProvider().get_tracer("t")
    built = span_builder(tracer)
    assert built is not None
    init = _Span.__init__

    def other(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._another: List[Any] = []

    monkeypatch.setattr(_Span, "__init__", other)
    tracer = TracerProvider().get_tracer("t")
    assert span_builder(tracer) is None
    spans = fast_spans(tracer)
    assert spans._lean is not None and spans._lean.built is None
    span = spans.start_span("s", None, SpanKind.SERVER, dict(START))
    assert span._another == [] and dict(span.attributes) == START


def test_an_attribute_map_made_otherwise_is_made_by_its_constructor(monkeypatch: Any) -> None:
    """An attribute map whose fields are not the ones read (as the API's before 1.45):
    its constructor makes it, the span around it is still built."""
    from opentelemetry.attributes import BoundedAttributes

    from lumigo_opentelemetry.instrumentations._leanstart import span_builder

    init = BoundedAttributes.__init__

    def other(self: Any, *args: Any, **kwargs: Any) -> None:
        self._first = True
        init(self, *args, **kwargs)

    monkeypatch.setattr(BoundedAttributes, "__init__", other)
    tracer = TracerProvider().get_tracer("t")
    built = span_builder(tracer)
    assert built is not None and not built.map_fields
    span = fast_spans(tracer).start_span("s", None, SpanKind.SERVER, dict(START))
    assert span._attributes._first is True and dict(span.attributes) == START


def test_the_span_keeps_its_attributes_when_the_callers_dict_changes() -> None:
    tracer = TracerProvider().get_tracer("t")
    given = dict(START)
    span = fast_spans(tracer).start_span("s", None, SpanKind.SERVER, given)
    given["http.method"] = "POST"
    given["added"] = "x"
    assert dict(span.attributes) == START


def test_a_parent_whose_span_context_read_is_replaced_is_asked() -> None:
    """The current span's context is read from its field only while `get_span_context`
    is the SDK's: one replaced on the span itself is called, as `start_span` calls it."""
    from opentelemetry import context

    provider = TracerProvider()
    server = provider.get_tracer("server").start_span("GET /db", kind=SpanKind.SERVER)
    other = SpanContext(0xABC, 0xDEF, False, TraceFlags(1))
    tracer = provider.get_tracer("opentelemetry.instrumentation.dbapi", "1.0")
    spans = fast_spans(tracer)
    token = context.attach(trace.set_span_in_context(server))
    try:
        plain = spans.start_span("SELECT", None, SpanKind.CLIENT, None)
        server.get_span_context = lambda: other  # type: ignore[method-assign]
        asked = spans.start_span("SELECT", None, SpanKind.CLIENT, None)
        reference = tracer.start_span("SELECT", kind=SpanKind.CLIENT)
    finally:
        context.detach(token)
    assert plain.parent == server._context  # type: ignore[attr-defined]
    assert asked.parent == other == reference.parent
    assert asked.get_span_context().trace_id == 0xABC
