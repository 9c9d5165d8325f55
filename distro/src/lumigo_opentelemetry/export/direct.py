"""OTLP posts on one kept-alive connection, where requests would add nothing.

A post through `requests` and `urllib3` (session merge, adapter, connection pool,
response wrapping) costs more instructions than encoding ten spans. `DirectTransport`
sends the same request line, headers and body on one kept-alive connection, when
nothing `requests` would do differs for the endpoint: checked once per URL against the
SDK's session: no proxy from the session or the environment
(`HTTP(S)_PROXY`, `ALL_PROXY`, `NO_PROXY`), no netrc entry, no session auth, hooks,
query parameters or mounted adapters of its own. TLS verifies as requests does: the
session's `verify` (the `OTEL_EXPORTER_OTLP_*CERTIFICATE` file), else
`REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`, else certifi's bundle; the client certificate
and key from the session's `cert`. Timeout, compression, retries and headers stay the
SDK's (`_OTLPHTTPClient` hands them in). Everything else (a proxy, a backend that has
set a cookie, another URL) goes to the `fallback` transport (`transport.py`), which
sets any cookie a direct response brought, so it goes back as with `requests`.
After a fork the child opens its own connection. The request head is prepared once
per URL and headers; the response is read by `http11.Connection` (the framing rules of
`http.client`, without its `email.parser` header parsing).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import ssl
import threading
import weakref
import zlib
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urlsplit

# everything an export may need is imported here, when the exporter is built (a fork is
# never made while that runs): no import runs on the batch processor's thread
import certifi
import requests
import requests.adapters
import requests.utils
from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport
from requests.cookies import MockRequest, MockResponse, RequestsCookieJar
from requests.structures import CaseInsensitiveDict

from lumigo_opentelemetry.export.http11 import Connection, host_header, request_head

_CONNECTION_ERRORS = (OSError, http.client.HTTPException)


class DirectResult(BaseHTTPResult):
    """A response read in full from the kept-alive connection."""

    __slots__ = ("_body", "_headers")
    _body: bytes
    _headers: Any

    def __init__(
        self,
        status_code: Optional[int] = None,
        reason: Optional[str] = None,
        error: Optional[Exception] = None,
        body: bytes = b"",
        headers: Any = None,
    ) -> None:
        object.__setattr__(self, "status_code", status_code)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "_body", body)
        object.__setattr__(self, "_headers", headers)

    def content(self) -> bytes:
        """The body, decoded as `requests` decodes it (gzip, deflate)."""
        coding = self._headers.get("Content-Encoding", "") if self._headers is not None else ""
        coding = coding.strip().lower()
        if self._body and coding in ("gzip", "x-gzip"):
            return gzip.decompress(self._body)
        if self._body and coding == "deflate":
            try:
                return zlib.decompress(self._body)
            except zlib.error:  # raw deflate, as some servers send it
                return zlib.decompress(self._body, -zlib.MAX_WBITS)
        return self._body

    def headers(self) -> Mapping[str, str]:
        found = self._headers
        merged: Dict[str, str] = {}
        if found is not None:
            for name in set(found.keys()):
                merged[name] = ", ".join(found.get_all(name) or ())
        return CaseInsensitiveDict(merged)


def _has_cookies(jar: Any) -> bool:
    """`bool(jar)`; a `RequestsCookieJar` with no domain at all answered without its
    `__len__`, which walks every cookie through generators."""
    if type(jar) is RequestsCookieJar and not getattr(jar, "_cookies", True):
        return False
    return bool(jar)


def _drop_connection(ref: weakref.ReferenceType[DirectTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport._lock = threading.Lock()
        transport._connection = None  # the parent's socket: left to the parent


def _tls_context(verify: Any, cert: Any) -> ssl.SSLContext:
    """An SSL context that checks the server as `requests` would with this session."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        where = verify if isinstance(verify, str) else None
        if where is None:
            where = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if where is None:
            where = certifi.where()
        if os.path.isdir(where):
            context = ssl.create_default_context(capath=where)
        else:
            context = ssl.create_default_context(cafile=where)
    if cert:
        if isinstance(cert, str):
            context.load_cert_chain(cert)
        else:
            context.load_cert_chain(cert[0], cert[1])
    context.set_alpn_protocols(["http/1.1"])
    return context


