"""Spans started through the lean server paths' `FastSpans` record what the SDK records.

Each case starts the same span once through the SDK (`tracer.start_span`,
`span.set_attributes`) and once through `_fastspan`, on real SDK tracer providers with
an in-memory exporter, and compares the exported spans: attributes (and their order),
dropped counts, what span processors and samplers saw, limits.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans, set_attributes

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


# --- limits at their exact boundaries, late attributes the fast path must not take ---


def _compare(
    limits: SpanLimits,
    start: Dict[str, Any],
    late: Sequence[Dict[str, Any]] = (),
    unchecked: Optional[Dict[str, Any]] = None,
) -> ReadableSpan:
    """The same span through the SDK and through `_fastspan` (only an exporting processor,
    a sampler that keeps the attributes): exported attributes, their order and the dropped
    count must be the same."""
    out: List[ReadableSpan] = []
    for fast in (False, True):
        provider = TracerProvider(sampler=Recording(), span_limits=limits)
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("opentelemetry.instrumentation.flask")
        if fast:
            spans = fast_spans(tracer)
            span = spans.start_span("s", None, SpanKind.SERVER, dict(start), 1, unchecked)
            for attributes in late:
                set_attributes(span, dict(attributes))
        else:
            span = tracer.start_span(
                "s", kind=SpanKind.SERVER, attributes=dict(start), start_time=1
            )
            for attributes in late:
                span.set_attributes(dict(attributes))
        span.end(2)
        (finished,) = exporter.get_finished_spans()
        out.append(finished)
    sdk, ours = out
    assert list((ours.attributes or {}).items()) == list((sdk.attributes or {}).items())
    assert ours.dropped_attributes == sdk.dropped_attributes
    return ours


def _numbered(count: int, prefix: str = "k") -> Dict[str, Any]:
    return {f"{prefix}{i}": i for i in range(count)}


def test_the_count_limit_at_its_exact_boundary() -> None:
    limits = SpanLimits(max_span_attributes=4)
    for count, dropped in ((3, 0), (4, 0), (5, 1), (7, 3)):
        for unchecked in (None, {}):
            span = _compare(limits, _numbered(count), unchecked=unchecked)
            assert span.dropped_attributes == dropped
            assert len(span.attributes or {}) == min(count, 4)


def test_late_attributes_at_the_count_limit_and_past_it() -> None:
    limits = SpanLimits(max_span_attributes=4)
    for late_count, dropped in ((1, 0), (2, 0), (3, 1)):
        span = _compare(limits, _numbered(2), [_numbered(late_count, "late")])
        assert span.dropped_attributes == dropped
    # a map already full: each new key drops the oldest
    span = _compare(limits, _numbered(4), [{"late": 1}, {"later": 2}])
    assert list(span.attributes or {}) == ["k2", "k3", "late", "later"]
    assert span.dropped_attributes == 2


def test_the_length_limit_at_its_exact_boundary() -> None:
    limits = SpanLimits(max_span_attribute_length=5)
    span = _compare(limits, {"at": "12345", "over": "123456"})
    assert (span.attributes or {})["over"] == "12345"
    span = _compare(limits, {"at": "12345"}, [{"late.at": "abcde"}, {"late.over": "abcdef"}])
    assert dict(span.attributes or {}) == {"at": "12345", "late.at": "abcde", "late.over": "abcde"}


def test_late_values_the_sdk_changes_are_changed() -> None:
    span = _compare(
        SpanLimits(max_span_attribute_length=3),
        {"k": "v"},
        [{"late.list": ["x", "y"]}, {"late.none": None}, {"late.long": "abcd", "late.ok": 1}],
    )
    assert dict(span.attributes or {}) == {
        "k": "v",
        "late.list": ("x", "y"),
        "late.none": None,  # this SDK keeps a None it is given late
        "late.long": "abc",
        "late.ok": 1,
    }
    assert span.dropped_attributes == 0


def test_late_keys_already_set_are_replaced_and_moved_last() -> None:
    span = _compare(SpanLimits(), {"a": 1, "b": 2, "c": 3}, [{"a": 10, "d": 4}, {"b": 20}])
    assert list((span.attributes or {}).items()) == [("c", 3), ("a", 10), ("d", 4), ("b", 20)]


def test_without_any_limit() -> None:
    unset = SpanLimits.UNSET
    limits = SpanLimits(max_span_attributes=unset, max_span_attribute_length=unset)
    long = "x" * 5000
    many = {**_numbered(300), "long": long}
    span = _compare(limits, many, [_numbered(300, "late")], unchecked={"long": long})
    assert len(span.attributes or {}) == 601 and span.dropped_attributes == 0


# --- what the layers pass through: samplers, span processors, other tracers ---


class Hooks(SpanProcessor):
    """A span processor recording each hook it is called with, and shutdown/flush."""

    def __init__(self, calls: Optional[List[Tuple[str, str]]] = None) -> None:
        self.calls: List[Tuple[str, str]] = [] if calls is None else calls

    def on_start(self, span: Any, parent_context: Optional[Context] = None) -> None:
        self.calls.append(("on_start", span.name))

    def _on_ending(self, span: Any) -> None:
        self.calls.append(("_on_ending", span.name))

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("on_end", span.name))

    def shutdown(self) -> None:
        self.calls.append(("shutdown", ""))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(("force_flush", ""))
        return True


def _start_three(tracer: Any, fast: bool) -> None:
    """Three spans started the same way, one of them marked not to be exported."""
    from lumigo_opentelemetry.export.skip import mark_skip_export

    for name in ("one", "skipped", "two"):
        attributes = {"k": name}
        if fast:
            span = fast_spans(tracer).start_span(name, None, SpanKind.SERVER, attributes)
        else:
            span = tracer.start_span(name, kind=SpanKind.SERVER, attributes=attributes)
        if name == "skipped":
            mark_skip_export(span)
        span.end()


def _hook_calls(make: Any) -> List[List[Tuple[str, str]]]:
    """The hook calls `make()` (a provider and its `Hooks`) records through the SDK, then
    through `_fastspan`."""
    out = []
    for fast in (False, True):
        provider, hooks = make()
        _start_three(provider.get_tracer("t"), fast)
        out.append(hooks.calls)
    return out


def test_user_span_processors_see_every_hook() -> None:
    def beside_an_exporter() -> Tuple[TracerProvider, Hooks]:
        provider = TracerProvider()
        hooks = Hooks()
        provider.add_span_processor(hooks)
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        return provider, hooks

    def alone() -> Tuple[TracerProvider, Hooks]:
        provider = TracerProvider()
        hooks = Hooks()
        provider.add_span_processor(hooks)
        return provider, hooks

    def behind_the_skip_filter() -> Tuple[TracerProvider, Hooks]:
        from lumigo_opentelemetry.export.skip import SkipExportFilter

        provider = TracerProvider()
        hooks = Hooks()
        provider.add_span_processor(SkipExportFilter(hooks))
        return provider, hooks

    for make in (beside_an_exporter, alone):
        sdk, ours = _hook_calls(make)
        assert ours == sdk
        assert ("_on_ending", "two") in ours and ("on_end", "skipped") in ours
    sdk, ours = _hook_calls(behind_the_skip_filter)
    assert ours == sdk
    assert ("on_end", "one") in ours and ("on_end", "skipped") not in ours


def test_a_provider_without_span_processors() -> None:
    provider = TracerProvider()
    spans = fast_spans(provider.get_tracer("t"))
    span = spans.start_span("s", None, SpanKind.SERVER, {"k": "v"})
    set_attributes(span, {"late": 1})
    span.end()
    assert dict(span.attributes) == {"k": "v", "late": 1}


class _OwnMulti(SynchronousMultiSpanProcessor):
    """A user's active span processor: the SDK's multi-processor, counting ended spans."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: List[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span.name)
        super().on_end(span)


