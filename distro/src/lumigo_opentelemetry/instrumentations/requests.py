"""requests: client spans for outgoing HTTP, `traceparent` on every request, and payloads.

This is what joins a trace across services: a Flask handler that calls another
service with `requests` sends the current context along, and the callee's server
span becomes a child of this client span. The OTLP exporter's own requests are
not traced (the SDK suppresses instrumentation while exporting).

On top of opentelemetry-instrumentation-requests (hooks, no fork), as upstream's distro
sends them: `http.request.headers` and `http.request.body` (a body given as bytes or
text; a file or generator the app streams is never read), `http.response.headers` and
`http.response.body` (only when requests already read the body, i.e. not `stream=True`);
headers and JSON/form bodies masked, everything cut to the attribute length limit;
the span's URL attributes (`http.url`, `url.full`) masked as soon as the span is created
(`payloads.mask_span_urls`: secret query parameters, userinfo, the token).
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

NAME = "requests"
HOOK_MODULE = "requests"

logger = logging.getLogger("lumigo-opentelemetry")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    return RequestsInstrumentor()


def request_body(request: Any, config: Config) -> Optional[str]:
    """The body of a prepared request, when it is in memory (bytes or text)."""
    body = getattr(request, "body", None)
    if not isinstance(body, (bytes, bytearray, str)):
        return None  # no body, or a file/generator the app streams
    content_type = request.headers.get("Content-Type")
    limit = max(0, config.attribute_length_limit)
    head = body[: 4 * limit]
    return payloads.body_attribute(head, config, content_type, total_size=len(body))


def response_body(response: Any, config: Config) -> Optional[str]:
    """The body of a response requests already read; a streamed one is left alone."""
    if not getattr(response, "_content_consumed", False):
        return None
    content = getattr(response, "_content", None)
    if not isinstance(content, bytes):
        return None
    limit = max(0, config.attribute_length_limit)
    return payloads.body_attribute(
        content[: 4 * limit],
        config,
        response.headers.get("Content-Type"),
        total_size=len(content),
        site=payloads.Site.HTTP_RESPONSE_BODIES,
    )


class _Hooks:
    def __init__(self, config: Config) -> None:
        self.config = config

    def request(self, span: Span, request: Any) -> None:
        try:
            if not span.is_recording():
                return
            config = self.config
            payloads.mask_span_urls(span, config)  # right after the span got its URL
            payloads.set_captured(
                span, payloads.REQUEST_HEADERS, payloads.headers_attribute, request.headers, config
            )
            payloads.set_captured(span, payloads.REQUEST_BODY, request_body, request, config)
        except Exception:
            logger.debug("requests request hook failed", exc_info=True)

    def response(self, span: Span, _request: Any, response: Any) -> None:
        try:
            if not span.is_recording():
                return
            config = self.config
            payloads.set_captured(
                span,
                payloads.RESPONSE_HEADERS,
                payloads.headers_attribute,
                response.headers,
                config,
                payloads.Site.HTTP_RESPONSE_HEADERS,
            )
            payloads.set_captured(span, payloads.RESPONSE_BODY, response_body, response, config)
            payloads.mask_span_urls(span, config)
        except Exception:
            logger.debug("requests response hook failed", exc_info=True)


_hooks: Optional[_Hooks] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument requests once; a later call only refreshes the configuration."""
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
        )
    _release_errors()


def _release_errors() -> None:
    """Wrap contrib's `Session.send` once, so that a failed call's exception does not
    keep its span and request in a reference cycle (`_release`)."""
    from requests import Session
    from wrapt import wrap_function_wrapper

    send = Session.__dict__["send"]
    applied = getattr(send, "opentelemetry_instrumentation_requests_applied", False)
    if applied and not _release.is_releasing(send):
        wrap_function_wrapper(Session, "send", _release.Releasing(send))


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    from requests import Session

    if _release.is_releasing(Session.__dict__.get("send")):
        Session.send = Session.__dict__["send"].__wrapped__  # type: ignore[method-assign]
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
