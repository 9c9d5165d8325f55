"""Execution tags (`lumigo.execution_tags.<key>` span attributes), as upstream documents them.

`add_execution_tags({"tenant": "acme"})` sets the tags on the current span and carries
them in the OpenTelemetry context, so every span started later in the same context (the
rest of the request, its outgoing calls) gets them too (`ExecutionTagProcessor`, added to
the tracer provider on the first call, so apps without execution tags pay nothing per span).
`only_current_span=True` sets them on the current span only.

Limits (Lumigo's, from upstream's README): a key is a non-empty string without `.` of at
most 50 characters, a value (or each value of a list/tuple) at most 70 characters (longer
values are cut), at most 50 keys per invocation. Tags that break a rule are skipped with
one warning; nothing raises into the app.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

from lumigo_opentelemetry._logging import logger

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider

PREFIX = "lumigo.execution_tags."
MAX_KEYS = 50
MAX_KEY_LENGTH = 50
MAX_VALUE_LENGTH = 70
_CONTEXT_KEY = otel_context.create_key("lumigo-execution-tags")

TagValue = Union[str, int, float, bool, Sequence[Union[str, int, float, bool]]]


def _value(key: str, value: Any) -> Union[str, List[str], None]:
    if isinstance(value, (list, tuple)):
        items = [_scalar(v) for v in value]
        kept = [v for v in items if v is not None]
        if not kept:
            logger.warning("execution tag %r has no usable value; skipped", key)
            return None
        return kept
    text = _scalar(value)
    if text is None:
        logger.warning("execution tag %r: value %r is not a string or number; skipped", key, value)
    return text


def _scalar(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        return None
    if not text.strip():
        return None
    return text[:MAX_VALUE_LENGTH]


def valid_tags(tags: Any, already: int = 0) -> Dict[str, Union[str, List[str]]]:
    """The tags that respect the limits, values cut to 70 characters."""
    if not isinstance(tags, Mapping):
        logger.warning("execution tags must be a dict; got %s", type(tags).__name__)
        return {}
    kept: Dict[str, Union[str, List[str]]] = {}
    for key, raw in tags.items():
        if not isinstance(key, str) or not key.strip() or "." in key:
            logger.warning("execution tag key %r is not a non-empty string without '.'", key)
            continue
        if len(key) > MAX_KEY_LENGTH:
            logger.warning("execution tag key %r is longer than %d characters", key, MAX_KEY_LENGTH)
            continue
        if already + len(kept) >= MAX_KEYS and key not in kept:
            logger.warning("more than %d execution tags; %r skipped", MAX_KEYS, key)
            continue
        value = _value(key, raw)
        if value is not None:
            kept[key] = value
    return kept


def context_tags(context: Optional[Context] = None) -> Dict[str, Union[str, List[str]]]:
    value = otel_context.get_value(_CONTEXT_KEY, context)
    return dict(value) if isinstance(value, dict) else {}


_installed_on: Optional[int] = None
_install_lock = threading.Lock()


def ensure_processor(provider: TracerProvider) -> None:
    """Add `ExecutionTagProcessor` to `provider` once: only apps that use execution tags
    pay for the per-span context lookup."""
    global _installed_on
    with _install_lock:
        if _installed_on != id(provider):
            provider.add_span_processor(ExecutionTagProcessor())
            _installed_on = id(provider)


def add_execution_tags(
    tags: Mapping[str, TagValue],
    only_current_span: bool = False,
    provider: Optional[TracerProvider] = None,
) -> None:
    """Add execution tags to the current span and (by default) to every span `provider`
    starts after it in this context. Never raises."""
    try:
        if provider is not None and not only_current_span:
            ensure_processor(provider)
        current = context_tags()
        new = valid_tags(tags, already=0 if only_current_span else len(current))
        if not new:
            return
        span = trace.get_current_span()
        if span.is_recording():
            for key, value in new.items():
                span.set_attribute(PREFIX + key, value)
        elif only_current_span:
            logger.warning("no active span to add execution tags to")
        if not only_current_span:
            current.update(new)
            otel_context.attach(otel_context.set_value(_CONTEXT_KEY, current))
    except Exception as exc:
        logger.warning("execution tags not added: %r", exc)


class ExecutionTagProcessor(SpanProcessor):
    """Puts the execution tags carried in the context on each span as it starts."""

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        try:
            tags = otel_context.get_value(_CONTEXT_KEY, parent_context)
            if isinstance(tags, dict) and tags and span.is_recording():
                for key, value in tags.items():
                    span.set_attribute(PREFIX + key, value)
        except Exception:
            logger.debug("execution tags not copied to the span", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