def test_a_users_own_active_span_processor_is_called() -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from lumigo_opentelemetry.export.skip import SkipExportFilter

    results = []
    for fast in (False, True):
        active = _OwnMulti()
        provider = TracerProvider(active_span_processor=active)
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SkipExportFilter(BatchSpanProcessor(exporter)))
        _start_three(provider.get_tracer("t"), fast)
        provider.force_flush()
        results.append((active.ended, [s.name for s in exporter.get_finished_spans()]))
        provider.shutdown()
    assert results[1] == results[0] == (["one", "skipped", "two"], ["one", "two"])

    # an active processor that is no multi-processor at all
    for fast in (False, True):
        hooks = Hooks()
        _start_three(TracerProvider(active_span_processor=hooks).get_tracer("t"), fast)
        assert [name for hook, name in hooks.calls if hook == "on_end"] == [
            "one",
            "skipped",
            "two",
        ]


def test_the_layers_pass_the_tracers_own_objects_through() -> None:
    """Code reading the tracer's sampler or span processor finds the provider's."""
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    provider = TracerProvider(sampler=TraceIdRatioBased(1.0))
    calls: List[Tuple[str, str]] = []
    provider.add_span_processor(Hooks(calls))
    tracer = provider.get_tracer("t")
    spans = fast_spans(tracer)
    assert spans.enabled
    assert tracer.sampler.get_description() == "TraceIdRatioBased{1.0}"
    assert tracer.sampler.rate == 1.0
    later = Hooks()
    tracer.span_processor.add_span_processor(later)
    spans.start_span("s", None, SpanKind.SERVER, {"k": "v"}).end()
    assert later.calls == [("on_start", "s"), ("_on_ending", "s"), ("on_end", "s")]
    assert tracer.span_processor.force_flush() is True
    assert tracer.span_processor.force_flush(1000) is True
    tracer.span_processor.shutdown()
    assert calls.count(("force_flush", "")) == 2 and calls[-1] == ("shutdown", "")
    assert later.calls[-1] == ("shutdown", "")


