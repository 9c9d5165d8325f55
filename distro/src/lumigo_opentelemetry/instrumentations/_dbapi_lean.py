"""DB-API client spans without contrib's per-query overhead, recorded as contrib records them.

opentelemetry-instrumentation-dbapi's `CursorTracer.traced_execution` does, for every
query: the operation name (a regular expression), `_populate_span` (the attributes, one
SDK check each, then the distro's statement masking), and a span started and made
current through the SDK's generator-based context managers. For a query text seen
before on an equal connection, everything but the span itself comes out the same.

`LeanExecution` wraps `traced_execution` (on the class, so every driver's subclass gets
it); our cursor proxies (`_dbapi_proxies`, `_pg_cursors`) call its `run` directly. For a
query given as a `str` (what nearly every app and ORM passes), the span name and
attributes come from a bounded memo keyed by the tracer class, a number standing for the
connection's attributes (equal connections share it) and the text. The first time,
contrib's own `get_operation_name` and `_populate_span` (masking included) make them, on
a collector, so what the installed contrib release records is what is recorded. Then the
span is started as contrib starts it (no attributes at start: a sampler and a span
processor's `on_start` see what they saw; its parent from the context read once for the
suppression check), its attributes go in at once, it is current while the query runs,
contrib's DB metrics are recorded, and an exception is recorded with an ERROR status as
`use_span` does. A statement the masking changed is not kept in the memo, so it never
holds a secret.

Contrib's own path (with `Releasing`) serves the rest: sqlcommenter on, parameters
captured, a query that is not a `str` (bytes, `psycopg.sql` objects, templates), more
attributes than the span limit, or any failure while making the memo entry.
"""

from __future__ import annotations

import logging
from itertools import count
from time import perf_counter
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from lumigo_opentelemetry.instrumentations._fastspan import (
    clean,
    end_span,
    fast_spans,
    set_attributes,
)
from lumigo_opentelemetry.instrumentations._release import Releasing
from lumigo_opentelemetry.masking import MASKED

logger = logging.getLogger("lumigo-opentelemetry")

_MEMO_SIZE = 512
#: (span name, attributes, operation name for contrib's metrics, the length of the longest
#: string among the attributes when `clean` finds them clean whatever the length limit,
#: else None)
_Plan = Tuple[str, Dict[str, Any], str, Optional[int]]


