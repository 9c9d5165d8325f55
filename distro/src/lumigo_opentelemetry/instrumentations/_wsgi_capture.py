"""A `wsgi.input` wrapper that records, bounded, what the application reads.

It returns every byte unchanged to the caller and reads nothing on its own, so the
application's view of the request body is exactly what it would be without it.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, List, Optional

from lumigo_opentelemetry.instrumentations.payloads import BoundedBody

logger = logging.getLogger("lumigo-opentelemetry")

#: `CONTENT_LENGTH` values of a request without a body (none given, or 0)
_NO_LENGTH = frozenset({"", "0"})


def may_have_body(environ: Any) -> bool:
    """Whether a request can carry a body, by HTTP/1.1's message framing (RFC 9112
    6.3): it has one only with a `Transfer-Encoding` or a `Content-Length` other than
    0. Without either, a server gives an empty `wsgi.input` (gunicorn, which sets
    `wsgi.input_terminated`), or werkzeug does not read it at all: nothing to record."""
    if environ.get("HTTP_TRANSFER_ENCODING") is not None:
        return True
    length = environ.get("CONTENT_LENGTH")
    return length is not None and (type(length) is not str or length not in _NO_LENGTH)


class RecordingInput:
    """Wraps a WSGI input stream; `recorder` gets a copy of what is read."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self.recorder: Optional[BoundedBody] = BoundedBody(limit)

    def _record(self, data: Any) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        try:
            recorder.add(data)
        except Exception:
            logger.debug("request body recording failed; body not captured", exc_info=True)
            self.recorder = None

    def read(self, *args: Any) -> Any:
        data = self._stream.read(*args)
        self._record(data)
        return data

    def read1(self, *args: Any) -> Any:
        reader = getattr(self._stream, "read1", self._stream.read)
        data = reader(*args)
        self._record(data)
        return data

    def readinto(self, buffer: Any) -> Any:
        into = getattr(self._stream, "readinto", None)
        if into is None:
            data = self._stream.read(len(buffer))
            count = len(data)
            buffer[:count] = data
        else:
            count = into(buffer)
        if count:
            self._record(memoryview(buffer)[:count])
        return count

    def readline(self, *args: Any) -> Any:
        data = self._stream.readline(*args)
        self._record(data)
        return data

    def readlines(self, *args: Any) -> List[Any]:
        lines: List[Any] = self._stream.readlines(*args)
        for line in lines:
            self._record(line)
        return lines

    def __iter__(self) -> Iterator[Any]:
        for chunk in self._stream:
            self._record(chunk)
            yield chunk

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
