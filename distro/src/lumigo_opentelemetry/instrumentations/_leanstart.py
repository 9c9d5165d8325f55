"""`Tracer.start_span` in one Python call, for the SDK releases whose `start_span` is known.

The SDK's `Tracer.start_span` takes about twenty Python calls before it builds the span
(the current span's lookup, the id generator, the enum checks of the sampling decision,
the trace flags, the span context's validation). `LeanStart.start` does the same steps
in the same order with the same objects, and builds the span with the SDK's own `_Span`
constructor and `start` (so the span, its limits and every span processor's `on_start`
are the SDK's): the sampler the tracer has decides, with the same arguments (the
distro's `LumigoSampler` over the SDK's static samplers, with no endpoint filter, decides
by the parent alone: its decision is taken here, from the parent already found, as it
takes it, without its call and `SamplingResult`); the id
generator makes the ids (the default one's are drawn as it draws them, from
`random.getrandbits`); the span's trace flags, trace state, parent and attributes are
the ones `start_span` gives.

Which steps `start_span` takes changed between releases (the random-trace-id flag came
in 1.42 and took the parent's flag in 1.43), so it is used only for the releases read
(1.41 to 1.45), recognised by the release and by the names their `start_span` uses:
any other SDK, a tracer whose `start_span` was replaced, a disabled tracer or a parent
that is not a `SpanContext` get the SDK's own `start_span`.
"""

from __future__ import annotations

import logging
import random
from types import MethodType
from typing import Any, Dict, FrozenSet, Optional, Tuple

logger = logging.getLogger("lumigo-opentelemetry")

#: names `Tracer.start_span` uses in every release read (its code's `co_names`)
_NAMES = frozenset(
    {
        "DEFAULT",
        "NonRecordingSpan",
        "SAMPLED",
        "SpanContext",
        "TraceFlags",
        "TypeError",
        "_Span",
        "_instrumentation_scope",
        "_is_enabled",
        "_span_limits",
        "_tracer_metrics",
        "attributes",
        "decision",
        "generate_span_id",
        "generate_trace_id",
        "get_current_span",
        "get_span_context",
        "id_generator",
        "instrumentation_info",
        "is_recording",
        "is_sampled",
        "is_valid",
        "isinstance",
        "resource",
        "sampler",
        "should_sample",
        "span_processor",
        "start",
        "start_span",
        "trace_api",
        "trace_id",
        "trace_state",
    }
)
#: the random-trace-id flag: never (1.41); when the generator's trace ids are random
#: (1.42); for a root span when they are, else the parent's flag (1.43 to 1.45)
NEVER, GENERATOR, PARENT = "never", "generator", "parent"
_VARIANTS = {
    _NAMES | {"copy"}: NEVER,
    _NAMES | {"copy", "RANDOM_TRACE_ID", "is_trace_id_random"}: GENERATOR,
    _NAMES | {"RANDOM_TRACE_ID", "is_trace_id_random", "random_trace_id", "trace_flags"}: PARENT,
}
_RELEASES = ("1.41.", "1.42.", "1.43.", "1.44.", "1.45.")
#: `Span.__init__`'s parameters (positional, then keyword-only) in those releases
_SPAN_PARAMETERS = (
    "self name context parent sampler trace_config resource attributes events links kind "
    "span_processor instrumentation_info record_exception set_status_on_exception limits "
    "instrumentation_scope | record_end_metrics"
)


def _parameters(function: Any) -> str:
    """A function's parameter names: positional ones, then `|`, then keyword-only ones."""
    import inspect

    parameters = inspect.signature(function).parameters.values()
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
    return " ".join([*positional, "|", *keyword])


def variant(start_span: Any, release: str) -> Optional[str]:
    """How the random-trace-id flag is set by this `start_span` of this SDK release;
    None when it is not one read."""
    code = getattr(start_span, "__code__", None)
    if code is None or not release.startswith(_RELEASES):
        return None
    return _VARIANTS.get(frozenset(code.co_names))


#: the names `Span.start` uses (it sets the start time under the lock, then `on_start`)
_START = frozenset(
    {"_lock", "_span_processor", "_start_time", "logger", "on_start", "time_ns", "warning"}
)


