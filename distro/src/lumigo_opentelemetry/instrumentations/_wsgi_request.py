"""The request side of the lean WSGI server-span paths (Flask, Django).

contrib's WSGI request attributes from a bounded memo (`memoized`; a miss built by
`_wsgi_attributes` where it reproduces contrib's release), the HTTP methods
every contrib release keeps in span names, and contrib's custom request/response header
collectors when they are configured.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

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
#: the memo key's environ values: all of them but the client's address and port
_SHAPE_KEYS = tuple(k for k in _REQUEST_KEYS if k not in ("REMOTE_ADDR", "REMOTE_PORT"))
_ANY_PEER: Any = ("lumigo.any-peer",)  # the key's client part when `_peer` gives the client
_PEER_IP = "net.peer.ip"
_PEER_PORT = "net.peer.port"
_MEMO_SIZE = 256


def _peer(environ: Dict[str, Any], max_length: Optional[int]) -> Optional[Tuple[str, int]]:
    """The client's (address, port) when contrib records them as they are, under
    `net.peer.ip` and `net.peer.port` (a non-empty address within the length limit, a
    port of ASCII digits, no `REMOTE_HOST` compared with the address), else None."""
    address = environ.get("REMOTE_ADDR")
    port = environ.get("REMOTE_PORT")
    if (
        type(address) is not str
        or not address
        or type(port) is not str
        or not port.isdigit()
        or not port.isascii()
        or "REMOTE_HOST" in environ
    ):
        return None
    if max_length is not None and len(address) > max_length:
        return None
    return address, int(port)


def memoized(
    collect: Callable[..., Dict[str, Any]],
    mask: Callable[[Dict[str, Any]], Dict[str, Any]],
    copy: Callable[[Dict[str, Any]], Dict[str, Any]] = dict,
    check: Callable[[Dict[str, Any]], bool] = lambda attributes: False,
    max_length: Optional[int] = None,
) -> Callable[[Dict[str, Any], bool], Tuple[Dict[str, Any], bool]]:
    """contrib's request attributes are a pure function of a few environ values: a
    request asking for the same URL gets them from a bounded memo (a `copy`), and so
    does a server span get them masked (`mask`, once per memo entry). With each copy
    comes the memo's verdict `check` gave for them (False: none). The client's address
    and port, which change with every connection (a new port per request under a server
    that closes each one), are not part of the key: they are set on the copy, in the
    place contrib gives them (`max_length`: the tracer's attribute length limit, which
    an address set this way must be within). A miss (a new query or user agent)
    builds them without contrib's call layers when `_wsgi_attributes` can."""
    from lumigo_opentelemetry.instrumentations._wsgi_attributes import lean_collect

    collect = lean_collect(collect)
    memo: Dict[Tuple[Any, ...], List[Any]] = {}

    def collect_request_attributes(
        environ: Dict[str, Any], masked: bool
    ) -> Tuple[Dict[str, Any], bool]:
        get = environ.get
        peer = _peer(environ, max_length)
        client = _ANY_PEER if peer is not None else (get("REMOTE_ADDR"), get("REMOTE_PORT"))
        key = (*map(get, _SHAPE_KEYS), client)
        try:
            known = memo.get(key)
        except TypeError:  # an unhashable value: no memo
            found = collect(environ)
            return copy(mask(found) if masked else found), False
        if known is None:
            found = collect(environ)
            known = [found, None, None, False]  # checked when first needed
            if peer is not None and (found.get(_PEER_IP), found.get(_PEER_PORT)) != peer:
                peer = None  # not the client attributes `_peer` stands for: not kept
            else:
                if len(memo) >= _MEMO_SIZE:
                    memo.clear()
                memo[key] = known
        if not masked:
            verdict = known[1]
            if verdict is None:
                verdict = known[1] = check(known[0])
            result = copy(known[0])
        else:
            masked_copy = known[2]
            if masked_copy is None:
                masked_copy = known[2] = mask(known[0])
                known[3] = check(masked_copy)
            result, verdict = copy(masked_copy), known[3]
        if peer is not None:
            result[_PEER_IP], result[_PEER_PORT] = peer
        return result, verdict

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
