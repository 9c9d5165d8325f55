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
  or a sampler that changes them) go through the SDK untouched. When the SDK's span
  processors are just the distro's exporting one, the processor layer calls its hooks
  directly (the SDK's multi-processor and the export filter, a call each per hook,
  are done in the layer; hooks with an empty body are not called).
- `end_span(span, late=...)`: `set_attributes(span, late)` then `span.end()`, in one call
  when the span goes only to the distro's exporting processor (`_leanend`).
- `set_attributes(span, attributes)`: the same for the attributes set when a request
  ends (new keys only, within the limits), else `span.set_attributes`.

Anything other than the SDK's own tracer, span and attribute map: the SDK path.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

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
        pending.fill = given
        return _sdk["SamplingResult"](result.decision, None, result.trace_state)

    def get_description(self) -> str:
        return str(self.inner.get_description())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


#: what a span processor's hooks are when there is just the distro's own exporting one:
#: (on_start, _on_ending, on_end, where None is a method that does nothing; the processor;
#: whether it is the distro's `EncodingBatchSpanProcessor`)
_Plan = Tuple[
    Optional[Callable[..., Any]], Optional[Callable[..., Any]], Callable[..., Any], Any, bool
]


class _Hot:
    """A processor layer's fields its per-span methods read: a class with `__getattr__`
    (the layer's pass-through) gets no specialised attribute reads, a plain one does."""

    __slots__ = ("inner", "known", "lean_end", "made")
    inner: Any
    known: Any  # the processors tuple `_plan` was made for
    lean_end: Any
    made: Optional[_Plan]


class _ProcessorLayer:
    """Puts a pending span's attributes on it, then runs the real span processors.

    When the SDK's processors are just the distro's exporting one (`SkipExportFilter`
    around a `BatchSpanProcessor`, the usual set-up), its hooks are called directly:
    the multi-processor's and the filter's layers (a call each per hook) are done here
    with the same effect, and hooks that do nothing are not called."""

    def __init__(self, inner: Any, pending: _Pending) -> None:
        hot = _Hot()
        hot.inner = inner
        hot.known = _NOTHING
        hot.made = None
        hot.lean_end = None
        self.hot = hot
        self.pending = pending

    # the fields are kept on `hot` (see `_Hot`); these read and set them

    @property
    def inner(self) -> Any:
        return self.hot.inner

    @property
    def lean_end(self) -> Any:
        """A `LeanEnd`, for the SDK releases it knows (None: `span.end` ends spans)."""
        return self.hot.lean_end

    @lean_end.setter
    def lean_end(self, value: Any) -> None:
        self.hot.lean_end = value

    def _plan(self) -> Optional[_Plan]:
        hot = self.hot
        processors = getattr(hot.inner, "_span_processors", None)
        if processors is not hot.known:
            hot.made = _lone_exporter(hot.inner, processors)
            hot.known = processors
        return hot.made

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
        self.started(span, parent_context)

    def started(self, span: Any, parent_context: Any) -> None:
        """`on_start` for a span built with its attributes (no pending ones)."""
        hot = self.hot
        known = hot.known  # read before the plan: `_plan` sets it after
        plan = hot.made
        if getattr(hot.inner, "_span_processors", None) is not known:
            plan = self._plan()
        if plan is None:
            hot.inner.on_start(span, parent_context=parent_context)
        elif plan[0] is not None:
            plan[0](span, parent_context=parent_context)

    def _on_ending(self, span: Any) -> None:
        hot = self.hot
        known = hot.known  # read before the plan: `_plan` sets it after
        plan = hot.made
        if getattr(hot.inner, "_span_processors", None) is not known:
            plan = self._plan()
        if plan is None:
            hot.inner._on_ending(span)
        elif plan[1] is not None:
            plan[1](span)

    def on_end(self, span: Any) -> None:
        hot = self.hot
        known = hot.known  # read before the plan: `_plan` sets it after
        plan = hot.made
        if getattr(hot.inner, "_span_processors", None) is not known:
            plan = self._plan()
        if plan is None:
            hot.inner.on_end(span)
            return
        store = getattr(getattr(span, "_attributes", None), "_dict", None)
        sdk = _sdk
        skipped = (
            store.get(sdk["SKIP_EXPORT"]) is True
            if type(store) is dict
            else sdk["is_skipped"](span)
        )
        if not skipped:
            plan[2](span)

    def end(
        self, span: Any, end_time: Optional[int], late: Optional[Dict[str, Any]] = None
    ) -> bool:
        """`span.end(end_time)` as the SDK's `Span.end` ends it (`_leanend`), for a span
        that goes only to the distro's encoding processor: handed to its `on_end_live`;
        False (nothing done) when `span.end` must do it. `late`: attributes set first,
        under the same lock, when `set_attributes` would put them in the map as they are
        (clean, new keys, within the count limit); else False, nothing done."""
        hot = self.hot
        lean = hot.lean_end
        known = hot.known  # read before the plan: `_plan` sets it after
        plan = hot.made
        if getattr(hot.inner, "_span_processors", None) is not known:
            plan = self._plan()
        if lean is None or plan is None or not plan[4] or type(span) is not lean.span_type:
            return False
        # `span.end` is the SDK's `Span.end` bound to it: neither its class's nor the span's
        # own `end` replaced (read as a bound method: `__dict__` would make the span's dict)
        bound: Any = span.end
        if (
            type(bound) is not lean.method_type
            or bound.__func__ is not lean.end_function
            or bound.__self__ is not span
        ):
            return False
        attributes: Any = span._attributes
        store = getattr(attributes, "_dict", None)
        if type(store) is not dict:
            return False
        maxlen: Any = None
        lock: Any = None
        if late:  # the map's fields `set_attributes` reads, else the general way
            maxlen = getattr(attributes, "maxlen", _NOTHING)
            max_value_len: Any = getattr(attributes, "max_value_len", _NOTHING)
            lock = getattr(attributes, "_lock", None)
            if (
                maxlen is _NOTHING
                or max_value_len is _NOTHING
                or lock is None
                or not clean(late, None, max_value_len)
            ):
                return False
        span_lock = span._lock  # (held as `with` holds it, in fewer steps)
        span_lock.acquire()
        try:
            if span._start_time is None or span._end_time is not None:
                return False  # `end` raises or warns
            if late:
                lock.acquire()
                try:
                    if (
                        getattr(attributes, "_immutable", True)
                        or (maxlen is not None and len(store) + len(late) > maxlen)
                        or not store.keys().isdisjoint(late)
                    ):
                        return False
                    store.update(late)
                finally:
                    lock.release()
            span._end_time = end_time if end_time is not None else lean.sdk.time_ns()
            if lean.immutable:
                attributes._immutable = True
        finally:
            span_lock.release()
        ended = span._record_end_metrics
        if ended and ended is not lean.noop:  # (`noop` does nothing)
            ended()
        on_ending = plan[1]
        if on_ending is not None:
            on_ending(span)
        if store.get(_sdk["SKIP_EXPORT"]) is not True:
            plan[3].on_end_live(span)
        return True

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        if name == "hot":  # (not set yet: no pass-through, which reads it)
            raise AttributeError(name)
        return getattr(self.hot.inner, name)


