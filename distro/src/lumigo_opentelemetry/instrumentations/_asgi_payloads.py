"""Payloads of the lean ASGI server spans (`_asgi_server`), recorded as the messages pass.

What a set of headers or a short body gives (attribute text, content type) is the same
for the same bytes, so it is kept in bounded memos, one set per middleware (whose config
is fixed): header sets by their pairs, complete bodies up to `_BODY_MEMO_LENGTH` bytes by
their content type and bytes. Only texts in which nothing was masked are kept, so the
memos never hold a value the masking rules call secret. A body sent in one chunk (the
usual response) is taken as it is, without a `BoundedBody` recorder.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.instrumentations._propagation import _asgi_has_headers
from lumigo_opentelemetry.masking import MASKED

if TYPE_CHECKING:
    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

_MEMO_SIZE = 256
_BODY_MEMO_LENGTH = 1024
_KEYED_HEADERS = (b"host", b"user-agent")
_UNSEEN: Any = object()


def keyed_headers(headers: Any) -> Tuple[Any, ...]:
    """The request headers contrib's span attributes depend on (host, user agent)."""
    return tuple([(k.lower(), v) for k, v in headers if k.lower() in _KEYED_HEADERS])


def _captured(
    key: str, compute: Callable[..., Optional[str]], *args: Any, **kwargs: Any
) -> Optional[str]:
    """`compute(...)` for attribute `key`, or None (logged at debug, as
    `payloads.set_captured` does) if it fails: the attribute is dropped."""
    try:
        return compute(*args, **kwargs)
    except Exception:
        logger.debug("capturing %s failed; attribute dropped", key, exc_info=True)
        return None


#: header names (bytes) -> the name as text when it is plain: ASCII, lower-case, starting
#: and ending with a letter or digit (what every reading of it, decoded or not, stripped
#: or not, agrees on); None for any other name (bounded: names come from requests)
_NAMES: Dict[bytes, Optional[str]] = {}
_NAMES_SIZE = 512
#: what a plain name is to `_scanned`: 1 content type, 2 memo key, 3 propagation
_ROLES = {
    "content-type": 1,
    "host": 2,
    "user-agent": 2,
    "traceparent": 3,
    "baggage": 3,
    "tracestate": 4,
}


def _plain_name(raw: bytes) -> Optional[str]:
    name: Optional[str] = None
    if raw.isascii() and raw == raw.lower() and raw[:1].isalnum() and raw[-1:].isalnum():
        name = raw.decode("ascii")
    if len(_NAMES) >= _NAMES_SIZE:
        _NAMES.clear()
    _NAMES[raw] = name
    return name


def _scanned(headers: List[Any], config: Config) -> Optional[Headers]:
    """What `Memos.request` makes of request `headers`, in one pass over them, when
    they are (bytes, bytes) tuples with plain names (see `_NAMES`); else None. The
    headers a propagator reads (`traceparent`, `tracestate`, `baggage`) are kept as
    `carrier` when their values are ASCII (each reading decodes them alike)."""
    merged: Dict[str, str] = {}
    content_type: Optional[str] = None
    keyed: List[Tuple[bytes, bytes]] = []
    propagated = False
    carrier: Optional[Dict[str, List[str]]] = None
    names = _NAMES
    roles = _ROLES
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            return None
        raw_name, raw_value = pair
        if type(raw_name) is not bytes or type(raw_value) is not bytes:
            return None
        name = names.get(raw_name, _UNSEEN)
        if name is _UNSEEN:
            name = _plain_name(raw_name)
        if name is None:
            return None
        value = raw_value.decode("latin-1")
        known = merged.get(name)
        merged[name] = value if known is None else known + ", " + value
        role = roles.get(name)
        if role is not None:
            if role == 1:
                if content_type is None:
                    content_type = value
            elif role == 2:
                keyed.append(pair)
            else:
                if role == 3:
                    propagated = True
                if carrier is None:
                    carrier = {}
                if raw_value.isascii():
                    carrier.setdefault(name, []).append(value)
                else:
                    carrier[""] = []  # a value each reading may decode its own way
    try:
        text: Optional[str] = payloads.merged_headers_text(
            merged, config, payloads.Site.HTTP_REQUEST_HEADERS
        )
    except Exception:
        logger.debug(
            "capturing %s failed; attribute dropped", payloads.REQUEST_HEADERS, exc_info=True
        )
        text = None
    seen = Headers(text, content_type, tuple(keyed), propagated)
    if propagated and carrier is not None and "" not in carrier:
        seen.carrier = carrier
    return seen


class Headers:
    """What a set of headers gives: its attribute text (None: dropped), its content
    type and, for request headers, the part of the span-attribute memo key it decides
    and whether a propagator may find a parent context in them (`propagated`: a
    `traceparent` or `baggage` header, as `_propagation` checks)."""

    __slots__ = ("carrier", "content_type", "keyed", "propagated", "text")

    def __init__(
        self,
        text: Optional[str],
        content_type: Optional[str],
        keyed: Tuple[Any, ...] = (),
        propagated: bool = True,
    ) -> None:
        self.text = text
        self.content_type = content_type
        self.keyed = keyed
        self.propagated = propagated
        #: the propagation headers by name (values in order), when known to be what
        #: contrib's ASGI getter reads; None: read the scope
        self.carrier: Optional[Dict[str, List[str]]] = None