class SpanBuilder:
    """Builds a started `_Span` as its constructor and `start` build one (for a span
    without events or links), in one Python call: the same fields in the same order
    (set one by one: the objects keep the interpreter's compact attribute layout) on new
    objects of the same classes. Made by `span_builder`, which checks it against spans
    the constructor built. A span only the distro's exporting processor sees may be
    built without its event and link lists, made when first read (`_lazylists`)."""

    def __init__(self, limits: Any, status: Any) -> None:
        import threading
        from collections import deque

        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.trace import _Span
        from opentelemetry.sdk.util import BoundedList

        self.new: Any = object.__new__
        self.limits = limits
        self.status = status  # the default status every span starts with
        self.span_type: Any = _Span
        self.map_type: Any = BoundedAttributes
        self.list_type: Any = BoundedList
        self.lock = threading.Lock
        self.deque = deque
        #: whether the attribute map is made field by field (its layout in the releases
        #: read from 1.45 on), else by its constructor
        self.map_fields = True
        #: whether `build(lazy=True)` may leave the event and link lists to be made on
        #: their first read (`_lazylists`: checked by `span_builder`)
        self.lazy_lists = False

    def attributes(self, store: Dict[str, Any]) -> Any:
        """The span's attribute map, as the constructor makes it for the tracer's limits,
        holding `store` (attributes found clean, the caller's no more) as its dict."""
        limits = self.limits
        if not self.map_fields:
            made = self.map_type(
                limits.max_span_attributes,
                None,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
            made._dict = store
            return made
        made = self.new(self.map_type)
        made._dict = store
        made.maxlen = limits.max_span_attributes
        made.dropped = 0
        made.max_value_len = limits.max_span_attribute_length
        made._lock = self.lock()
        made._immutable = False
        return made

    def build(
        self,
        tracer: Any,
        name: str,
        span_context: Any,
        parent: Any,
        sampler: Any,
        attributes: Any,
        kind: Any,
        record_end_metrics: Any,
        start_time: int,
        lazy: bool = False,
    ) -> Any:
        """The span `tracer.start_span` builds and starts (before its processor's
        `on_start`), with `attributes` as its attribute map; a `dict` given is the store
        of a map made by `attributes(store)`). `lazy` (when `lazy_lists`): the event and
        link lists are made when first read (`_lazylists`)."""
        limits = self.limits
        new = self.new
        if type(attributes) is dict:
            attributes = self.attributes(attributes)
        span = new(self.span_type)
        span._name = name
        span._context = span_context
        span._kind = kind
        span._instrumentation_info = tracer.instrumentation_info
        span._instrumentation_scope = tracer._instrumentation_scope
        span._parent = parent
        span._start_time = start_time
        span._end_time = None
        span._attributes = attributes
        if not lazy or not self.lazy_lists:
            made = new(self.list_type)  # `BoundedList(limits.max_events)`
            made.dropped = 0
            made._dq = self.deque((), limits.max_events)
            made._lock = self.lock()
            span._events = made
            made = new(self.list_type)  # `BoundedList(limits.max_links)`
            made.dropped = 0
            made._dq = self.deque((), limits.max_links)
            made._lock = self.lock()
            span._links = made
            lazy = False
        span._resource = tracer.resource
        span._status = self.status
        span._sampler = sampler
        span._trace_config = None
        span._record_exception = True
        span._set_status_on_exception = True
        span._span_processor = tracer.span_processor
        span._limits = limits
        span._lock = self.lock()
        span._record_end_metrics = record_end_metrics
        if lazy:
            span._lumigo_lists_unmade = True  # (`LISTS_UNMADE`)
        return span


def _shape(value: Any, depth: int = 0) -> Any:
    """What `span_builder` compares: an object's fields (names in order, classes, and
    values other than locks), its parts' the same way."""
    fields = getattr(value, "__dict__", None)
    if fields is None or depth > 1:
        if type(value).__name__ == "deque":
            return ("deque", list(value), value.maxlen)
        if "lock" in type(value).__name__.lower():
            return type(value)
        return (type(value), value)
    return (type(value), [(key, _shape(item, depth + 1)) for key, item in fields.items()])


def span_builder(tracer: Any) -> Optional[SpanBuilder]:
    """A `SpanBuilder` when what it builds is what `_Span(...)` then `start` build on this
    SDK (checked on spans of `tracer`'s, not started through its processor); else None."""
    try:
        from opentelemetry.sdk.trace import ReadableSpan, Span, _Span
        from opentelemetry.trace import SpanContext, SpanKind

        if _Span.start is not Span.start or frozenset(Span.start.__code__.co_names) != _START:
            return None
        status = (ReadableSpan.__init__.__kwdefaults__ or {}).get("status") or next(
            (d for d in ReadableSpan.__init__.__defaults__ or () if type(d).__name__ == "Status"),
            None,
        )  # `status=Status(StatusCode.UNSET)`: the default object every span starts with
        context = SpanContext(1, 2, False)

        def probe(attributes: Any) -> Any:
            made = _Span(
                name="probe",
                context=context,
                parent=None,
                sampler=tracer.sampler,
                resource=tracer.resource,
                attributes=attributes,
                span_processor=tracer.span_processor,
                kind=SpanKind.SERVER,
                links=(),
                instrumentation_info=tracer.instrumentation_info,
                record_exception=True,
                set_status_on_exception=True,
                limits=tracer._span_limits,
                instrumentation_scope=tracer._instrumentation_scope,
                record_end_metrics=None,
            )
            made._start_time = 5  # what `start` does before `on_start` (not called here)
            return made

        builder = SpanBuilder(tracer._span_limits, status)
        theirs = _shape(probe({"a": "b"}))
        for fields in (True, False):
            builder.map_fields = fields
            ours = builder.build(
                tracer, "probe", context, None, tracer.sampler,
                {"a": "b"}, SpanKind.SERVER, None, 5,
            )  # fmt: skip
            if _shape(ours) == theirs:
                builder.lazy_lists = _lazy_lists(builder, tracer, context, theirs)
                return builder
        logger.debug("lean span build not used: the SDK builds its spans otherwise")
        return None
    except Exception:
        logger.debug("lean span build not available", exc_info=True)
        return None


def _lazy_lists(builder: SpanBuilder, tracer: Any, context: Any, theirs: Any) -> bool:
    """Whether a span `builder` builds without its event and link lists (`_lazylists`
    installed on its class) has, once they are read, the fields the constructor's has."""
    from opentelemetry.trace import SpanKind

    from lumigo_opentelemetry.export.encoder import LISTS_UNMADE
    from lumigo_opentelemetry.instrumentations import _lazylists

    if LISTS_UNMADE != "_lumigo_lists_unmade" or not _lazylists.install(builder.span_type):
        return False
    builder.lazy_lists = True
    try:
        ours = builder.build(
            tracer, "probe", context, None, tracer.sampler,
            {"a": "b"}, SpanKind.SERVER, None, 5, True,
        )  # fmt: skip
        unmade = getattr(ours, LISTS_UNMADE, None) is True
        made = (ours._events, ours._links)  # made on this first read
        after = getattr(ours, LISTS_UNMADE, None)
        kind, fields = _shape(ours)
        rest = dict(fields)
        rest.pop(LISTS_UNMADE, None)
        return (
            unmade
            and after is False
            and type(made[0]) is builder.list_type
            and made[0] is ours._events  # kept: the same lists read again
            and made[1] is ours._links
            and (kind, rest) == (theirs[0], dict(theirs[1]))
        )
    finally:
        builder.lazy_lists = False


def no_metrics() -> Tuple[Any, Any]:
    """(the SDK's `NoOpTracerMetrics`, the `noop` its `start_span` returns) when that is
    all its `start_span` does and `noop` does nothing; else (None, None)."""
    try:
        from opentelemetry.sdk.trace import _tracer_metrics

        kind, noop = _tracer_metrics.NoOpTracerMetrics, _tracer_metrics.noop
        empty = noop.__code__.co_code in _empty_bodies() and not noop.__code__.co_names
        if kind.start_span.__code__.co_names == ("noop",) and empty:
            return kind, noop
    except Exception:
        logger.debug("the SDK's no-op span metrics not recognised", exc_info=True)
    return None, None


def _empty_bodies() -> FrozenSet[bytes]:
    """The bytecode of a function that does nothing (with a docstring or not)."""

    def bare() -> None:
        pass

    def documented() -> None:
        """A docstring."""

    return frozenset({bare.__code__.co_code, documented.__code__.co_code})


#: the names `SpanContext.__new__` uses (its defaults, the ids' bounds, `tuple.__new__`)
_CONTEXT = frozenset(
    {
        "DEFAULT_TRACE_OPTIONS",
        "DEFAULT_TRACE_STATE",
        "INVALID_SPAN_ID",
        "INVALID_TRACE_ID",
        "_SPAN_ID_MAX_VALUE",
        "_TRACE_ID_MAX_VALUE",
        "__new__",
        "tuple",
    }
)


class LeanStart:
    """Starts spans as `tracer.start_span` does (see module); made by `lean_start`."""

    def __init__(
        self, tracer: Any, sampler_layer: type, how: str, processor_layer: Optional[type] = None
    ) -> None:
        from opentelemetry import trace
        from opentelemetry.context import get_current
        from opentelemetry.sdk import trace as sdk
        from opentelemetry.sdk.trace import Tracer, _Span
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace import span
        from opentelemetry.trace.propagation import _SPAN_KEY

        from lumigo_opentelemetry.sampling import LumigoSampler

        self.tracer = tracer
        self.lumigo_sampler = LumigoSampler
        self.layer: Any = sampler_layer
        self.how = how
        self.copy = how != PARENT  # 1.41 and 1.42 copy the sampler's attributes
        self.start_span = Tracer.start_span
        self.tracer_type = Tracer
        self.span_type: Any = _Span
        self.api_span = trace.Span
        self.span_types = frozenset({_Span, trace.NonRecordingSpan})
        self.method_type = MethodType
        #: `_Span.get_span_context` when it returns the span's `_context` as it is
        self.read_context: Any = _reads_context(_Span)
        self.span_context = trace.SpanContext
        self.non_recording = trace.NonRecordingSpan
        self.get_current = get_current
        # the API's default runtime context's variable, read while it is the runtime context
        # (as `_otel_context.CurrentContext` reads it)
        from opentelemetry import context as context_api
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        self.context_api: Any = context_api
        runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
        variable = getattr(runtime, "_current_context", None)
        if type(runtime) is not ContextVarsRuntimeContext or variable is None:
            runtime = variable = None
        self.runtime: Any = runtime
        self.variable: Any = variable
        self.key = _SPAN_KEY
        self.random_ids = RandomIdGenerator
        self.invalid_trace_id = trace.INVALID_TRACE_ID
        self.invalid_span_id = trace.INVALID_SPAN_ID
        self.sample = Decision.RECORD_AND_SAMPLE
        self.record = Decision.RECORD_ONLY
        self.decision = Decision
        flags = trace.TraceFlags
        self.random_flag = int(getattr(flags, "RANDOM_TRACE_ID", 0))
        self.positional = _parameters(_Span.__init__) == _SPAN_PARAMETERS
        self.flags: Dict[int, Any] = {
            value: flags(value) for value in (0, 1, self.random_flag, 1 | self.random_flag)
        }
        self.tuple_new = tuple.__new__
        self.default_state = span.DEFAULT_TRACE_STATE
        self.max_trace_id = span._TRACE_ID_MAX_VALUE
        self.max_span_id = span._SPAN_ID_MAX_VALUE
        #: whether ids the default generator's way draws (non-zero, 128 and 64 bits) and a
        #: valid parent's trace id are always within `SpanContext`'s bounds
        self.random_valid = (
            self.max_trace_id == (1 << 128) - 1 and self.max_span_id == (1 << 64) - 1
        )
        self.context_fields = frozenset(trace.SpanContext.__new__.__code__.co_names) == _CONTEXT
        self.sdk: Any = sdk  # its `time_ns`, looked up per call as `start` does
        #: `_fastspan._ProcessorLayer`, whose `started` is its `on_start` for a span built here
        self.processor_layer: Any = processor_layer
        self.built = span_builder(tracer) if self.positional else None
        self.no_metrics, self.noop = no_metrics()

    def start(
        self,
        name: str,
        context: Any,
        kind: Any,
        attributes: Optional[Dict[str, Any]],
        start_time: Optional[int],
    ) -> Any:
        """`tracer.start_span(name, context, kind, attributes, start_time=start_time)`
        with the attributes put in the span's map unchecked (the caller has found them
        clean), unless the sampler changes them; None (nothing done yet) when the SDK's
        own `start_span` must do it."""
        tracer = self.tracer
        sampler: Any = tracer.sampler
        if (
            type(sampler) is not self.layer
            or type(tracer).start_span is not self.start_span
            or "start_span" in tracer.__dict__
            or not tracer._tracer_config.is_enabled
        ):
            return None
        current = context
        if current is None:  # `get_current()`: the context variable read directly
            runtime = self.runtime
            if (
                runtime is not None
                and getattr(self.context_api, "_RUNTIME_CONTEXT", None) is runtime
            ):
                current = self.variable.get()
            else:
                current = self.get_current()
        found: Any = current.get(self.key)
        parent = None
        if type(found) is self.span_type:  # the SDK's span: its `get_span_context` read
            read: Any = found.get_span_context  # (a bound method, unless replaced)
            if type(read) is self.method_type and read.__func__ is self.read_context:
                parent = found._context
            else:
                parent = read()
        elif found is not None and (
            type(found) in self.span_types or isinstance(found, self.api_span)
        ):  # (an ABC's isinstance runs Python code: the SDK's own types first)
            parent = found.get_span_context()
        if parent is not None:
            if type(parent) is not self.span_context:
                return None
            if not parent[5]:  # (trace_id, span_id, is_remote, flags, state, is_valid)
                parent = None
        ids = tracer.id_generator
        random_ids = type(ids) is self.random_ids
        if parent is not None:
            trace_id = parent[0]
        elif random_ids:
            trace_id = random.getrandbits(128)
            while trace_id == self.invalid_trace_id:
                trace_id = random.getrandbits(128)
        else:
            trace_id = ids.generate_trace_id()
        inner = sampler.inner
        decisions: Any = (
            inner._decisions if type(inner) is self.lumigo_sampler and not inner._filters else None
        )
        if decisions is not None:  # its decision by parent alone, as it takes it
            if parent is None:
                decision, trace_state = decisions[0], None
            else:  # (1 if remote else 3) + (0 if sampled else 1)
                decision = decisions[(1 if parent[2] else 3) + (0 if parent[3] & 1 else 1)]
                trace_state = parent[4]
            result: Any = None  # the attributes given, unchanged
        else:
            result = inner.should_sample(context, trace_id, name, kind, attributes, ())
            decision, trace_state = result.decision, result.trace_state
        if type(decision) is self.decision:
            sampled = decision is self.sample
            recording = sampled or decision is self.record
        else:
            sampled = bool(decision.is_sampled())
            recording = bool(decision.is_recording())
        flags = 1 if sampled else 0
        how = self.how
        if how is not NEVER:
            if how is GENERATOR or parent is None:
                random_trace_id = random_ids or ids.is_trace_id_random()
            else:
                random_trace_id = parent[3] & self.random_flag
            if random_trace_id:
                flags |= self.random_flag
        if random_ids:
            span_id = random.getrandbits(64)
            while span_id == self.invalid_span_id:
                span_id = random.getrandbits(64)
        else:
            span_id = ids.generate_span_id()
        if self.context_fields:  # `SpanContext(...)`'s tuple, without its call
            span_context = self.tuple_new(
                self.span_context,
                (
                    trace_id,
                    span_id,
                    False,
                    self.flags[flags],
                    self.default_state if trace_state is None else trace_state,
                    (random_ids and self.random_valid)  # (drawn non-zero within bounds)
                    or (0 < trace_id <= self.max_trace_id and 0 < span_id <= self.max_span_id),
                ),
            )
        else:
            span_context = self.span_context(
                trace_id, span_id, False, self.flags[flags], trace_state
            )
        metrics = tracer._tracer_metrics
        if type(metrics) is self.no_metrics:  # its `start_span` returns `noop`
            record_end_metrics = self.noop
        else:
            record_end_metrics = metrics.start_span(parent, decision)
        if not recording:
            return self.non_recording(context=span_context)
        fill = None
        if result is None:  # the sampler's own decision: the attributes given, unchanged
            if attributes:
                fill, kept = attributes, None  # put in unchecked
            else:
                kept = {}
        else:
            kept = result.attributes
            if (
                attributes
                and kept is not None
                and len(kept) == len(attributes)
                and kept == attributes
            ):
                fill, kept = attributes, None  # unchanged by the sampler: put in unchecked
            elif self.copy:
                kept = kept.copy()
        built = self.built
        if built is not None and tracer._span_limits is built.limits:
            # the constructor's and `start`'s steps, without their calls
            if fill is not None:
                bounded = fill.copy()  # (its map made by `build`)
                fill = None
            elif kept:  # (the sampler's own: the SDK's map checks them)
                limits = built.limits
                bounded = built.map_type(
                    limits.max_span_attributes,
                    kept,
                    immutable=False,
                    max_value_len=limits.max_span_attribute_length,
                )
            else:
                bounded = {}
            processor = tracer.span_processor
            started = True  # whether its `on_start` is to be called
            lone = False  # whether only the distro's encoding processor sees the span
            if type(processor) is self.processor_layer:
                hot = processor.hot  # (its fields: see `_fastspan._Hot`)
                known = hot.known  # read before the plan: `_plan` sets it after
                plan = hot.made
                if (
                    plan is not None
                    and plan[0] is None
                    and getattr(hot.inner, "_span_processors", None) is known
                ):  # the lone exporting processor, whose `on_start` does nothing
                    started = False
                    lone = plan[4]
            span = built.build(
                tracer, name, span_context, parent, sampler, bounded, kind, record_end_metrics,
                start_time if start_time is not None else self.sdk.time_ns(), lone,
            )  # fmt: skip
            if started:
                processor = span._span_processor
                if type(processor) is self.processor_layer:
                    processor.started(span, context)
                else:
                    processor.on_start(span, parent_context=context)
            return span
        if self.positional:  # the same arguments, without a dict of 15 keywords
            span = self.span_type(
                name,
                span_context,
                parent,
                sampler,
                None,  # trace_config
                tracer.resource,
                kept,
                None,  # events
                (),  # links
                kind,
                tracer.span_processor,
                tracer.instrumentation_info,
                True,  # record_exception
                True,  # set_status_on_exception
                tracer._span_limits,
                tracer._instrumentation_scope,
                record_end_metrics=record_end_metrics,
            )
        else:
            span = self._build(name, span_context, parent, sampler, kept, kind, record_end_metrics)
        if fill is not None:
            store = getattr(span._attributes, "_dict", None)
            if type(store) is dict and not store:
                store.update(fill)
            else:  # not the attribute map we know: its own (checking) way
                span.set_attributes(fill)
        span.start(start_time=start_time, parent_context=context)
        return span

    def _build(
        self,
        name: str,
        span_context: Any,
        parent: Any,
        sampler: Any,
        kept: Any,
        kind: Any,
        record_end_metrics: Any,
    ) -> Any:
        """The span, built as `start_span` builds it."""
        tracer = self.tracer
        return self.span_type(
            name=name,
            context=span_context,
            parent=parent,
            sampler=sampler,
            resource=tracer.resource,
            attributes=kept,
            span_processor=tracer.span_processor,
            kind=kind,
            links=(),
            instrumentation_info=tracer.instrumentation_info,
            record_exception=True,
            set_status_on_exception=True,
            limits=tracer._span_limits,
            instrumentation_scope=tracer._instrumentation_scope,
            record_end_metrics=record_end_metrics,
        )


def _reads_context(span_type: Any) -> Any:
    """`span_type.get_span_context` when all it does is return `self._context` (through
    `typing.cast`, as the SDK's does); else None."""
    method: Any = getattr(span_type, "get_span_context", None)
    code = getattr(method, "__code__", None)
    if (
        code is None
        or set(code.co_names) - {"typing", "cast", "trace_api", "SpanContext", "_context"}
        or "_context" not in code.co_names
    ):
        return None
    try:
        import typing

        from opentelemetry.trace import SpanContext

        probe = object.__new__(span_type)
        context = SpanContext(1, 2, False)
        probe._context = context
        if method(probe) is context and typing.cast(Any, context) is context:
            return method
    except Exception:
        logger.debug("the span context read through get_span_context", exc_info=True)
    return None


def lean_start(
    tracer: Any, sampler_layer: type, processor_layer: Optional[type] = None
) -> Optional[LeanStart]:
    """A `LeanStart` for `tracer` (the SDK's `Tracer`, whose sampler is a `sampler_layer`,
    its span processor maybe a `processor_layer`)
    when its SDK release's `start_span` is one read; else None."""
    try:
        from opentelemetry.sdk.trace import Tracer
        from opentelemetry.sdk.version import __version__

        how = variant(Tracer.start_span, str(__version__))
        if how is None or type(tracer) is not Tracer:
            return None
        return LeanStart(tracer, sampler_layer, how, processor_layer)
    except Exception:
        logger.debug("lean span start not available", exc_info=True)
        return None
