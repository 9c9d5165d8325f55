"""A minimal HTTP/1.1 client connection for OTLP posts: one request, one response.

`http.client` parses every response's headers with `email.parser` and reads it through
a buffered file object: for a short OTLP answer that is about half of a post's
instructions. `Connection` writes the request (a head prepared once, the
`Content-Length` and the body) in one `sendall` and reads the response from the socket
itself, with the framing rules of `http.client`:

- the status line `HTTP/1.x NNN reason` (HTTP/1.0 and 1.1; interim 1xx answers
  skipped); headers `name: value`, decoded as Latin-1, folded lines joined;
- the body: none for 1xx, 204 and 304; chunked when `Transfer-Encoding` is `chunked`
  (trailers read and dropped); else `Content-Length`; else up to the end of the
  connection;
- `will_close` as `http.client` decides it: `Connection: close`, an HTTP/1.0 answer
  without keep-alive, or a body that ends with the connection.

An answer's body is read up to `MAX_BODY` bytes (an OTLP answer is a few bytes of
partial-success message): a longer one is not read on; the answer keeps its status with
an empty body and the connection is closed, so a broken or hostile endpoint cannot make
the exporter hold an unbounded body in memory.

Errors are `http.client`'s own exception types (`RemoteDisconnected` for a connection
the server closed before answering, `IncompleteRead`, `BadStatusLine`, `LineTooLong`,
`UnknownProtocol`) or the socket's `OSError`s, so callers tell connection errors apart
as before.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from typing import Dict, Iterator, List, Optional, Tuple

#: longest response head (status line and headers) and chunk-size line accepted
MAX_HEAD = 65536
#: largest response body read (all chunks together)
MAX_BODY = 4 * 1024 * 1024
_RECV = 65536
_NO_BODY = frozenset({204, 304})
_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\0]")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
#: the first empty line: LF, then LF or CRLF (so CRLF CRLF and bare LFs alike)
_BLANK_LINE = re.compile(rb"\n\r?\n")


class _BodyTooLarge(Exception):
    """The answer's body is longer than `MAX_BODY`."""


class Headers:
    """Response headers in arrival order; the lookups `email.message.Message` offers
    that callers use (`get`, `get_all`, `keys`), names case-insensitive."""

    __slots__ = ("_first", "_pairs")

    def __init__(self, pairs: List[Tuple[str, str]]) -> None:
        self._pairs = pairs
        self._first: Optional[Dict[str, str]] = None  # lower-case name -> its first value

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        first = self._first
        if first is None:  # made on the first lookup (a response gets four or five)
            first = self._first = {}
            for key, value in reversed(self._pairs):
                first[key.lower()] = value
        return first.get(name.lower(), default)

    def get_all(self, name: str, failobj: Optional[List[str]] = None) -> Optional[List[str]]:
        wanted = name.lower()
        found = [value for key, value in self._pairs if key.lower() == wanted]
        return found if found else failobj

    def keys(self) -> List[str]:
        return [key for key, _ in self._pairs]

    def items(self) -> List[Tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._pairs)


