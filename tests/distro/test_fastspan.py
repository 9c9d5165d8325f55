"""Spans started through the lean server paths' `FastSpans` record what the SDK records.

Each case starts the same span once through the SDK (`tracer.start_span`,
`span.set_attributes`) and once through `_fastspan`, on real SDK tracer providers with
an in-memory exporter, and compares the exported spans: attributes (and their order),
dropped counts, what span processors and samplers saw, limits.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from lumigo_opentelemetry.instrumentations._fastspan import fast_spans, set_attributes

START = {
    "http.method": "GET",
    "http.target": "/hello",
    "net.host.port": 8000,
    "http.request.headers": '{"accept":"*/*"}',
    "lumigo.flag": True,
    "lumigo.ratio": 0.5,
}
LATE = {"http.status_code": 200, "http.response.body": '{"ok":true}'}


class StartSeen(SpanProcessor):
    """A user's span processor: records the attributes each span has when it starts."""

    def __init__(self) -> None:
        self.seen: List[Dict[str, Any]] = []

    def on_start(self, span: Any, parent_context: Optional[Context] = None) -> None:
        self.seen.append(dict(span.attributes))
        span.set_attribute("user.on_start", "yes")


class Recording(Sampler):
    """A sampler that records what it was given and may add attributes of its own."""

    def __init__(self, extra: Optional[Dict[str, Any]] = None, drop: bool = False) -> None:
        self.given: List[Dict[str, Any]] = []
        self.extra = extra
        self.drop = drop

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        self.given.append(dict(attributes or {}))
        if self.drop:
            return SamplingResult(Decision.DROP)
        merged = {**(attributes or {}), **(self.extra or {})}
        return SamplingResult(Decision.RECORD_AND_SAMPLE, merged)

    def get_description(self) -> str:
        return "Recording"


def _pipeline(
    sampler: Sampler, limits: Optional[SpanLimits] = None
) -> Tuple[TracerProvider, InMemorySpanExporter, StartSeen]:
    provider = TracerProvider(sampler=sampler, span_limits=limits or SpanLimits())
    exporter = InMemorySpanExporter()
    seen = StartSeen()
    provider.add_span_processor(seen)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter, seen


def _run(
    fast: bool,
    start: Dict[str, Any],
    late: Dict[str, Any],
    extra: Optional[Dict[str, Any]] = None,
    drop: bool = False,
    limits: Optional[SpanLimits] = None,
) -> Tuple[List[ReadableSpan], List[Dict[str, Any]], List[Dict[str, Any]]]:
    sampler = Recording(extra, drop)
    provider, exporter, seen = _pipeline(sampler, limits)
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask")
    if fast:
        spans = fast_spans(tracer)
        assert spans.enabled
        span = spans.start_span("GET /hello", None, SpanKind.SERVER, dict(start), 1_000)
        set_attributes(span, dict(late))
    else:
        span = tracer.start_span(
            "GET /hello", kind=SpanKind.SERVER, attributes=dict(start), start_time=1_000
        )
        span.set_attributes(dict(late))
    span.end(2_000)
    return list(exporter.get_finished_spans()), seen.seen, sampler.given


def _same(**case: Any) -> List[ReadableSpan]:
    fast, fast_seen, fast_given = _run(True, **case)
    sdk, sdk_seen, sdk_given = _run(False, **case)
    assert fast_given == sdk_given  # the sampler saw the same attributes
    assert fast_seen == sdk_seen  # so did a span processor's on_start
    assert len(fast) == len(sdk)
    for ours, reference in zip(fast, sdk):
        assert ours.name == reference.name and ours.kind == reference.kind
        assert list((ours.attributes or {}).items()) == list((reference.attributes or {}).items())
        assert ours.dropped_attributes == reference.dropped_attributes
        assert (ours.start_time, ours.end_time) == (reference.start_time, reference.end_time)
    return fast


def test_clean_attributes_are_recorded_as_the_sdk_records_them() -> None:
    spans = _same(start=START, late=LATE)
    assert dict(spans[0].attributes or {}) == {**START, "user.on_start": "yes", **LATE}


