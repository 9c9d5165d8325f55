"""SQS receive scope: the ReceiveMessage span is the active context while the app loops.

`scope_messages(result, span)` replaces `result["Messages"]` with a `ScopedMessages`, a
`list` subclass holding the same message dicts. Iterating it (a `for` loop, `list(...)`)
makes the ReceiveMessage span current for the duration of the iteration, so spans the
app starts while handling a message are its children. Leaving the loop in any way
(exhaustion, `break`, an exception) restores the previous context. When a span was
already active as the loop starts, nothing changes: the app's own span stays the parent.
Indexing, slicing, `len()`, equality and pickling behave as for the plain list.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Iterator, List, Optional

from opentelemetry import context, trace

_LOG = logging.getLogger("lumigo-opentelemetry.sqs")


class ScopedMessages(List[Any]):
    """The messages AWS returned; iteration runs inside the receive span's context."""

    __slots__ = ("_span",)

    def __init__(self, messages: List[Any], span: trace.Span) -> None:
        super().__init__(messages)
        self._span = span

    def __iter__(self) -> Iterator[Any]:
        return _scoped_iteration(self, self._span)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # copy, deepcopy and pickle see a plain list: the span never travels along.
        return (list, (list(list.__iter__(self)),))


def _scoped_iteration(messages: ScopedMessages, span: trace.Span) -> Iterator[Any]:
    token: Optional[object] = None
    try:
        if not trace.get_current_span().get_span_context().is_valid:
            token = context.attach(trace.set_span_in_context(span))
    except Exception:
        _LOG.debug("SQS receive scope: could not enter the span's context", exc_info=True)
    try:
        yield from list.__iter__(messages)
    finally:
        if token is not None:
            _detach_quietly(token)


def _detach_quietly(token: object) -> None:
    """Restore the previous context; a generator closed elsewhere (GC) only logs."""
    try:
        if isinstance(token, contextvars.Token):
            token.var.reset(token)
        else:
            context.detach(token)  # type: ignore[arg-type]
    except (ValueError, RuntimeError):
        _LOG.debug("SQS receive scope: context left from another context", exc_info=True)


def scope_messages(result: Any, span: trace.Span) -> None:
    """Wrap `result["Messages"]` of a ReceiveMessage response, when there is such a list."""
    if not isinstance(result, dict):
        return
    messages = result.get("Messages")
    if type(messages) is list and messages:
        result["Messages"] = ScopedMessages(messages, span)
