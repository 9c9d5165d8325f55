"""contrib's ASGI request attributes, built without its call layers on the usual scope.

`opentelemetry-instrumentation-asgi`'s `collect_request_attributes`, on the default
(old) HTTP semantic conventions, reads the host and user-agent headers by decoding every
header name twice, sets each attribute through a helper, and runs `urllib.parse` twice
on `http.url` (`redact_url`). On a real server's traffic (a query, client port or user
agent per request) the lean path's request-shape memo misses and that is the cost of
every request.

`lean_collect(collect)` gives the same dictionary (keys, order, values) from plain
reads, for the contrib release it was checked against (`_contrib_http.CHECKED`: the one the golden
tests run), when the scope looks usual (a common method; `str` scheme and path; a
`(str, int)` server and client; `bytes` header pairs and query); anything else, and
any other release, goes to contrib's own function. `redact_url` is run only when the
URL could hold what it changes (userinfo, an escape, a character `urlsplit` drops, a
query parameter it redacts).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from lumigo_opentelemetry.instrumentations._contrib_http import (
    SyntheticAgents,
    UrlRedaction,
    checked_release,
)

#: methods every contrib release keeps as they are (its `sanitize_method`)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
_HOST = b"host"
_AGENT = b"user-agent"
_DEFAULT_SERVER = ("0.0.0.0", 80)

Collect = Callable[..., Dict[str, Any]]


def lean_collect(collect: Collect) -> Collect:
    """`collect` itself unless it is contrib's `collect_request_attributes` of a
    `CHECKED` release; then the same function (on the default semantic conventions),
    built from plain reads where it can."""
    try:
        from opentelemetry.instrumentation import asgi

        if collect is not asgi.collect_request_attributes or not checked_release(
            "opentelemetry-instrumentation-asgi"
        ):
            return collect
        return _Builder(collect).collect
    except Exception:
        return collect


def query_split(collect: Collect) -> Optional[Any]:
    """The `_Builder` behind `collect` (a `lean_collect` result), or None: its `split`
    and `query_url` give a scope's attributes without its query, then `http.url` (the
    one attribute the query decides) per query."""
    builder = getattr(collect, "__self__", None)
    return builder if type(builder) is _Builder else None


def _pair(value: Any, first: type) -> bool:
    """Whether `value` is a (first, int) pair (an address and a port)."""
    kind = type(value)
    return (
        (kind is tuple or kind is list)
        and len(value) == 2
        and type(value[0]) is first
        and type(value[1]) is int
    )


class _Builder:
    """The attributes of one scope, as `contrib(scope)` gives them."""

    def __init__(self, contrib: Collect) -> None:
        from urllib.parse import unquote

        self._contrib = contrib
        self._unquote = unquote
        self._redact = UrlRedaction()
        self._agent_type = SyntheticAgents()

    def collect(self, scope: Any, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        if args or kwargs:  # another semantic-convention mode: contrib's own
            return self._contrib(scope, *args, **kwargs)
        built = self._build(scope, True)
        return self._contrib(scope) if built is None else built[0]

    def split(self, scope: Any) -> Optional[Tuple[Dict[str, Any], str]]:
        """What `collect` gives for `scope` without its query (`http.url` aside, which
        `query_url` gives per query), and its URL before the query (unredacted); None:
        not from plain reads."""
        return self._build(scope, False)

    def query_url(self, base: str, query: Any) -> Optional[str]:
        """`http.url` as `collect` gives it for a scope whose `split` URL is `base` and
        whose query is `query` (non-empty); None: not known here."""
        if type(query) is bytes:
            try:
                query = query.decode("utf8")
            except ValueError:
                return None
        elif type(query) is not str:
            return None
        return self._redact(base + "?" + (self._unquote(query) if "%" in query else query))

    def _build(self, scope: Any, with_query: bool = True) -> Optional[Tuple[Dict[str, Any], str]]:
        """The attributes (with the query's URL, or without it) and the URL before
        the query, unredacted."""
        get = scope.get
        method = get("method", "")
        scheme = get("scheme", "http")
        path = get("path", "")
        server = get("server") or _DEFAULT_SERVER
        client = get("client")
        if (
            method not in _METHODS
            or type(method) is not str
            or type(scheme) is not str
            or type(path) is not str
            or not _pair(server, str)
            or (client is not None and not _pair(client, str))
        ):
            return None
        hosts: List[str] = []
        agent: Optional[str] = None
        headers = get("headers")
        if headers:
            kind = type(headers)
            if kind is not list and kind is not tuple:
                return None
            try:
                for name, value in headers:
                    if type(name) is not bytes or type(value) is not bytes:
                        return None
                    lowered = name.lower()
                    if lowered == _HOST:
                        hosts.append(value.decode("utf-8"))
                    elif lowered == _AGENT and agent is None:
                        agent = value.decode("utf-8")
                    elif not name.isascii():
                        return None  # a name decoding to one of them: contrib's reading
            except (ValueError, TypeError):  # not pairs, or not UTF-8: contrib's reading
                return None
        host, port = server
        server_host = host if port == 80 else host + ":" + str(port)
        base = scheme + "://" + (hosts[0] if hosts else server_host) + path
        query = get("query_string") if with_query else None
        if query:
            found = self.query_url(base, query)
            if found is None:
                return None
            url = found
        else:
            url = self._redact(base)
        result: Dict[str, Any] = {}
        scheme = get("scheme")
        if scheme:
            result["http.scheme"] = scheme
        if server_host:
            result["http.host"] = server_host
        if port:
            result["net.host.port"] = port
        flavor = get("http_version")
        if flavor:
            result["http.flavor"] = flavor
        if path:
            result["http.target"] = path
        if url:
            result["http.url"] = url
        result["http.method"] = method
        if hosts:
            result["http.server_name"] = ",".join(hosts)
        if agent is not None:
            if agent:
                result["http.user_agent"] = agent
            synthetic = self._agent_type(agent)
            if synthetic:
                result["user_agent.synthetic.type"] = synthetic
        if client is not None:
            peer_ip, peer_port = client
            if peer_ip:
                result["net.peer.ip"] = peer_ip
            if peer_port:
                result["net.peer.port"] = peer_port
        return result, base