def test_samplers_see_the_attributes_and_their_own_are_kept() -> None:
    _same(start=START, late=LATE, extra={"sampler.added": "x"})
    _same(start=START, late=LATE, extra={"http.target": "/changed"})
    assert _same(start=START, late=LATE, drop=True) == []


def test_span_limits_still_apply() -> None:
    limits = SpanLimits(max_span_attributes=4, max_span_attribute_length=5)
    spans = _same(start=START, late=LATE, limits=limits)
    assert spans[0].dropped_attributes > 0
    assert all(len(v) <= 5 for v in (spans[0].attributes or {}).values() if isinstance(v, str))


def test_values_the_sdk_would_change_take_its_path() -> None:
    odd = {**START, "tuple": ("a", "b"), "none": None, "": "empty key", "obj": object()}
    _same(start=odd, late={"late.list": ["x", 1], "http.method": "POST"})


def test_late_attributes_on_an_ended_span_are_ignored() -> None:
    provider, exporter, _ = _pipeline(Recording())
    span = fast_spans(provider.get_tracer("t")).start_span("s", None, SpanKind.SERVER, {})
    span.end()
    set_attributes(span, {"late": 1})
    assert "late" not in (exporter.get_finished_spans()[0].attributes or {})


def test_one_layer_per_tracer() -> None:
    provider, exporter, seen = _pipeline(Recording())
    tracer = provider.get_tracer("t")
    first, second = fast_spans(tracer), fast_spans(tracer)
    assert first is second
    second.start_span("s", None, SpanKind.SERVER, {"k": "v"}).end()
    # a span started the SDK's way on the same tracer is untouched by the layers
    tracer.start_span("plain", attributes={"k": ("a",)}).end()
    spans = exporter.get_finished_spans()
    assert [dict(s.attributes or {}) for s in spans] == [
        {"k": "v", "user.on_start": "yes"},
        {"k": ("a",), "user.on_start": "yes"},
    ]
    assert seen.seen == [{"k": "v"}, {"k": ("a",)}]


def test_the_distro_exporting_processor_alone_is_called_directly() -> None:
    """With only the distro's exporting processor (`SkipExportFilter` around a batch
    processor), its hooks are called without the SDK's layers in between: spans still
    reach the exporter, marked spans do not, and a processor added later sees every
    span from then on."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from lumigo_opentelemetry.export.skip import SkipExportFilter, mark_skip_export

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SkipExportFilter(BatchSpanProcessor(exporter)))
    spans = fast_spans(provider.get_tracer("opentelemetry.instrumentation.flask"))
    spans.start_span("kept", None, SpanKind.SERVER, {"k": "v"}).end()
    skipped = spans.start_span("skipped", None, SpanKind.SERVER, {"k": "v"})
    mark_skip_export(skipped)
    skipped.end()
    seen = StartSeen()
    provider.add_span_processor(seen)
    spans.start_span("later", None, SpanKind.SERVER, {"k": "w"}).end()
    provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["kept", "later"]
    assert seen.seen == [{"k": "w"}]
    provider.shutdown()


def test_attributes_found_clean_before_are_not_checked_again() -> None:
    """`values_clean` gives a verdict a caller keeps; with it only the `unchecked`
    attributes and the count are checked: a long value among them, or too many
    attributes, still take the SDK's path (cut, dropped) as without the verdict."""
    limits = SpanLimits(max_span_attributes=8, max_span_attribute_length=5)
    provider, exporter, _ = _pipeline(Recording(), limits)
    spans = fast_spans(provider.get_tracer("t"))
    known = {"a": "short", "b": 1}
    assert spans.values_clean(known) and not spans.values_clean({"c": "too long"})
    cases = [
        ({**known, "c": "ok"}, {"c": "ok"}),
        ({**known, "c": "too long"}, {"c": "too long"}),
        ({**known, **{f"k{i}": i for i in range(9)}}, {}),
    ]
    for attributes, unchecked in cases:
        spans.start_span("s", None, SpanKind.SERVER, attributes, unchecked=unchecked).end()
    recorded = exporter.get_finished_spans()
    assert dict(recorded[0].attributes or {}) == {
        "a": "short",
        "b": 1,
        "c": "ok",
        "user.on_start": "yes",
    }
    assert (recorded[1].attributes or {})["c"] == "too l"
    assert recorded[2].dropped_attributes > 0