_NOTHING = object()
_layer_end = _ProcessorLayer.end
#: SDK classes, set when the first `FastSpans` is installed (this module imports no
#: OpenTelemetry itself)
_sdk: Dict[str, Any] = {}


def _does_nothing(method: Any) -> bool:
    """Whether `method`'s function body is empty (`pass`, maybe with a docstring)."""
    code = getattr(getattr(method, "__func__", None), "__code__", None)
    return code is not None and code.co_code in _sdk["empty bodies"]


def _empty_bodies() -> frozenset[bytes]:
    def bare(*args: Any, **kwargs: Any) -> None:
        pass

    def documented(*args: Any, **kwargs: Any) -> None:
        """A docstring."""

    return frozenset({bare.__code__.co_code, documented.__code__.co_code})


def _lone_exporter(inner: Any, processors: Any) -> Optional[_Plan]:
    """The hooks of the one exporting processor behind `inner` (the SDK's
    multi-processor), when it holds only `SkipExportFilter(BatchSpanProcessor)`."""
    if type(inner) is not _sdk["SynchronousMultiSpanProcessor"] or type(processors) is not tuple:
        return None
    if len(processors) != 1 or type(processors[0]) is not _sdk["SkipExportFilter"]:
        return None
    skip_filter = processors[0]
    batch = skip_filter.inner
    if type(batch) not in _sdk["batch processors"]:
        return None
    return (
        None if _does_nothing(batch.on_start) else batch.on_start,
        # the filter's own (it does not pass `_on_ending` on)
        None if _does_nothing(skip_filter._on_ending) else skip_filter._on_ending,
        batch.on_end,
        batch,
        type(batch) is _sdk["batch processors"][1],
    )