class Response:
    """A response read in full."""

    __slots__ = ("body", "headers", "reason", "status", "will_close")

    def __init__(
        self, status: int, reason: str, headers: Headers, body: bytes, will_close: bool
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.will_close = will_close


def host_header(host: str, port: int, default_port: int) -> str:
    """The `Host` value `http.client` sends for this host and port."""
    try:
        name = host.encode("ascii").decode("ascii")
    except UnicodeEncodeError:
        name = host.encode("idna").decode("ascii")
    if ":" in host:
        name = f"[{name}]"
    return name if port == default_port else f"{name}:{port}"


def request_head(method: str, target: str, headers: List[Tuple[str, str]]) -> bytes:
    """The request line and headers, up to (not including) `Content-Length`; raises
    `ValueError` for what `http.client` refuses (CR, LF or NUL in a value, a bad name)."""
    if not target or _BAD_TARGET.search(target):
        raise ValueError(f"invalid request target {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if not _NAME.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


class Connection:
    """One kept-alive connection to `host:port` (TLS with `context`)."""

    def __init__(
        self, host: str, port: int, context: Optional[ssl.SSLContext], timeout: Optional[float]
    ) -> None:
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.sock: Optional[socket.socket] = sock
        self._buffer = b""

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def post(self, head: bytes, body: bytes, timeout: Optional[float]) -> Response:
        """Send `head` (from `request_head`) with `body`; the response, read in full."""
        sock = self.sock
        if sock is None:
            raise http.client.NotConnected()
        sock.settimeout(timeout)
        self._buffer = b""
        sock.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
        while True:
            version, status, reason, headers = self._head()
            if status >= 200 or status == 101:
                break
        return self._response(version, status, reason, headers)

    # --- reading ----------------------------------------------------------------------

    def _more(self) -> bytes:
        assert self.sock is not None
        return self.sock.recv(_RECV)

    def _head(self) -> Tuple[int, int, str, Headers]:
        buffer = self._buffer
        end, rest = _head_end(buffer)
        while end < 0:
            if len(buffer) > MAX_HEAD:
                raise http.client.LineTooLong("response head")
            data = self._more()
            if not data:
                if not buffer:
                    raise http.client.RemoteDisconnected(
                        "Remote end closed connection without response"
                    )
                raise http.client.BadStatusLine(buffer.decode("latin-1"))
            buffer += data
            end, rest = _head_end(buffer)
        self._buffer = buffer[rest:]
        lines = buffer[:end].decode("latin-1").split("\n")
        version, status, reason = _status_line(lines[0].rstrip("\r"))
        pairs: List[Tuple[str, str]] = []
        for line in lines[1:]:
            line = line.rstrip("\r")
            if line[:1] in (" ", "\t") and pairs:  # a folded continuation line
                name, value = pairs[-1]
                pairs[-1] = (name, f"{value} {line.strip()}")
                continue
            name, sep, value = line.partition(":")
            if sep and name:
                pairs.append((name, value.strip(" \t")))
        return version, status, reason, Headers(pairs)

    def _response(self, version: int, status: int, reason: str, headers: Headers) -> Response:
        connection = headers.get("connection")
        if version == 11:
            will_close = bool(connection and "close" in connection.lower())
        else:
            will_close = not (
                headers.get("keep-alive")
                or (connection and "keep-alive" in connection.lower())
                or "keep-alive" in (headers.get("proxy-connection") or "").lower()
            )
        coding = headers.get("transfer-encoding")
        try:
            if status in _NO_BODY or status < 200:
                body = b""
            elif coding and coding.lower() == "chunked":
                body = self._chunked()
            else:
                length = _length(headers.get("content-length"))
                if length is None:
                    will_close = True
                    body = self._until_closed()
                else:
                    body = self._exactly(length)
        except _BodyTooLarge:  # the status stands; the rest is never read
            body, will_close, self._buffer = b"", True, b""
        if self._buffer:  # bytes past the answer: the connection is not reusable
            will_close = True
        return Response(status, reason, headers, body, will_close)

    def _exactly(self, size: int, before: int = 0) -> bytes:
        """The next `size` bytes (`before`: body bytes already read, for the cap)."""
        if before + size > MAX_BODY:
            raise _BodyTooLarge()
        buffer = self._buffer
        if len(buffer) < size:
            parts = [buffer]
            have = len(buffer)
            while have < size:
                data = self._more()
                if not data:
                    raise http.client.IncompleteRead(b"".join(parts), size - have)
                parts.append(data)
                have += len(data)
            buffer = b"".join(parts)
        self._buffer = buffer[size:]
        return buffer[:size]

    def _until_closed(self) -> bytes:
        parts = [self._buffer]
        have = len(self._buffer)
        while have <= MAX_BODY:
            data = self._more()
            if not data:
                break
            parts.append(data)
            have += len(data)
        self._buffer = b""
        if have > MAX_BODY:
            raise _BodyTooLarge()
        return b"".join(parts)

    def _line(self) -> bytes:
        buffer = self._buffer
        end = buffer.find(b"\n")
        while end < 0:
            if len(buffer) > MAX_HEAD:
                raise http.client.LineTooLong("chunk size")
            data = self._more()
            if not data:
                raise http.client.IncompleteRead(b"")
            buffer += data
            end = buffer.find(b"\n")
        self._buffer = buffer[end + 1 :]
        return buffer[:end]

    def _chunked(self) -> bytes:
        parts: List[bytes] = []
        have = 0
        while True:
            line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise http.client.IncompleteRead(b"".join(parts)) from None
            if size == 0:
                break
            parts.append(self._exactly(size, have))
            have += size
            self._line()  # the CRLF after the chunk
        while self._line().strip():  # trailers, up to the empty line
            pass
        return b"".join(parts)


def _status_line(line: str) -> Tuple[int, int, str]:
    """(version 10 or 11, status, reason) of a status line, as `http.client` reads it."""
    version, _, rest = line.partition(" ")
    status, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/"):
        raise http.client.BadStatusLine(line)
    if version == "HTTP/1.0":
        number = 10
    elif version.startswith("HTTP/1."):
        number = 11
    else:
        raise http.client.UnknownProtocol(version)
    if len(status) != 3 or not status.isdigit():
        raise http.client.BadStatusLine(line)
    code = int(status)
    if code < 100:
        raise http.client.BadStatusLine(line)
    return number, code, reason.strip()


def _head_end(buffer: bytes) -> Tuple[int, int]:
    """(end of the head, start of what follows) in `buffer`, or (-1, -1); lines may
    end with CRLF or, as `http.client` also accepts, a bare LF. (The head may keep the
    CR of its last line's CRLF: lines are read with their CR stripped.)"""
    found = _BLANK_LINE.search(buffer)
    return (found.start(), found.end()) if found is not None else (-1, -1)


def _length(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None
