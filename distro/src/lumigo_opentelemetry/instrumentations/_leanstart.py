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
from typing import Any, Dict, Optional

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


class LeanStart:
    """Starts spans as `tracer.start_span` does (see module); made by `lean_start`."""

    def __init__(self, tracer: Any, sampler_layer: type, how: str) -> None:
        from opentelemetry import trace
        from opentelemetry.context import get_current
        from opentelemetry.sdk.trace import Tracer, _Span
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace.propagation import _SPAN_KEY

        from lumigo_opentelemetry.sampling import LumigoSampler

        self.tracer = tracer
        self.lumigo_sampler = LumigoSampler
        self.layer: Any = sampler_layer
        self.how = how
        self.copy = how != PARENT  # 1.41 and 1.42 copy the sampler's attributes
        self.start_span = Tracer.start_span
        self.tracer_type = Tracer
        self.span_type = _Span
        self.api_span = trace.Span
        self.span_types = frozenset({_Span, trace.NonRecordingSpan})
        self.span_context = trace.SpanContext
        self.non_recording = trace.NonRecordingSpan
        self.get_current = get_current
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
        found: Any = (context if context is not None else self.get_current()).get(self.key)
        parent = None
        if found is not None and (
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
        span_context = self.span_context(trace_id, span_id, False, self.flags[flags], trace_state)
        record_end_metrics = tracer._tracer_metrics.start_span(parent, decision)
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


def lean_start(tracer: Any, sampler_layer: type) -> Optional[LeanStart]:
    """A `LeanStart` for `tracer` (the SDK's `Tracer`, whose sampler is a `sampler_layer`)
    when its SDK release's `start_span` is one read; else None."""
    try:
        from opentelemetry.sdk.trace import Tracer
        from opentelemetry.sdk.version import __version__

        how = variant(Tracer.start_span, str(__version__))
        if how is None or type(tracer) is not Tracer:
            return None
        return LeanStart(tracer, sampler_layer, how)
    except Exception:
        logger.debug("lean span start not available", exc_info=True)
        return None