def _load_sdk() -> None:
    if _sdk:
        return
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import SamplingResult

    from lumigo_opentelemetry.export.early import EncodingBatchSpanProcessor
    from lumigo_opentelemetry.export.skip import (
        SKIP_EXPORT_ATTRIBUTE,
        SkipExportFilter,
        is_skipped,
    )

    _sdk.update(
        {
            "SamplingResult": SamplingResult,
            "SynchronousMultiSpanProcessor": SynchronousMultiSpanProcessor,
            "batch processors": (BatchSpanProcessor, EncodingBatchSpanProcessor),
            "SkipExportFilter": SkipExportFilter,
            "SKIP_EXPORT": SKIP_EXPORT_ATTRIBUTE,
            "is_skipped": is_skipped,
            "empty bodies": _empty_bodies(),
        }
    )


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
        self._lean: Any = None  # a `LeanStart`, for the SDK releases it knows
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
        _load_sdk()
        limits = tracer._span_limits
        self.max_count = limits.max_span_attributes
        self.max_length = limits.max_span_attribute_length
        # the attribute map a span is built with: an empty BoundedAttributes with `_dict`
        probe = BoundedAttributes(self.max_count, None, immutable=False)
        if type(getattr(probe, "_dict", None)) is not dict:
            return False
        tracer.sampler = _SamplerLayer(tracer.sampler, self._pending)  # type: ignore[assignment]
        from lumigo_opentelemetry.instrumentations._leanend import lean_end
        from lumigo_opentelemetry.instrumentations._leanstart import lean_start

        layer = _ProcessorLayer(tracer.span_processor, self._pending)
        layer.lean_end = lean_end()
        tracer.span_processor = layer  # type: ignore[assignment]
        self._lean = lean_start(tracer, _SamplerLayer, _ProcessorLayer)
        return True

    def values_clean(self, attributes: Mapping[str, Any]) -> bool:
        """Whether `attributes` (keys and values) are clean for this tracer's limits,
        whatever their count: a verdict a caller may keep for attributes it reuses."""
        return self.enabled and clean(attributes, None, self.max_length)

    def start_span(
        self,
        name: str,
        context: Any,
        kind: Any,
        attributes: Optional[Dict[str, Any]],
        start_time: Optional[int] = None,
        unchecked: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        """`tracer.start_span(name, context, kind, attributes, start_time=...)`.

        `unchecked`: when given, the only attributes `values_clean` has not found clean
        (the others were); only they, and the count, are checked. `attributes` None: a
        span started without any (as a DB-API span is), in one call too."""
        tracer = self.tracer
        max_count = self.max_count
        if attributes is None:
            fast = self.enabled
        elif unchecked is None:
            fast = self.enabled and clean(attributes, max_count, self.max_length)
        else:
            fast = (
                self.enabled
                and (max_count is None or len(attributes) <= max_count)
                and (not unchecked or clean(unchecked, None, self.max_length))
            )
        if not fast:
            return tracer.start_span(
                name, context=context, kind=kind, attributes=attributes, start_time=start_time
            )
        lean = self._lean
        if lean is not None:
            span = lean.start(name, context, kind, attributes, start_time)
            if span is not None:
                return span
        pending = self._pending
        pending.attributes = attributes
        try:
            return tracer.start_span(name, context=context, kind=kind, start_time=start_time)
        finally:
            pending.attributes = None
            pending.fill = None


def end_span(
    span: Any, end_time: Optional[int] = None, late: Optional[Dict[str, Any]] = None
) -> None:
    """`set_attributes(span, late)` (when given) then `span.end(end_time)`; in one call
    (`_ProcessorLayer.end`) when the span goes only to the distro's exporting processor."""
    processor = getattr(span, "_span_processor", None)
    # (`processor.end`, read from the class: the layer's `__getattr__` slows reads on it)
    if type(processor) is _ProcessorLayer and _layer_end(processor, span, end_time, late):
        return
    if late:
        set_attributes(span, late)
    span.end(end_time)


def set_attributes(span: Any, attributes: Dict[str, Any]) -> None:
    """`span.set_attributes(attributes)`; new, clean keys go straight into the span's map."""
    try:
        bounded = span._attributes
        store = bounded._dict
        maxlen = bounded.maxlen
        fast = type(store) is dict and clean(attributes, None, bounded.max_value_len)
    except AttributeError:  # not the SDK's span and attribute map
        fast = False
    if fast:
        lock = span._lock
        inner_lock = bounded._lock
        # (`with` both locks, as acquire and release calls: fewer steps than `with`)
        lock.acquire()
        try:
            inner_lock.acquire()
            try:
                if (
                    span._end_time is None
                    and not bounded._immutable
                    and (maxlen is None or len(store) + len(attributes) <= maxlen)
                    and store.keys().isdisjoint(attributes)
                ):
                    store.update(attributes)
                    return
            finally:
                inner_lock.release()
        finally:
            lock.release()
    span.set_attributes(attributes)