class _Delegating:
    """A tracer that is not the SDK's (a user's wrapper around it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.start_span(*args, **kwargs)


class _Slotted:
    """The same, refusing new attributes (so `fast_spans` cannot remember its layers)."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.start_span(*args, **kwargs)


def test_tracers_other_than_the_sdks_take_the_sdk_path() -> None:
    wrappers: Tuple[Any, ...] = (_Delegating, _Slotted)
    for wrapper in wrappers:
        provider, exporter, _ = _pipeline(Recording())
        spans = fast_spans(wrapper(provider.get_tracer("t")))
        assert not spans.enabled and not spans.values_clean({"k": "v"})
        spans.start_span("s", None, SpanKind.SERVER, {"k": "v"}, unchecked={}).end()
        assert dict(exporter.get_finished_spans()[0].attributes or {}) == {
            "k": "v",
            "user.on_start": "yes",
        }


def test_an_sdk_whose_attribute_map_differs_takes_the_sdk_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`FastSpans` checks the SDK's attribute map before relying on it."""
    import opentelemetry.attributes

    class Other:  # an attribute map keeping its items elsewhere
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._items: Dict[str, Any] = {}

    class Refusing:  # one built another way
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise TypeError("another signature")

    for replacement in (Other, Refusing):
        provider, exporter, _ = _pipeline(Recording())
        tracer = provider.get_tracer("t")
        with monkeypatch.context() as patch:
            patch.setattr(opentelemetry.attributes, "BoundedAttributes", replacement)
            spans = fast_spans(tracer)
        assert not spans.enabled
        spans.start_span("s", None, SpanKind.SERVER, {"k": "v"}).end()
        assert dict(exporter.get_finished_spans()[0].attributes or {}) == {
            "k": "v",
            "user.on_start": "yes",
        }


def test_spans_started_the_sdks_way_without_attributes() -> None:
    provider, exporter, _ = _pipeline(Recording({"sampler.added": "x"}))
    tracer = provider.get_tracer("t")
    fast_spans(tracer)
    tracer.start_span("bare").end()
    assert dict(exporter.get_finished_spans()[0].attributes or {}) == {
        "sampler.added": "x",
        "user.on_start": "yes",
    }


def test_a_batch_processor_hook_with_a_body_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SDK release whose batch processor works in `on_start`: the fast path calls it
    for each span, as the SDK does through the skip filter."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from lumigo_opentelemetry.export.skip import SkipExportFilter

    started: List[str] = []

    def on_start(self: Any, span: Any, parent_context: Optional[Context] = None) -> None:
        started.append(span.name)

    monkeypatch.setattr(BatchSpanProcessor, "on_start", on_start)
    runs = []
    for fast in (False, True):
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SkipExportFilter(BatchSpanProcessor(exporter)))
        _start_three(provider.get_tracer("t"), fast)
        provider.force_flush()
        runs.append((list(started), [s.name for s in exporter.get_finished_spans()]))
        started.clear()
        provider.shutdown()
    assert runs[1] == runs[0] == (["one", "skipped", "two"], ["one", "two"])


# --- the distro's own export set-up, to a real OTLP receiver ---


