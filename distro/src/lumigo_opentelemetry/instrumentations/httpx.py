"""httpx (sync and async clients): one CLIENT span per request, and `traceparent` on it.

Built on opentelemetry-instrumentation-httpx (span `<METHOD>`, URL, status, peer; the
current context is injected into the outgoing headers, so the callee's server span
joins the caller's trace). On top of it, as the upstream distro does:

- `http.request.headers` and `http.request.body`: the body only when it is in memory
  (`content=`, `json=`, `data=` of bytes/str/form); a streamed upload (a generator, a
  file) is never read by us;
- `http.response.headers` (the response body is the app's stream: left alone);
- secret headers, JSON/form fields and query parameters masked, everything truncated.

Hooks are guarded: a capture failure drops that attribute, the request goes out as is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from lumigo_opentelemetry.instrumentations import _release, payloads

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "httpx"
HOOK_MODULE = "httpx"

_LOG = logging.getLogger("lumigo-opentelemetry.httpx")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    return HTTPXClientInstrumentor()


def in_memory_body(stream: Any) -> Optional[bytes]:
    """The request body when httpx holds it in memory (`httpx.ByteStream`), else None."""
    import httpx

    if isinstance(stream, httpx.ByteStream):
        return b"".join(stream)  # a ByteStream yields its one bytes object, again each time
    return None


class _Hooks:
    def __init__(self, config: Config) -> None:
        self.config = config

    def request(self, span: Span, request: Any) -> None:
        try:
            if not span.is_recording():
                return
            _method, _url, headers, stream, _extensions = request
            config = self.config
            if headers is not None:
                payloads.set_captured(
                    span, payloads.REQUEST_HEADERS, payloads.headers_attribute, headers, config
                )
            content_type = headers.get("content-type") if headers is not None else None
            payloads.set_captured(
                span,
                payloads.REQUEST_BODY,
                lambda: payloads.body_attribute(in_memory_body(stream), config, content_type),
            )
        except Exception:
            _LOG.debug("httpx request capture failed", exc_info=True)

    def response(self, span: Span, _request: Any, response: Any) -> None:
        try:
            if not span.is_recording():
                return
            headers = response[1]
            if headers is not None:
                payloads.set_captured(
                    span,
                    payloads.RESPONSE_HEADERS,
                    payloads.headers_attribute,
                    headers,
                    self.config,
                    payloads.Site.HTTP_RESPONSE_HEADERS,
                )
            payloads.mask_span_urls(span, self.config)
        except Exception:
            _LOG.debug("httpx response capture failed", exc_info=True)

    async def async_request(self, span: Span, request: Any) -> None:
        self.request(span, request)

    async def async_response(self, span: Span, request: Any, response: Any) -> None:
        self.response(span, request, response)


_hooks: Optional[_Hooks] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument httpx's transports once; a later call only refreshes the configuration."""
    global _hooks
    if _hooks is None:
        _hooks = _Hooks(config)
    else:
        _hooks.config = config
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(
            tracer_provider=tracer_provider,
            request_hook=_hooks.request,
            response_hook=_hooks.response,
            async_request_hook=_hooks.async_request,
            async_response_hook=_hooks.async_response,
            skip_dep_check=True,
        )
    _release_errors()


#: the transports' methods contrib wraps, and the name of its wrapper of each
_TRANSPORT_METHODS = (
    ("HTTPTransport", "handle_request", "_handle_request_wrapper"),
    ("AsyncHTTPTransport", "handle_async_request", "_handle_async_request_wrapper"),
)


def _release_errors() -> None:
    """Wrap contrib's transport wrappers once, so that a failed request's exception does
    not keep its span and request in a reference cycle (`_release`)."""
    import httpx
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from wrapt import wrap_function_wrapper

    for transport_name, method, contrib_name in _TRANSPORT_METHODS:
        transport = getattr(httpx, transport_name)
        current = transport.__dict__.get(method)
        if getattr(current, "_self_wrapper", None) is None or _release.is_releasing(current):
            continue  # not wrapped by contrib, or already released
        releasing = (
            _release.ReleasingAsync if method.endswith("async_request") else _release.Releasing
        )
        wrap_function_wrapper(
            transport, method, releasing(getattr(HTTPXClientInstrumentor, contrib_name))
        )


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    import httpx

    for transport_name, method, _contrib_name in _TRANSPORT_METHODS:
        transport = getattr(httpx, transport_name)
        current = transport.__dict__.get(method)
        if _release.is_releasing(current):
            setattr(transport, method, current.__wrapped__)
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
