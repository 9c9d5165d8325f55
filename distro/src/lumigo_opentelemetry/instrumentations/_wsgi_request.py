"""The request side of the lean WSGI server-span paths (Flask, Django).

contrib's WSGI request attributes from a bounded memo (`memoized`; a miss built by
`_wsgi_attributes` where it reproduces contrib's release), the HTTP methods
every contrib release keeps in span names, and contrib's custom request/response header
collectors when they are configured.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

#: every environ key contrib's `collect_request_attributes` reads
_REQUEST_KEYS = (
    "REQUEST_METHOD",
    "SERVER_NAME",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_PORT",
    "RAW_URI",
    "REQUEST_URI",
    "PATH_INFO",
    "QUERY_STRING",
    "SCRIPT_NAME",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_HOST",
    "HTTP_USER_AGENT",
    "SERVER_PROTOCOL",
    "HTTPS",  # and two that other contrib releases may read
    "HTTP_X_FORWARDED_FOR",
)
#: the memo key's environ values: all of them but the client's address and port and the
#: request target's (`_URI_KEYS`, which the key's target part stands for)
_URI_KEYS = ("RAW_URI", "REQUEST_URI", "QUERY_STRING")
_SHAPE_KEYS = tuple(k for k in _REQUEST_KEYS if k not in ("REMOTE_ADDR", "REMOTE_PORT", *_URI_KEYS))
#: what the key holds for a key the environ lacks (contrib reads some with a default)
_ABSENT: Any = object()
_ABSENTS = (_ABSENT,) * len(_SHAPE_KEYS)
_ANY_PEER: Any = ("lumigo.any-peer",)  # the key's client part when the copy gets the client
_ANY_TARGET: Any = ("lumigo.any-target",)  # the key's target part: `http.target` per request
_ANY_QUERY: Any = ("lumigo.any-query",)  # the key's query part: `http.url` per request
_PEER_IP = "net.peer.ip"
_PEER_PORT = "net.peer.port"
_TARGET = "http.target"
_URL = "http.url"
_MEMO_SIZE = 256

Unchecked = Optional[Dict[str, Any]]


class _Entry:
    """A memo entry: contrib's attributes of a request shape, the masked copy and
    `check`'s verdicts (None: not yet asked), and for a shape whose target or query
    varies, the attribute they decide (`varying`) and the URL before the query."""

    __slots__ = ("base", "clean", "found", "masked", "masked_clean", "varying")

    def __init__(self, found: Dict[str, Any], varying: Optional[str], base: Optional[str]):
        self.found = found
        self.varying = varying
        self.base = base
        self.clean: Optional[bool] = None
        self.masked: Optional[Dict[str, Any]] = None
        self.masked_clean = False

    def rest(self, attributes: Dict[str, Any]) -> Dict[str, Any]:
        """`attributes` without the one the target or query decides."""
        varying = self.varying
        return {k: v for k, v in attributes.items() if k != varying}


def memoized(
    collect: Callable[..., Dict[str, Any]],
    mask: Callable[[Dict[str, Any]], Dict[str, Any]],
    copy: Callable[[Dict[str, Any]], Dict[str, Any]] = dict,
    check: Callable[[Dict[str, Any]], bool] = lambda attributes: False,
    max_length: Optional[int] = None,
    mask_url: Optional[Callable[[str, Any], Any]] = None,
) -> Callable[[Dict[str, Any], bool], Tuple[Dict[str, Any], Unchecked]]:
    """contrib's request attributes are a pure function of a few environ values: a
    request asking for the same URL gets them from a bounded memo (a `copy`), and so
    does a server span get them masked (`mask`, once per memo entry). With each copy
    come the attributes `check` has not found clean (`{}`: all are; None: unknown),
    for `_fastspan.start_span`'s `unchecked`. The client's address and port, which
    change with every connection (a new port per request under a server that closes
    each one), are not part of the key: they are set on the copy, in the place contrib
    gives them (`max_length`: the tracer's attribute length limit, which an address set
    this way must be within). Nor, when `_wsgi_attributes` builds the attributes, is the
    request target or query (a new id per request on real traffic): the one attribute
    they decide (`http.target`, or `http.url`) is set per request, masked on its own
    (`mask` masks each URL attribute on its own, as `payloads.url_masked` does;
    `mask_url(key, value)`, when given, is what it gives for that one) and left to the
    check. A miss (a new path or user agent) builds them without contrib's
    call layers when `_wsgi_attributes` can."""
    from lumigo_opentelemetry.instrumentations._wsgi_attributes import lean_collect, query_split

    collect = lean_collect(collect)
    builder = query_split(collect)
    split = builder is not None
    memo: Dict[Tuple[Any, ...], _Entry] = {}

    def entry_of(
        environ: Dict[str, Any],
        key: Tuple[Any, ...],
        part: Tuple[Any, Any, Any],
        peer: Optional[Tuple[str, int]],
    ) -> Tuple[_Entry, Optional[Tuple[str, int]]]:
        """A new memo entry for `environ` (kept when it may be), and the client to set
        on its copies (None: the entry's own); `part`: the key's target part."""
        found = collect(environ)
        varying: Optional[str] = None
        base: Optional[str] = None
        if part[0] is _ANY_TARGET:
            varying = _TARGET
            get = environ.get
            target = get("RAW_URI")
            if found.get(_TARGET) != (target if target is not None else get("REQUEST_URI")):
                return _Entry(found, None, None), None  # not what the split stands for
        elif part[2] is _ANY_QUERY and builder is not None:
            varying = _URL
            base = builder.base(environ)
            url = None if base is None else builder.query_url(base, environ.get("QUERY_STRING"))
            if url is None or found.get(_URL) != url:
                return _Entry(found, None, None), None
        known = _Entry(found, varying, base)
        if peer is not None and (found.get(_PEER_IP), found.get(_PEER_PORT)) != peer:
            return known, None  # not the client attributes the key stands for: not kept
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = known
        return known, peer

    def value_of(known: _Entry, environ: Dict[str, Any]) -> Any:
        """The varying attribute's value for `environ`, or None: not known here."""
        get = environ.get
        if known.varying is _TARGET:
            target = get("RAW_URI")
            return target if target is not None else get("REQUEST_URI")
        return builder.query_url(known.base, get("QUERY_STRING"))  # type: ignore[union-attr,arg-type]

    def collect_request_attributes(
        environ: Dict[str, Any], masked: bool
    ) -> Tuple[Dict[str, Any], Unchecked]:
        get = environ.get
        # the client's (address, port) when contrib records them as they are, under
        # `net.peer.ip` and `net.peer.port` (a non-empty address within the length limit,
        # a port of ASCII digits, no `REMOTE_HOST` compared with the address): `peer`,
        # set on the copy, and the key's client part `_ANY_PEER`; else the values
        address = get("REMOTE_ADDR")
        port = get("REMOTE_PORT")
        peer: Optional[Tuple[str, int]] = None
        if (
            type(address) is str
            and address
            and type(port) is str
            and port.isdigit()
            and port.isascii()
            and "REMOTE_HOST" not in environ
            and (max_length is None or len(address) <= max_length)
        ):
            peer = (address, int(port))
            client = _ANY_PEER
        else:
            client = (address, port)
        # the key's part for the request target: for a request with a query (on real
        # traffic, often one of its own), `_ANY_TARGET` when contrib records the target
        # as it is (`http.target`), `_ANY_QUERY` in place of the query when it builds
        # `http.url` from it (`split`: a `_Builder` knows how); else the values themselves
        raw_uri = get("RAW_URI")
        request_uri = get("REQUEST_URI")
        query = get("QUERY_STRING")
        if split:
            target = raw_uri if raw_uri is not None else request_uri
            if target:
                if type(target) is str and "?" in target:
                    raw_uri = _ANY_TARGET
                    request_uri = query = None
            elif query and type(query) is str:
                query = _ANY_QUERY
        key = (*map(get, _SHAPE_KEYS, _ABSENTS), raw_uri, request_uri, query, client)
        try:
            known = memo.get(key)
        except TypeError:  # an unhashable value: no memo
            found = collect(environ)
            return copy(mask(found) if masked else found), None
        if known is None:
            known, peer = entry_of(environ, key, (raw_uri, request_uri, query), peer)
        varying = known.varying
        value = None
        if varying is not None:
            value = value_of(known, environ)
            if masked and value is not None:
                try:
                    if mask_url is not None:
                        value = mask_url(varying, value)
                    else:
                        value = mask({varying: value}).get(varying)
                except Exception:  # the general way: `mask` says what a failure gives
                    value = None
            if value is None:  # not from the entry: the general way, not kept
                found = collect(environ)
                return copy(mask(found) if masked else found), None
        if not masked:
            clean = known.clean
            if clean is None:
                found = known.found
                clean = known.clean = bool(check(found if varying is None else known.rest(found)))
            result = copy(known.found)
        else:
            masked_copy = known.masked
            if masked_copy is None:
                masked_copy = known.masked = mask(known.found)
                known.masked_clean = bool(
                    check(masked_copy if varying is None else known.rest(masked_copy))
                )
            result, clean = copy(masked_copy), known.masked_clean
        unchecked: Unchecked = {} if clean else None
        if varying is not None:
            result[varying] = value
            if unchecked is not None:
                unchecked[varying] = value
        if peer is not None:
            result[_PEER_IP], result[_PEER_PORT] = peer
        return result, unchecked

    return collect_request_attributes


#: methods every contrib release keeps as they are (upper-cased) in span names
COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


_Collector = Optional[Callable[..., Any]]


def custom_header_collectors() -> Tuple[_Collector, _Collector]:
    """contrib's custom request/response header attributes, when configured at all."""
    from opentelemetry.instrumentation.wsgi import (
        collect_custom_request_headers_attributes,
        collect_custom_response_headers_attributes,
    )
    from opentelemetry.util.http import (
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST,
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE,
        get_custom_headers,
    )

    request = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST)
    response = get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE)
    return (
        collect_custom_request_headers_attributes if request else None,
        collect_custom_response_headers_attributes if response else None,
    )
