"""A batch span processor that queues each span already encoded.

The SDK's `BatchSpanProcessor` keeps every ended span (a dozen objects with its
attributes, events and context) until its batch is exported. Those objects outlive
two generations of the cycle collector, so they are counted into the oldest one,
and a full collection of the whole heap runs every couple of thousand requests,
stalling every request behind it (the p99 tail of a traced app). Encoded as it ends,
a span waits as an `encoder.Encoded` pair of bytes and an int, which the collector
does not track; the same bytes reach the backend, and encoding a span costs the same
on the request thread as it did on the export thread.

Spans are encoded early only for the distro's own exporter (`DeadlineExporter` with
`takes_encoded`, sending through `LumigoSpanExporter`'s transport, which
opentelemetry-exporter-otlp-proto-http has from 1.42 on); any other exporter, or a
span that cannot be encoded, gets the span itself, as from the SDK's processor.
"""

from __future__ import annotations

import os
from typing import Any, FrozenSet, List, Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanContext

from lumigo_opentelemetry._logging import logger

#: the first opentelemetry-exporter-otlp-proto-http release whose exporter has the
#: transport client `LumigoSpanExporter` sends its own encoding through
TRANSPORT_SINCE = (1, 42)


def exporter_sends_our_encoding() -> bool:
    """Whether the installed OTLP/HTTP exporter sends what `SpanEncoder` writes (read
    from its metadata: importing it would load the HTTP stack)."""
    from lumigo_opentelemetry.instrumentations._version_gate import installed_version

    version = installed_version("opentelemetry-exporter-otlp-proto-http") or ""
    numbers = []
    for part in version.split(".")[:2]:
        if not part.isdigit():
            return False
        numbers.append(int(part))
    return tuple(numbers) >= TRANSPORT_SINCE


#: the names the SDK's `BatchProcessor.emit` uses (1.41 to 1.45): its shutdown, fork and
#: queue-full checks, then `_queue.appendleft` and the worker's wake-up
_EMIT_NAMES = frozenset(
    {
        "_at_fork_reinit", "_bsp_reset_once", "_exporting", "_logger", "_max_export_batch_size",
        "_max_queue_size", "_metrics", "_pid", "_queue", "_shutdown", "_worker_awaken",
        "appendleft", "do_once", "drop_items", "getpid", "info", "is_set", "len", "os", "set",
        "warning",
    }
)  # fmt: skip
#: this process's id, kept by an at-fork hook: `emit`'s per-span `os.getpid()` check
#: becomes a comparison with it (a processor not yet re-initialised in a child gets `emit`)
_pid: List[int] = [os.getpid()]


def _after_fork_in_child() -> None:
    _pid[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
else:  # pragma: no cover - (no fork hooks: every hand-off through `emit`)
    _pid[0] = -1


def _direct_queue(batch_processor: Any) -> Optional[Any]:
    """`batch_processor` when its `emit` is the SDK's read (see `_EMIT_NAMES`), so
    `_hand_off` may do its steps; else None."""
    try:
        from opentelemetry.sdk._shared_internal import BatchProcessor

        emit = type(batch_processor).emit
        names: FrozenSet[str] = frozenset(emit.__code__.co_names)
        if (
            type(batch_processor) is BatchProcessor
            and emit is BatchProcessor.emit
            and names == _EMIT_NAMES
            and type(batch_processor._queue).__name__ == "deque"
        ):
            return batch_processor
    except Exception as exc:
        logger.debug("spans are queued through emit: %r", exc)
    return None


class EncodingBatchSpanProcessor(BatchSpanProcessor):
    """`BatchSpanProcessor` whose queue holds spans encoded as they end (see module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder: Any = None  # set on the first span when spans are encoded early
        self._decided = False
        #: the SDK's batch processor, when `_hand_off` may queue into it directly
        self._direct: Any = _direct_queue(getattr(self, "_batch_processor", None))

    def _decide(self) -> Any:
        self._decided = True
        try:
            exporter = self._batch_processor._exporter
            if getattr(exporter, "takes_encoded", False) is True and exporter_sends_our_encoding():
                from lumigo_opentelemetry.export.encoder import SpanEncoder

                self._encoder = SpanEncoder()
        except Exception as exc:
            logger.debug("spans are queued unencoded: %r", exc)
        return self._encoder

    def on_end(self, span: ReadableSpan) -> None:
        # what a span's `end` hands over is the SDK's `ReadableSpan`: its fields read directly
        context: Any = span._context if type(span) is ReadableSpan else span.context
        if type(context) is SpanContext:
            if not context[3] & 1:  # trace_flags: sampled
                return
        elif not (context and context.trace_flags.sampled):
            return
        self._hand_off(self._encoded(span) or span)

    def on_end_live(self, span: Any) -> None:
        """`on_end(span._readable_span())` for the SDK's own span (`_Span`) just ended,
        given itself: encoded early, it needs no `ReadableSpan` copy (which holds the
        same objects, so the bytes are the same); the copy is made only when the span
        is queued unencoded."""
        if not span._context[3] & 1:  # trace_flags: sampled
            return
        # `_encoded`, without its call
        encoder = self._encoder
        if encoder is None and not self._decided:
            encoder = self._decide()
        item: Any = None
        if encoder is not None:
            try:
                item = encoder.early(span)
            except Exception as exc:
                logger.debug("span queued unencoded: %r", exc)
        if item is None:
            item = span._readable_span()
        self._hand_off(item)

    def _hand_off(self, item: Any) -> None:
        """`self._batch_processor.emit(item)`: when it is the SDK's `BatchProcessor` read, in
        this process (not shut down, the queue not full), its steps without its call and
        its `os.getpid()` (the at-fork hook keeps `_pid`); else through `emit`."""
        batch = self._batch_processor
        if batch is self._direct and batch._pid == _pid[0] and not batch._shutdown:
            queue = batch._queue
            if len(queue) != batch._max_queue_size:
                queue.appendleft(item)
                if len(queue) >= batch._max_export_batch_size and not batch._worker_awaken.is_set():
                    batch._worker_awaken.set()
                return
        batch.emit(item)

    def _encoded(self, span: Any) -> Any:
        """`span` encoded for the queue, or None: queued as it is (logged at debug)."""
        encoder = self._encoder
        if encoder is None and not self._decided:
            encoder = self._decide()
        if encoder is None:
            return None
        try:
            return encoder.early(span)
        except Exception as exc:
            logger.debug("span queued unencoded: %r", exc)
            return None