def _plain_session(session: Any, url: str) -> bool:
    """Whether `requests` would send a post to `url` as it is: no proxy, auth, hooks,
    parameters or adapters of the session's own."""
    if type(session) is not requests.Session or session.auth or session.params:
        return False
    if any(session.hooks.get(name) for name in session.hooks):
        return False
    if session.proxies or set(session.adapters) != {"https://", "http://"}:
        return False
    if any(type(a) is not requests.adapters.HTTPAdapter for a in session.adapters.values()):
        return False
    if session.trust_env:
        if requests.utils.get_environ_proxies(url, no_proxy=None):
            return False
        if requests.utils.get_netrc_auth(url):
            return False
    return True


class DirectTransport(BaseHTTPTransport):
    """Posts on one kept-alive connection; `fallback` (the SDK's requests session,
    prepared) for anything a plain connection would send differently."""

    def __init__(self, session: Any, fallback: BaseHTTPTransport) -> None:
        self._session = session
        self._fallback = fallback
        self._lock = threading.Lock()
        self._connection: Optional[Connection] = None
        # (url, headers, route): the route `_route` made for them, None: the fallback
        self._plan: Optional[Tuple[str, Dict[str, str], Optional[Tuple[Any, ...]]]] = None
        self._context: Optional[ssl.SSLContext] = None
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _drop_connection(ref))

    def _route(self, url: str, headers: Optional[Dict[str, str]]) -> Optional[Tuple[Any, ...]]:
        """(https, host, port, request head) when `url` can go direct."""
        known = self._plan
        given = headers or {}
        if known is not None and known[0] == url and known[1] == given:
            return known[2]
        route: Optional[Tuple[Any, ...]] = None
        parts = urlsplit(url)
        direct = parts.scheme in ("http", "https") and parts.hostname and not parts.username
        if direct and _plain_session(self._session, url):
            prepared = self._session.prepare_request(
                requests.Request(method="POST", url=url, headers=headers)
            )
            items = tuple(
                (name, value)
                for name, value in prepared.headers.items()
                if name.lower() not in ("content-length", "host")
            )
            target = prepared.path_url  # the request target requests would send
            https = parts.scheme == "https"
            default_port = 443 if https else 80
            port = parts.port or default_port
            host = str(parts.hostname)
            # what http.client sent: the request line, Host, then the headers
            head = request_head(
                "POST", target, [("Host", host_header(host, port, default_port)), *items]
            )
            route = (https, host, port, head)
            if https and self._context is None:
                self._context = _tls_context(self._session.verify, self._session.cert)
        self._plan = (url, dict(given), route)
        self._close()
        return route

    def _connect(self, route: Tuple[Any, ...], timeout: Optional[float]) -> Connection:
        https, host, port = route[0], route[1], route[2]
        return Connection(host, port, self._context if https else None, timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        data: Optional[bytes] = None,
    ) -> BaseHTTPResult:
        if method != "POST" or _has_cookies(self._session.cookies):
            return self._fallback.request(method, url, headers=headers, timeout=timeout, data=data)
        with self._lock:
            try:
                route = self._route(url, headers)
            except Exception:
                route = None
            if route is None:
                return self._fallback.request(
                    method, url, headers=headers, timeout=timeout, data=data
                )
            return self._send(route, method, url, timeout, data)

    def _send(
        self,
        route: Tuple[Any, ...],
        method: str,
        url: str,
        timeout: Optional[float],
        data: Optional[bytes],
    ) -> BaseHTTPResult:
        connection = self._connection
        try:
            if connection is None:
                self._connection = connection = self._connect(route, timeout)
            response = connection.post(route[3], data or b"", timeout)
        except _CONNECTION_ERRORS as error:
            self._close()
            return DirectResult(error=error)
        if response.will_close:
            self._close()
        headers = response.headers
        if headers.get("Set-Cookie") is not None:
            self._keep_cookies(url, headers)
        return DirectResult(response.status, response.reason, None, response.body, headers)

    def _keep_cookies(self, url: str, headers: Any) -> None:
        """The cookies a response set, in the session: the next posts take the
        fallback (requests), which sends them back."""
        request = requests.Request(method="POST", url=url).prepare()
        self._session.cookies.extract_cookies(MockResponse(headers), MockRequest(request))

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def is_connection_error(self, exception: Optional[Exception]) -> bool:
        if isinstance(exception, _CONNECTION_ERRORS):
            return True
        return bool(self._fallback.is_connection_error(exception))

    def close(self) -> None:
        with self._lock:
            self._close()
        self._fallback.close()
