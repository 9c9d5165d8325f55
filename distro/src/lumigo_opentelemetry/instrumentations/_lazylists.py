"""A span's event and link lists, made when first read, for spans only our exporter sees.

The SDK's `_Span` makes two `BoundedList`s (each a deque and a lock) when it is built,
and most spans end with both empty: making and freeing them is about a fifth of what
building a span costs. `SpanBuilder` (`_leanstart`) may leave them out of a span it
builds when the span goes only to the distro's exporting processor; the span then
carries `LISTS_UNMADE` (True), and `_Span` gets a class attribute per list,
`MadeOnRead`, which the interpreter consults only when a span has no list of its own
(every span the SDK's constructor built has both): the first read of `span._events` or
`span._links` makes the list as the constructor makes it (`_new_events()`,
`_new_links(())`), keeps it on the span, and sets `LISTS_UNMADE` False. Everything
the SDK does with a span (`add_event`, `record_exception`, `add_link`, `events`, `links`,
`_readable_span`) reads the lists first, so it sees what it would have seen.

The encoder reads `LISTS_UNMADE` first: True means no events, no links, nothing dropped.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from lumigo_opentelemetry.export.encoder import LISTS_UNMADE

logger = logging.getLogger("lumigo-opentelemetry")

_MAKING = threading.Lock()  # a list is made once, whichever thread reads it first


class MadeOnRead:
    """A non-data descriptor (a span's own field, when it has one, is read instead):
    makes the field with `make(span)` on its first read and keeps it on the span."""

    def __init__(self, name: str, make: Callable[[Any], Any]) -> None:
        self.name = name
        self.make = make

    def __get__(self, span: Any, owner: Any = None) -> Any:
        if span is None:
            return self
        with _MAKING:
            fields = span.__dict__
            made = fields.get(self.name)
            if made is None:
                made = self.make(span)
                fields[self.name] = made
                fields[LISTS_UNMADE] = False
        return made


def _events(span: Any) -> Any:
    return span._new_events()


def _links(span: Any) -> Any:
    return span._new_links(())


def install(span_type: Any) -> bool:
    """Puts `MadeOnRead` on `span_type` for `_events` and `_links`, unless they are there
    already; False when some class of `span_type` has a class attribute of that name."""
    found = [vars(cls).get(name) for cls in span_type.__mro__ for name in ("_events", "_links")]
    if all(type(item) is MadeOnRead for item in found if item is not None) and (
        type(vars(span_type).get("_events")) is MadeOnRead
    ):
        return True  # installed before
    if any(item is not None for item in found):
        return False
    try:
        span_type._events = MadeOnRead("_events", _events)
        span_type._links = MadeOnRead("_links", _links)
    except Exception:  # a class that refuses new attributes: the lists are made at once
        logger.debug("span lists made at build", exc_info=True)
        return False
    return True
