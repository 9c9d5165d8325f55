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
_MEMO_SIZE = 256


def memoized(
    collect: Callable[..., Dict[str, Any]],
    mask: Callable[[Dict[str, Any]], Dict[str, Any]],
    copy: Callable[[Dict[str, Any]], Dict[str, Any]] = dict,
    check: Callable[[Dict[str, Any]], bool] = lambda attributes: False,
) -> Callable[[Dict[str, Any], bool], Tuple[Dict[str, Any], bool]]:
    """contrib's request attributes are a pure function of a few environ values: a
    keep-alive connection asking for the same URL gets them from a bounded memo (a
    `copy`), and so does a server span get them masked (`mask`, once per memo entry).
    With each copy comes the memo's verdict `check` gave for them (False: none).
    A miss (a new query, client port or user agent: most requests of a real server)
    builds them without contrib's call layers when `_wsgi_attributes` can."""
    from lumigo_opentelemetry.instrumentations._wsgi_attributes import lean_collect

    collect = lean_collect(collect)
    memo: Dict[Tuple[Any, ...], List[Any]] = {}

    def collect_request_attributes(
        environ: Dict[str, Any], masked: bool
    ) -> Tuple[Dict[str, Any], bool]:
        key = tuple(map(environ.get, _REQUEST_KEYS))
        try:
            known = memo.get(key)
        except TypeError:  # an unhashable value: no memo
            found = collect(environ)
            return copy(mask(found) if masked else found), False
        if known is None:
            known = [collect(environ), None, None, False]  # checked when first needed
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[key] = known
        if not masked:
            verdict = known[1]
            if verdict is None:
                verdict = known[1] = check(known[0])
            return copy(known[0]), verdict
        masked_copy = known[2]
        if masked_copy is None:
            masked_copy = known[2] = mask(known[0])
            known[3] = check(masked_copy)
        return copy(masked_copy), known[3]

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