class Memos:
    """The bounded memos of one middleware (one config)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.request_headers: Dict[Tuple[Any, ...], Headers] = {}
        self.response_headers: Dict[Tuple[Any, ...], Headers] = {}
        self.bodies: Dict[Tuple[Any, ...], str] = {}

    def request(self, headers: Any) -> Headers:
        """The request headers' text, content type and memo-key part."""
        try:
            pairs: Any = tuple(headers)
            known = self.request_headers.get(pairs)
        except TypeError:  # unhashable pairs: no memo
            pairs, known = None, None
        if known is not None:
            return known
        seen = _scanned(headers, self.config) if type(headers) is list else None
        if seen is None:
            config = self.config
            seen = Headers(
                _captured(payloads.REQUEST_HEADERS, payloads.headers_attribute, headers, config),
                payloads.header_value(headers, "content-type"),
                keyed_headers(headers),
                _asgi_has_headers({"headers": headers}),
            )
        if not seen.propagated:  # a traceparent makes each request's set its own
            _keep(self.request_headers, pairs, seen.text, seen)
        return seen

    def response(self, headers: Any) -> Headers:
        """The response headers' text and content type."""
        try:
            pairs: Any = tuple(headers)
            known = self.response_headers.get(pairs)
        except TypeError:  # unhashable pairs: no memo
            pairs, known = None, None
        if known is not None:
            return known
        seen = Headers(
            _captured(
                payloads.RESPONSE_HEADERS,
                payloads.headers_attribute,
                headers,
                self.config,
                payloads.Site.HTTP_RESPONSE_HEADERS,
            ),
            payloads.header_value(headers, "content-type"),
        )
        _keep(self.response_headers, pairs, seen.text, seen)
        return seen

    def body(
        self, data: bytes, total: int, content_type: Optional[str], site: payloads.Site
    ) -> Optional[str]:
        """`payloads.body_attribute` of a body's recorded beginning (None: not set)."""
        key = None
        if total == len(data) <= _BODY_MEMO_LENGTH and type(data) is bytes:
            key = (id(site), content_type, data)  # a Site member's hash runs Python
            known = self.bodies.get(key)
            if known is not None:
                return known
        text = _captured(
            payloads.RESPONSE_BODY
            if site is payloads.Site.HTTP_RESPONSE_BODIES
            else payloads.REQUEST_BODY,
            payloads.body_attribute,
            data,
            self.config,
            content_type,
            total_size=total,
            site=site,
        )
        _keep(self.bodies, key, text, text)
        return text


def _keep(memo: Dict[Any, Any], key: Any, text: Optional[str], value: Any) -> None:
    if key is None or text is None or MASKED in text:
        return
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value


class Body:
    """A body seen chunk by chunk: a lone last chunk as it is, else a `BoundedBody`."""

    __slots__ = ("limit", "recorder", "single")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.recorder: Optional[payloads.BoundedBody] = None
        self.single: Optional[bytes] = None

    def add(self, chunk: Any, last: bool) -> None:
        if self.recorder is None and self.single is None and last and type(chunk) is bytes:
            self.single = chunk
            return
        if self.recorder is None:
            self.recorder = payloads.BoundedBody(self.limit)
            if self.single is not None:
                self.recorder.add(self.single)
                self.single = None
        self.recorder.add(chunk)

    @property
    def total(self) -> int:
        single = self.single
        if single is not None:
            return len(single)
        return self.recorder.total if self.recorder is not None else 0

    @property
    def data(self) -> bytes:
        single = self.single
        if single is not None:
            return single if len(single) <= self.limit else single[: self.limit]
        return self.recorder.data if self.recorder is not None else b""


class Capture:
    """The payloads of one server span, set on `late` as the messages pass."""

    __slots__ = (
        "late",
        "memos",
        "request",
        "request_done",
        "request_type",
        "response",
        "response_type",
    )

    def __init__(self, memos: Memos, request_type: Optional[str], late: Dict[str, Any]) -> None:
        self.memos = memos
        self.late = late
        self.request: Optional[Body] = None
        self.response: Optional[Body] = None
        self.request_done = False
        self.request_type = request_type
        self.response_type: Optional[str] = None

    def on_receive(self, message: Any) -> None:
        if message.get("type") == "http.request":
            last = not message.get("more_body", False)
            request = self.request
            if request is None:
                request = self.request = Body(self.memos.config.attribute_length_limit)
            request.add(message.get("body"), last)
            if last:
                self.request_body()

    def request_body(self) -> None:
        if self.request_done:
            return
        self.request_done = True
        request = self.request
        if request is None:
            return
        text = self.memos.body(
            request.data, request.total, self.request_type, payloads.Site.HTTP_REQUEST_BODIES
        )
        if text is not None:
            self.late[payloads.REQUEST_BODY] = text

    def response_start(self, message: Any) -> None:
        seen = self.memos.response(message.get("headers") or [])
        self.response_type = seen.content_type
        if seen.text is not None:
            self.late[payloads.RESPONSE_HEADERS] = seen.text

    def response_body(self, message: Any, last: bool) -> None:
        response = self.response
        body = message.get("body")
        if response is None and last and type(body) is bytes:  # the usual lone chunk
            total = len(body)
            limit = max(0, self.memos.config.attribute_length_limit)
            data = body if total <= limit else body[:limit]
        else:
            if response is None:
                response = self.response = Body(self.memos.config.attribute_length_limit)
            response.add(body, last)
            if not last:
                return
            data, total = response.data, response.total
        if self.request is not None and self.request.total:
            self.request_body()
        text = self.memos.body(data, total, self.response_type, payloads.Site.HTTP_RESPONSE_BODIES)
        if text is not None:
            self.late[payloads.RESPONSE_BODY] = text