def _received(receiver: OtlpReceiver) -> List[Tuple[str, int, int, List[bytes], int]]:
    """Each span the receiver decoded: name, times, attributes (serialized, in order) and
    the dropped count."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    out = []
    for request in receiver.requests():
        message = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    out.append(
                        (
                            span.name,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            [kv.SerializeToString() for kv in span.attributes],
                            span.dropped_attributes_count,
                        )
                    )
    return out


def _distro_export(receiver: OtlpReceiver, fast: bool) -> Tuple[list, List[Tuple[str, str]]]:
    """Spans through `SkipExportFilter(EncodingBatchSpanProcessor(DeadlineExporter))`, as
    the distro sets it up, with a user's processor added after some spans started."""
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter
    from lumigo_opentelemetry.export.skip import (
        SKIP_EXPORT_ATTRIBUTE,
        SkipExportFilter,
        mark_skip_export,
    )

    receiver.clear()
    config = Config(token="t_fast", endpoint=receiver.url)
    limits = SpanLimits(max_span_attributes=8, max_span_attribute_length=12)
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(
        SkipExportFilter(build_batch_processor(config, build_exporter(config)))
    )
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask")

    def start(name: str, attributes: Dict[str, Any], at: int) -> Any:
        if fast:
            return fast_spans(tracer).start_span(name, None, SpanKind.SERVER, dict(attributes), at)
        return tracer.start_span(
            name, kind=SpanKind.SERVER, attributes=dict(attributes), start_time=at
        )

    def late(span: Any, attributes: Dict[str, Any]) -> None:
        (set_attributes if fast else type(span).set_attributes)(span, dict(attributes))

    kept = start("kept", START, 10)
    late(kept, LATE)  # 8 attributes: the map is full
    late(kept, {"one.more": "x"})
    kept.end(20)
    marked = start("marked", START, 30)
    mark_skip_export(marked)
    marked.end(40)
    start("skip at start", {**START, SKIP_EXPORT_ATTRIBUTE: True}, 50).end(60)
    start("not skipped", {SKIP_EXPORT_ATTRIBUTE: "true"}, 70).end(80)
    open_span = start("open when added", {"k": "a value too long"}, 90)
    hooks = Hooks()
    provider.add_span_processor(hooks)
    open_span.end(100)
    start("after", {"k": "v"}, 110).end(120)
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert hooks.calls[-1] == ("shutdown", "")
    return _received(receiver), hooks.calls


def test_the_distro_export_set_up_receives_what_the_sdk_sends() -> None:
    with OtlpReceiver() as receiver:
        sdk = _distro_export(receiver, False)
        ours = _distro_export(receiver, True)
    assert ours == sdk
    spans, calls = ours
    assert [s[0] for s in spans] == ["kept", "not skipped", "open when added", "after"]
    assert spans[0][4] == 1  # the ninth attribute dropped the oldest
    assert calls == [
        ("_on_ending", "open when added"),
        ("on_end", "open when added"),
        ("on_start", "after"),
        ("_on_ending", "after"),
        ("on_end", "after"),
        ("force_flush", ""),
        ("shutdown", ""),
    ]


#: attributes given to `end_span` as the span ends: clean ones (its lean path), and
#: ones the SDK changes, drops or moves (its general path)
_LATE_CASES: List[Dict[str, Any]] = [
    LATE,
    {},
    {"late.long": "a value far too long"},
    {"http.method": "POST", "late.new": 1},
    {"late.list": ["x", "y"]},
    {"a": 1, "b": 2, "c": 3},  # past the count limit (8): the oldest dropped
]


def _ended_with_late(receiver: OtlpReceiver, fast: bool) -> list:
    """Spans ended with late attributes, under the distro's export set-up: through
    `end_span(span, None, late)`, or the SDK's `set_attributes` then `end`."""
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter
    from lumigo_opentelemetry.export.skip import SkipExportFilter

    receiver.clear()
    config = Config(token="t_fast", endpoint=receiver.url)
    provider = TracerProvider(
        span_limits=SpanLimits(max_span_attributes=8, max_span_attribute_length=12)
    )
    provider.add_span_processor(
        SkipExportFilter(build_batch_processor(config, build_exporter(config)))
    )
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask")
    for at, late in enumerate(_LATE_CASES):
        start = 10 * at + 1
        if fast:
            span = fast_spans(tracer).start_span(f"s{at}", None, SpanKind.SERVER, START, start)
            end_span(span, start + 5, dict(late))
        else:
            span = tracer.start_span(
                f"s{at}", kind=SpanKind.SERVER, attributes=dict(START), start_time=start
            )
            span.set_attributes(dict(late))
            span.end(start + 5)
    ended = tracer.start_span("ended", start_time=100)
    ended.end(105)
    (end_span if fast else lambda span, at, late: span.set_attributes(late))(
        ended, 110, {"after.end": "ignored"}
    )  # an ended span: nothing set, not ended again
    assert provider.force_flush(10_000)
    provider.shutdown()
    return _received(receiver)


def test_late_attributes_given_to_end_span_are_recorded_as_the_sdk_records_them() -> None:
    with OtlpReceiver() as receiver:
        sdk = _ended_with_late(receiver, False)
        ours = _ended_with_late(receiver, True)
    assert len(sdk) == len(_LATE_CASES) + 1
    assert ours == sdk
