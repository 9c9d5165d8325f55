"""`LUMIGO_DEBUG_SPANDUMP`: every finished span appended to a file as one JSON line.

Each line is written with a single `write()` on a descriptor opened with `O_APPEND`,
under an exclusive `flock`, so several processes (e.g. gunicorn workers) can share the
file without interleaving or losing lines.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Optional

from opentelemetry.sdk.trace import SpanProcessor

from lumigo_opentelemetry._logging import logger

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span


def span_line(span: ReadableSpan) -> bytes:
    """One span as a single JSON line (the SDK's JSON form, compacted)."""
    doc = json.loads(span.to_json(indent=None))
    return (json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def append_line(path: str, line: bytes) -> None:
    """Append `line` atomically with respect to other writers using this function."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)  # closing releases the lock


class SpanDumpProcessor(SpanProcessor):
    """A span processor writing each finished span to `path`; I/O errors are logged once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._failed = False

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            append_line(self.path, span_line(span))
        except Exception as exc:
            if not self._failed:
                self._failed = True
                logger.warning("cannot write the span dump %s: %s", self.path, exc)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
