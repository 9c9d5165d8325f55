"""A cheaper way for the SDK's OTLP/HTTP client to post a batch through its requests session.

`requests.Session.request` rebuilds, on every call, what is the same for every post to
one endpoint: the merged headers, the proxy and CA-bundle settings read from the
environment (a scan of `os.environ` per call, on top of a netrc lookup), the cookie
merge. `PreparedPostTransport` does that once per (method, URL, headers) and then, per
post, copies the prepared request, sets its body and sends it through the same session
(same connection pool, TLS settings, proxies, adapters, timeout). What goes on the wire
is what `Session.request` sends. The environment's proxy and CA-bundle settings are
read when the first post is prepared; a change of them afterwards is not seen. Once the
backend has set a cookie, each post is prepared afresh (`Session.request`), so the
cookie goes back with the next one as it would without this transport.

Used only when the SDK's transport is its plain requests transport over a plain
`requests.Session` (a credential-provider session may override `request`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

try:  # the SDK's transport layer (opentelemetry-exporter-otlp-proto-http >= 1.40 or so)
    from opentelemetry.exporter.http.transport._requests import (
        RequestsHTTPResult,
        RequestsHTTPTransport,
    )
except ImportError:  # pragma: no cover - older SDK: its exporter's own post is used
    RequestsHTTPTransport = None  # type: ignore[assignment,misc]


def lean_transport(transport: Any) -> Optional[Any]:
    """A `DirectTransport` (kept-alive `http.client` connection, see `direct`) over a
    `PreparedPostTransport` of `transport`'s session, or None when `transport` is not
    the SDK's requests transport over a plain `requests.Session`."""
    if RequestsHTTPTransport is None or type(transport) is not RequestsHTTPTransport:
        return None
    import requests

    session = getattr(transport, "_session", None)
    if type(session) is not requests.Session:
        return None
    prepared = PreparedPostTransport(session)
    try:
        from lumigo_opentelemetry.export.direct import DirectTransport
    except ImportError:  # pragma: no cover - an SDK without the transport base
        return prepared
    return DirectTransport(session, prepared)


if RequestsHTTPTransport is not None:

    class PreparedPostTransport(RequestsHTTPTransport):
        """The SDK's requests transport, preparing each distinct post once."""

        def __init__(self, session: Any) -> None:  # the session is already configured
            self._session = session
            # (method, url, headers) -> (prepared request without body, send settings)
            self._prepared: Optional[Tuple[Tuple[Any, ...], Any, Any]] = None

        def _template(
            self, method: str, url: str, headers: Optional[Dict[str, str]]
        ) -> Tuple[Any, Any]:
            key: Tuple[Any, ...] = (method, url, tuple(headers.items()) if headers else ())
            known = self._prepared
            if known is None or known[0] != key:
                import requests

                session = self._session
                prepared = session.prepare_request(
                    requests.Request(method=method.upper(), url=url, headers=headers)
                )
                # what Session.request merges in per call: env proxies, CA bundle, stream
                settings = session.merge_environment_settings(prepared.url, {}, None, None, None)
                self._prepared = known = (key, prepared, settings)
            return known[1], known[2]

        def request(
            self,
            method: str,
            url: str,
            *,
            headers: Optional[Dict[str, str]] = None,
            timeout: Optional[float] = None,
            data: Optional[bytes] = None,
        ) -> Any:
            if self._session.cookies:
                # a backend that sets cookies gets them back as `Session.request` does
                # (merged into each request afresh): no prepared request then
                return super().request(method, url, headers=headers, timeout=timeout, data=data)
            try:
                template, settings = self._template(method, url, headers)
                prepared = template.copy()
                prepared.prepare_body(data, None)
                response = self._session.send(
                    prepared, timeout=timeout, allow_redirects=False, **settings
                )
            except Exception as error:
                return RequestsHTTPResult(error=error)
            return RequestsHTTPResult(
                status_code=response.status_code, reason=response.reason, response=response
            )