class _Collected(Dict[str, Any]):
    """A stand-in span for `_populate_span`: keeps the attributes in the order the SDK
    would (setting a key again moves it to the end)."""

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: Any) -> None:
        self.pop(key, None)
        self[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    @property
    def attributes(self) -> Dict[str, Any]:
        return self


def _connection_key(integration: Any) -> Tuple[Any, ...]:
    """What of a `DatabaseApiIntegration` the name and attributes depend on (cached on it:
    it is filled once, when its connection is made)."""
    known = integration.__dict__.get("_lumigo_lean_key")
    if known is None:
        known = (
            integration.name,
            integration.database_system,
            integration.database,
            getattr(integration, "_sem_conv_opt_in_mode_db", None),
            tuple(integration.span_attributes.items()),
        )
        hash(known)  # unhashable attribute values: TypeError, contrib's path
        integration._lumigo_lean_key = known
    return known  # type: ignore[no-any-return]


class _Lane:
    """A `CursorTracer`'s part of a memo key, its spans and its metrics recorder."""

    __slots__ = ("integration", "kind", "record", "spans", "start", "token")

    def __init__(
        self, kind: type, token: int, integration: Any, record: Optional[Callable[..., Any]]
    ) -> None:
        self.kind = kind
        self.token = token
        self.integration = integration
        self.spans = spans = fast_spans(integration._tracer)
        self.record = record
        #: what `spans.start_span(name, context, kind, None)` calls first (`LeanStart.start`,
        #: which returns None when the SDK must start the span), called without its frame
        lean = getattr(spans, "_lean", None) if spans.enabled else None
        self.start: Optional[Callable[..., Any]] = getattr(lean, "start", None)


def _metrics_recorder(tracer: Any) -> Optional[Callable[..., Any]]:
    """`tracer._record_metrics` (contrib >= 0.63b0), or None when there is none or it is
    contrib's own and records nothing for this integration: its DB metrics come with the
    new database semantic conventions only, and then it has its histograms."""
    record = getattr(tracer, "_record_metrics", None)
    if record is None:
        return None
    try:
        from opentelemetry.instrumentation._semconv import _report_new
        from opentelemetry.instrumentation.dbapi import CursorTracer

        integration = tracer._db_api_integration
        own = CursorTracer.__dict__.get("_record_metrics")
        names = getattr(getattr(own, "__code__", None), "co_names", ())
        if (
            own is not None
            and getattr(type(tracer), "_record_metrics", None) is own
            and "_report_new" in names
            and not _report_new(integration._sem_conv_opt_in_mode_db)
            and getattr(integration, "_duration_histogram", None) is None
            and getattr(integration, "_returned_rows_histogram", None) is None
        ):
            return None
    except Exception:
        logger.debug("DB metrics recorder kept", exc_info=True)
    return record  # type: ignore[no-any-return]


class LeanExecution(Releasing):
    """A wrapt wrapper for `CursorTracer.traced_execution` (see module); `run` is the same
    call made directly by our cursor proxies (`_dbapi_proxies`, `_pg_cursors`)."""

    def __init__(self, *functions: Callable[..., Any]) -> None:
        super().__init__(*functions)
        self.enabled = True
        self._memo: Dict[Tuple[Any, ...], _Plan] = {}
        self._tokens: Dict[Tuple[Any, ...], int] = {}
        self._numbers = count()
        self._api: Optional[Dict[str, Any]] = None
        self._contrib = functions[0] if functions else None  # contrib's own, unwrapped

    def clear(self) -> None:
        """Forget every memo entry (the masking configuration changed)."""
        self._memo = {}

    def __call__(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        if instance is None or len(args) < 2:
            return super().__call__(wrapped, instance, args, kwargs)
        return self.run(instance, args[0], args[1], args[2:], kwargs, wrapped)

    def run(
        self,
        instance: Any,
        cursor: Any,
        query_method: Callable[..., Any],
        query_args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
        wrapped: Optional[Callable[..., Any]] = None,
    ) -> Any:
        """`instance.traced_execution(cursor, query_method, *query_args, **kwargs)`, for an
        `instance` whose `traced_execution` is this wrapper's; `wrapped`: contrib's, bound
        (by default, made here: our cursor proxies call this with no wrapt binding)."""
        plan = lane = None
        if self.enabled and query_args and type(query_args[0]) is str:
            try:
                lane = instance.__dict__.get("_lumigo_lane") or self._lane(instance)
                if not instance._commenter_enabled and not lane.integration.capture_parameters:
                    plan = self._memo.get((lane.kind, lane.token, query_args[0]))
                    if plan is None:
                        plan = self._plan(instance, cursor, query_args)
            except Exception:
                logger.debug("lean DB-API span not planned", exc_info=True)
        if plan is None or lane is None:
            if wrapped is None:
                contrib = self._contrib
                if contrib is None:  # pragma: no cover - always given by `release_errors`
                    return instance.traced_execution(cursor, query_method, *query_args, **kwargs)
                wrapped = contrib.__get__(instance, type(instance))
            return super().__call__(wrapped, instance, (cursor, query_method, *query_args), kwargs)

        api = self._api or self._load()
        now = api["context"]
        current = now.get()
        suppress = api["suppress"]
        if (
            (current.get(suppress[0]) or current.get(suppress[1]))
            if suppress is not None
            else not api["enabled"]()
        ):
            return query_method(*query_args, **kwargs)
        name, attributes, operation, longest = plan
        # started as contrib starts it (no attributes), in one call (`FastSpans`)
        start = lane.start
        span = None if start is None else start(name, current, api["client"], None, None)
        if span is None:
            span = lane.spans.start_span(name, current, api["client"], None)
        try:
            if span.is_recording():
                _fill(span, attributes, longest)  # read, never changed
            token = now.attach(span, current)
            try:
                record = lane.record
                if record is None:  # no DB metrics to record (see `_Lane`)
                    return query_method(*query_args, **kwargs)
                started = perf_counter()
                try:
                    result = query_method(*query_args, **kwargs)
                except BaseException as exc:
                    error = exc if isinstance(exc, Exception) else None
                    record(cursor, operation, started, error)
                    del error  # no frame of ours keeps the exception (`_release`)
                    raise
                record(cursor, operation, started, None)
                return result
            finally:
                now.detach(token)
        except Exception as exc:  # as the SDK's `use_span` records it
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(api["Status"](api["ERROR"], f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            end_span(span)

    def _plan(self, instance: Any, cursor: Any, query_args: Tuple[Any, ...]) -> Optional[_Plan]:
        integration = instance._db_api_integration
        if instance._commenter_enabled or integration.capture_parameters:
            return None
        token = integration.__dict__.get("_lumigo_lean_token")
        if token is None:
            token = self._token(integration)
        key = (type(instance), token, query_args[0])
        known = self._memo.get(key)
        if known is not None:
            return known
        operation = instance.get_operation_name(cursor, query_args)
        name = operation or integration.database or integration.name
        collected = _Collected()
        instance._populate_span(collected, cursor, *query_args)
        attributes = dict(collected)
        longest = None
        if clean(attributes, None, None):
            longest = max((len(v) for v in attributes.values() if type(v) is str), default=0)
        made = (name, attributes, operation, longest)
        if any(type(v) is str and MASKED in v for v in collected.values()):
            return made  # used once, never kept
        if len(self._memo) >= _MEMO_SIZE:
            self._memo = {}
        self._memo[key] = made
        return made

    def _lane(self, instance: Any) -> _Lane:
        """What `run` reads of a `CursorTracer` on every query, made once (cached on it:
        our cursor proxies share one per connection)."""
        integration = instance._db_api_integration
        token = integration.__dict__.get("_lumigo_lean_token")
        if token is None:
            token = self._token(integration)
        lane = _Lane(type(instance), token, integration, _metrics_recorder(instance))
        instance._lumigo_lane = lane
        return lane

    def _token(self, integration: Any) -> int:
        """A number for what the integration's spans depend on (`_connection_key`): equal
        connections share it, a number is never given to another key (cached on it)."""
        key = _connection_key(integration)
        token = self._tokens.get(key)
        if token is None:
            if len(self._tokens) >= _MEMO_SIZE:
                self._tokens = {}
            token = self._tokens[key] = next(self._numbers)
        integration._lumigo_lean_token = token
        return token

    def _load(self) -> Dict[str, Any]:
        from opentelemetry import context
        from opentelemetry.instrumentation import utils
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from lumigo_opentelemetry.instrumentations._otel_context import CurrentContext

        # contrib's `is_instrumentation_enabled()` reads these two keys of the current
        # context; read here from the context the span starts in (one lookup of it)
        keys = getattr(utils, "_SUPPRESS_INSTRUMENTATION_KEY_PLAIN", None)
        self._api = {
            "context": CurrentContext(),  # get_current, attach and detach, as the API's
            "enabled": utils.is_instrumentation_enabled,
            "suppress": None if keys is None else (context._SUPPRESS_INSTRUMENTATION_KEY, keys),
            "client": SpanKind.CLIENT,
            "Status": Status,
            "ERROR": StatusCode.ERROR,
        }
        return self._api


def _fill(span: Any, attributes: Dict[str, Any], longest: Optional[int]) -> None:
    """`set_attributes(span, attributes)` for a span just started with none: when the SDK
    span's map is still empty and `attributes` are clean (`longest`: see `_Plan`) within
    its limits, they go straight into its store, as `set_attributes` puts them, without
    checking them again; anything else (or any failure here) through `set_attributes`."""
    if longest is not None:
        try:
            bounded = span._attributes
            store = bounded._dict
            limit = bounded.max_value_len
            maxlen = bounded.maxlen
            if (
                type(store) is dict
                and (limit is None or longest <= limit)
                and (maxlen is None or len(attributes) <= maxlen)
            ):
                with span._lock, bounded._lock:
                    if not store and span._end_time is None and not bounded._immutable:
                        store.update(attributes)
                        # the encoder reuses these pairs' fields (`ATTRIBUTES_HINT`)
                        span._lumigo_attributes = attributes
                        return
        except Exception:  # not the SDK's span and attribute map
            logger.debug("DB-API span attributes set the SDK's way", exc_info=True)
    set_attributes(span, attributes)


def installed(attribute: Any) -> Optional[LeanExecution]:
    """The `LeanExecution` behind a class attribute, if any."""
    wrapper = getattr(attribute, "_self_wrapper", None)
    return wrapper if isinstance(wrapper, LeanExecution) else None


def lean_of(tracer: Any) -> Optional[LeanExecution]:
    """The `LeanExecution` that `tracer.traced_execution` runs, if that is what it runs."""
    for klass in type(tracer).__mro__:
        method = klass.__dict__.get("traced_execution")
        if method is not None:
            return installed(method)
    return None
