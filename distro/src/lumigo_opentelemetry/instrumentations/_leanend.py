"""`Span.end` in one Python call, when the span goes only to the distro's exporting processor.

The SDK's `Span.end` sets the end time under the span's lock (and, from some release
on, makes its attribute map immutable), ends the span's metrics, then calls its span
processor's `_on_ending` and `on_end` with a new `ReadableSpan` copy of it. For a span
started on a tracer with `FastSpans` (whose processor is `_fastspan._ProcessorLayer`),
when the provider's processors are just the distro's own exporting one
(`SkipExportFilter` around `EncodingBatchSpanProcessor`), the layer's `end` does the same
steps in the same order and hands the span itself to
`EncodingBatchSpanProcessor.on_end_live`, which encodes it into the queue (the copy
holds the same objects, so the bytes are the same) and makes the copy only when it
queues the span unencoded.

Used only for the SDK releases read (1.41 to 1.45), recognised by the release and by
the names their `Span.end` uses. Anything else gets `span.end()`: another SDK, a span
that is not the SDK's `_Span` or whose `end` was replaced, a span not started or
already ended (the SDK raises or warns), any other span processor (a user's own, the
execution-tag processor, the span dump), which so sees every span as it does today.
"""

from __future__ import annotations

import logging
from types import MethodType
from typing import Any, Optional

logger = logging.getLogger("lumigo-opentelemetry")

#: names `Span.end` uses in every release read (its code's `co_names`)
_NAMES = frozenset(
    {
        "RuntimeError",
        "_end_time",
        "_lock",
        "_on_ending",
        "_readable_span",
        "_record_end_metrics",
        "_span_processor",
        "_start_time",
        "logger",
        "on_end",
        "time_ns",
        "warning",
    }
)
#: whether `end` makes the attribute map immutable, by the names its code uses
_VARIANTS = {_NAMES: False, _NAMES | {"_attributes", "_immutable"}: True}
_RELEASES = ("1.41.", "1.42.", "1.43.", "1.44.", "1.45.")


def variant(end: Any, release: str) -> Optional[bool]:
    """Whether this `Span.end` of this SDK release makes the attributes immutable; None
    when it is not one read."""
    code = getattr(end, "__code__", None)
    if code is None or not release.startswith(_RELEASES):
        return None
    return _VARIANTS.get(frozenset(code.co_names))


class LeanEnd:
    """What ending spans as `Span.end` does takes (see module): the SDK's objects it is
    checked against; `_fastspan._ProcessorLayer.end` takes the steps. Made by `lean_end`."""

    def __init__(self, immutable: bool) -> None:
        from opentelemetry.sdk import trace
        from opentelemetry.sdk.trace import Span, _Span

        from lumigo_opentelemetry.export.early import EncodingBatchSpanProcessor
        from lumigo_opentelemetry.instrumentations._leanstart import no_metrics

        self.immutable = immutable
        self.span_type = _Span
        self.end_function = Span.end
        self.method_type = MethodType  # what `span.end` is when nothing replaced it
        self.encoding = EncodingBatchSpanProcessor
        self.sdk: Any = trace  # its `time_ns`, looked up per call as `end` does
        self.noop = no_metrics()[1]  # the SDK's metrics' `noop`, when it does nothing


def lean_end() -> Optional[LeanEnd]:
    """A `LeanEnd` when the SDK release's `Span.end` is one read; else None."""
    try:
        from opentelemetry.sdk.trace import Span
        from opentelemetry.sdk.version import __version__

        immutable = variant(Span.end, str(__version__))
        if immutable is None:
            return None
        return LeanEnd(immutable)
    except Exception:
        logger.debug("lean span end not available", exc_info=True)
        return None
