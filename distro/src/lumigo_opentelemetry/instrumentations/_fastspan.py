"""Server spans whose attributes are already clean, without the SDK re-checking each one.

The SDK cleans every attribute it is given (type checks, string truncation, count limit)
one call per value: for a server span's ~17 start attributes that costs as much as the
span itself. Our server-span paths build plain `str`/`int`/`bool`/`float` values under
an explicit check (`clean`: non-empty string keys, strings within the span limits, no
more attributes than the count limit), so for them the check can be skipped without a
change in what is recorded:

- `FastSpans(tracer)` puts two pass-through layers on *our own* SDK tracer: its sampler
  and its span processor. For a span started through `FastSpans.start_span` with clean
  attributes, the sampler layer gives the attributes to the real sampler (it sees them
  as usual) and, when the sampler keeps them unchanged, lets the SDK build the span
  without them; the processor layer puts them on the span before any span processor's
  `on_start` runs. Spans started any other way (or with attributes that are not clean,
  or a sampler that changes them) go through the SDK untouched.
- `set_attributes(span, attributes)`: the same for the attributes set when a request
  ends (new keys only, within the limits), else `span.set_attributes`.

Anything other than the SDK's own tracer, span and attribute map: the SDK path.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Mapping, Optional

logger = logging.getLogger("lumigo-opentelemetry")

_STR = frozenset({str})
_CLEAN_VALUES = frozenset({str, bool, int, float})


def clean(
    attributes: Mapping[str, Any], max_count: Optional[int], max_length: Optional[int]
) -> bool:
    """Whether the SDK would record `attributes` exactly as given."""
    if max_count is not None and len(attributes) > max_count:
        return False
    values = attributes.values()
    # type checks in C: str keys (none empty), str/bool/int/float values
    if (
        not _STR.issuperset(map(type, attributes))
        or "" in attributes
        or not _CLEAN_VALUES.issuperset(map(type, values))
    ):
        return False
    if max_length is not None:
        for value in values:
            if type(value) is str and len(value) > max_length:
                return False
    return True


class _Pending(threading.local):
    attributes: Optional[Dict[str, Any]] = None  # given to the sampler
    fill: Optional[Dict[str, Any]] = None  # to put on the span before `on_start`


class _SamplerLayer:
    """Gives a pending span's attributes to the real sampler; when it keeps them
    unchanged, the SDK gets none to re-check (the processor layer adds them)."""

    def __init__(self, inner: Any, pending: _Pending) -> None:
        self.inner = inner
        self.pending = pending

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> Any:
        pending = self.pending
        given = pending.attributes
        if given is None or attributes is not None:
            return self.inner.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        pending.attributes = None
        result = self.inner.should_sample(
            parent_context, trace_id, name, kind, given, links, trace_state
        )
        kept = result.attributes
        if kept is None or len(kept) != len(given) or kept != given:
            return result  # the sampler's own attributes: the SDK records (and checks) them
        from opentelemetry.sdk.trace.sampling import SamplingResult

        pending.fill = given
        return SamplingResult(result.decision, None, result.trace_state)

    def get_description(self) -> str:
        return str(self.inner.get_description())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _ProcessorLayer:
    """Puts a pending span's attributes on it, then runs the real span processors."""

    def __init__(self, inner: Any, pending: _Pending) -> None:
        self.inner = inner
        self.pending = pending

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pending = self.pending
        fill = pending.fill
        if fill is not None:
            pending.fill = None
            store = getattr(getattr(span, "_attributes", None), "_dict", None)
            if type(store) is dict and not store:
                store.update(fill)
            else:  # not the SDK span we know: its own (checking) way
                span.set_attributes(fill)
        self.inner.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Any) -> None:
        self.inner._on_ending(span)

    def on_end(self, span: Any) -> None:
        self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def fast_spans(tracer: Any) -> FastSpans:
    """The `FastSpans` of `tracer` (one per tracer, however many apps share it)."""
    known = getattr(tracer, "_lumigo_fast_spans", None)
    if isinstance(known, FastSpans):
        return known
    made = FastSpans(tracer)
    try:
        tracer._lumigo_fast_spans = made
    except Exception:
        made.enabled = False
    return made


class FastSpans:
    """Starts spans on `tracer` (one of ours), with clean attributes cheaply; made
    through `fast_spans`."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self._pending = _Pending()
        self.max_count: Optional[int] = None
        self.max_length: Optional[int] = None
        self.enabled = False
        try:
            self.enabled = self._install()
        except Exception:
            logger.debug("fast span start not installed", exc_info=True)

    def _install(self) -> bool:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.trace import Tracer

        tracer: Any = self.tracer
        if type(tracer) is not Tracer or isinstance(tracer.sampler, _SamplerLayer):
            return False
        limits = tracer._span_limits
        self.max_count = limits.max_span_attributes
        self.max_length = limits.max_span_attribute_length
        # the attribute map a span is built with: an empty BoundedAttributes with `_dict`
        probe = BoundedAttributes(self.max_count, None, immutable=False)
        if type(getattr(probe, "_dict", None)) is not dict:
            return False
        tracer.sampler = _SamplerLayer(tracer.sampler, self._pending)  # type: ignore[assignment]
        tracer.span_processor = _ProcessorLayer(  # type: ignore[assignment]
            tracer.span_processor, self._pending
        )
        return True

    def start_span(
        self,
        name: str,
        context: Any,
        kind: Any,
        attributes: Dict[str, Any],
        start_time: Optional[int] = None,
    ) -> Any:
        """`tracer.start_span(name, context, kind, attributes, start_time=...)`."""
        tracer = self.tracer
        if not self.enabled or not clean(attributes, self.max_count, self.max_length):
            return tracer.start_span(
                name, context=context, kind=kind, attributes=attributes, start_time=start_time
            )
        pending = self._pending
        pending.attributes = attributes
        try:
            return tracer.start_span(name, context=context, kind=kind, start_time=start_time)
        finally:
            pending.attributes = None
            pending.fill = None


def set_attributes(span: Any, attributes: Dict[str, Any]) -> None:
    """`span.set_attributes(attributes)`; new, clean keys go straight into the span's map."""
    bounded: Any = getattr(span, "_attributes", None)
    store = getattr(bounded, "_dict", None)
    if (
        type(store) is not dict
        or getattr(span, "_end_time", 0) is not None
        or getattr(bounded, "_immutable", True)
        or not clean(attributes, None, getattr(bounded, "max_value_len", 0))
    ):
        span.set_attributes(attributes)
        return
    maxlen = getattr(bounded, "maxlen", 0)
    with span._lock, bounded._lock:
        if (
            span._end_time is None
            and not bounded._immutable
            and (maxlen is None or len(store) + len(attributes) <= maxlen)
            and store.keys().isdisjoint(attributes)
        ):
            store.update(attributes)
            return
    span.set_attributes(attributes)
