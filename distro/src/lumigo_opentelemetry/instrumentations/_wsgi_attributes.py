"""contrib's WSGI request attributes, built without its call layers on the usual environ.

`opentelemetry-instrumentation-wsgi`'s `collect_request_attributes`, on the default
(old) HTTP semantic conventions, copies a dozen environ values into attributes through
a helper per attribute, and for `http.url` runs `urllib.parse` three times
(`wsgiref.util.request_uri`, then `redact_url`'s credential and query checks). On a
real server's traffic (a query, client port or user agent per request) the request
attribute memo misses and that is the cost of every request.

`lean_collect(collect)` gives the same dictionary (keys, order, values) from plain
reads, for the contrib release it was checked against (`_contrib_http.CHECKED`: the one the golden
tests run), when the environ looks usual (a common method, `str` values); anything
else, and any other release, goes to contrib's own function. `redact_url` is run only
when the URL could hold what it changes (userinfo, a query parameter it redacts).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from lumigo_opentelemetry.instrumentations._contrib_http import (
    SyntheticAgents,
    UrlRedaction,
    checked_release,
)

#: methods every contrib release keeps as they are (its `sanitize_method`)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
_MEMO_SIZE = 256

Collect = Callable[[Dict[str, Any]], Dict[str, Any]]


def lean_collect(collect: Collect) -> Collect:
    """`collect` itself unless it is contrib's `collect_request_attributes` of a
    `CHECKED` release; then the same function, built from plain reads where it can."""
    try:
        from opentelemetry.instrumentation import wsgi

        if collect is not wsgi.collect_request_attributes or not checked_release(
            "opentelemetry-instrumentation-wsgi"
        ):
            return collect
        return _Builder(collect).collect
    except Exception:
        return collect


def query_split(collect: Collect) -> Optional[_Builder]:
    """The `_Builder` behind `collect` (a `lean_collect` result), or None: with it, the
    attributes of environs that differ only by their target or query differ only in
    `http.target` (the target as it is) or `http.url` (`base` and `query_url`)."""
    builder = getattr(collect, "__self__", None)
    return builder if type(builder) is _Builder else None


class _Builder:
    """The attributes of one environ, as `contrib(environ)` gives them."""

    def __init__(self, contrib: Collect) -> None:
        from wsgiref.util import request_uri

        self._contrib = contrib
        self._request_uri = request_uri
        self._redact = UrlRedaction()
        # (scheme, host, server name, server port, script name, path) -> URL without query
        self._bases: Dict[Tuple[Any, ...], str] = {}
        self._agent_type = SyntheticAgents()

    def collect(self, environ: Dict[str, Any]) -> Dict[str, Any]:
        method = environ.get("REQUEST_METHOD", "")
        flavor = environ.get("SERVER_PROTOCOL", "")
        agent = environ.get("HTTP_USER_AGENT")
        if (
            method not in _METHODS
            or type(method) is not str
            or type(flavor) is not str
            or (agent is not None and type(agent) is not str)
        ):
            return self._contrib(environ)
        get = environ.get
        result: Dict[str, Any] = {"http.method": method}
        server_name = get("SERVER_NAME")
        result["http.server_name"] = server_name
        scheme = get("wsgi.url_scheme")
        if scheme:
            result["http.scheme"] = scheme
        host = get("HTTP_HOST")
        if host:
            result["net.host.name"] = host
            result["http.host"] = host
        host_port = get("SERVER_PORT")
        if host_port:
            try:
                port = int(host_port)
            except (ValueError, TypeError):
                return self._contrib(environ)  # contrib raises what it raises
            if port:
                result["net.host.port"] = port
        target = get("RAW_URI")
        if target is None:
            target = get("REQUEST_URI")
        if target:
            result["http.target"] = target
        else:
            url = self._url(environ)
            if url is None:
                return self._contrib(environ)
            result["http.url"] = url
        remote_addr = get("REMOTE_ADDR")
        if remote_addr:
            result["net.peer.ip"] = remote_addr
        _set_int(result, "net.peer.port", get("REMOTE_PORT"))
        remote_host = get("REMOTE_HOST")
        if remote_host and remote_host != remote_addr:
            result["net.peer.name"] = remote_host
        if agent:
            result["http.user_agent"] = agent
            synthetic = self._agent_type(agent)
            if synthetic:
                result["user_agent.synthetic.type"] = synthetic
        if flavor.upper().startswith("HTTP/"):
            flavor = flavor[5:]
        if flavor:
            result["http.flavor"] = flavor
        return result

    def _url(self, environ: Dict[str, Any]) -> Optional[str]:
        """`redact_url(request_uri(environ))`; None when `request_uri` fails (contrib
        then raises what it raises)."""
        base = self.base(environ)
        return None if base is None else self.query_url(base, environ.get("QUERY_STRING"))

    def base(self, environ: Dict[str, Any]) -> Optional[str]:
        """`request_uri(environ, include_query=False)` (remembered, bounded); None when
        it fails or is not a `str`."""
        get = environ.get
        key = (
            get("wsgi.url_scheme"),
            get("HTTP_HOST"),
            get("SERVER_NAME"),
            get("SERVER_PORT"),
            get("SCRIPT_NAME"),
            get("PATH_INFO", ""),
        )
        bases = self._bases
        try:
            base = bases.get(key)
        except TypeError:  # an unhashable value
            return None
        if base is None:
            try:
                base = self._request_uri(environ, include_query=False)
            except Exception:
                return None
            if type(base) is not str:
                return None
            if len(bases) >= _MEMO_SIZE:
                bases.clear()
            bases[key] = base
        return base

    def query_url(self, base: str, query: Any) -> Optional[str]:
        """`http.url` of an environ whose `base` is `base` and whose `QUERY_STRING` is
        `query`; None when the query is not a `str` (nor empty)."""
        if query and type(query) is not str:
            return None
        return self._redact(base + "?" + query if query else base)


def _set_int(result: Dict[str, Any], key: str, value: Any) -> None:
    """contrib's `set_int_attribute`."""
    if value:
        try:
            number = int(value)
        except (ValueError, TypeError):
            return
        result[key] = number
