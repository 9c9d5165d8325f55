"""Spans the distro decides, after they started, not to send: marked, then held back.

`mark_skip_export(span)` sets the attribute `SKIP_EXPORT=True` (upstream's marker, so a
user's own span processor can see it too); `SkipExportFilter` wraps each of the distro's
exporting processors (OTLP batch, span dump) and passes every other span through. Used
for empty SQS polls and for botocore calls whose URL matches a client endpoint filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.sdk.trace import SpanProcessor

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

SKIP_EXPORT_ATTRIBUTE = "SKIP_EXPORT"


def mark_skip_export(span: Any) -> None:
    """Keep this (still open) span from being exported."""
    span.set_attribute(SKIP_EXPORT_ATTRIBUTE, True)


def is_skipped(span: ReadableSpan) -> bool:
    """Runs on the thread that ends each span: reads the SDK span's own attribute dict
    when it has one (`span.attributes` wraps it in a new proxy, and a missing key costs
    a raised `KeyError` through the `Mapping` protocol)."""
    attributes: Any = getattr(span, "_attributes", None)
    if attributes is None:
        attributes = span.attributes
        if attributes is None:
            return False
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        attributes = inner
    return attributes.get(SKIP_EXPORT_ATTRIBUTE) is True


class SkipExportFilter(SpanProcessor):
    """Forwards to `inner` every span not marked with `mark_skip_export`."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if not is_skipped(span):
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))
