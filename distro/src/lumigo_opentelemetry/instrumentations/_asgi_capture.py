"""An ASGI middleware that records HTTP payloads on the current server span
(and masks secret query parameters in its URL attributes).

It sits just inside the upstream `OpenTelemetryMiddleware` (so the server span is the
current span) and wraps `receive` and `send`: each message goes through unchanged and
at once; only a bounded copy of the body bytes is kept. Request and response bodies
are set on the span when their last chunk passes, before the span ends. Streaming
responses keep streaming. Any error in the bookkeeping stops the capture for that
request (logged at debug); it never reaches the application or the server.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, MutableMapping, Optional

from lumigo_opentelemetry.instrumentations import payloads

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PayloadCaptureMiddleware:
    """Records headers and bodies of HTTP requests on the active (server) span."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        capture = None
        if scope.get("type") == "http":
            try:
                from opentelemetry import trace
                from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled

                span = trace.get_current_span()
                # a mounted sub-application's span is INTERNAL: only the server span
                # carries the payloads; with instrumentation suppressed the upstream
                # middleware started no span, and the current one is someone else's
                if (
                    span.is_recording()
                    and getattr(span, "kind", None) == trace.SpanKind.SERVER
                    and is_http_instrumentation_enabled()
                ):
                    capture = _RequestCapture(span, scope, self.config)
            except Exception:
                logger.debug("payload capture not started", exc_info=True)
        if capture is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, capture.wrap_receive(receive), capture.wrap_send(send))


class _RequestCapture:
    """The capture state of one request."""

    def __init__(self, span: Span, scope: Scope, config: Config) -> None:
        self.span = span
        self.config = config
        self.active = True
        self.request = payloads.BoundedBody(config.attribute_length_limit)
        self.response = payloads.BoundedBody(config.attribute_length_limit)
        self.request_done = False
        headers = scope.get("headers") or []
        self.request_type = payloads.header_value(headers, "content-type")
        self.response_type: Optional[str] = None
        payloads.set_captured(
            span, payloads.REQUEST_HEADERS, lambda: payloads.headers_attribute(headers, config)
        )
        payloads.mask_span_urls(span, config)

    def _stop(self) -> None:
        self.active = False
        logger.debug("payload capture stopped for this request", exc_info=True)

    def _finish_request(self) -> None:
        if self.request_done:
            return
        self.request_done = True
        recorded = self.request
        payloads.set_captured(
            self.span,
            payloads.REQUEST_BODY,
            lambda: payloads.body_attribute(
                recorded.data, self.config, self.request_type, total_size=recorded.total
            ),
        )

    def on_receive(self, message: Message) -> None:
        if message.get("type") == "http.request":
            self.request.add(message.get("body"))
            if not message.get("more_body", False):
                self._finish_request()

    def on_send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            headers = message.get("headers") or []
            self.response_type = payloads.header_value(headers, "content-type")
            payloads.set_captured(
                self.span,
                payloads.RESPONSE_HEADERS,
                lambda: payloads.headers_attribute(
                    headers, self.config, payloads.Site.HTTP_RESPONSE_HEADERS
                ),
            )
        elif kind == "http.response.body":
            self.response.add(message.get("body"))
            if not message.get("more_body", False):
                if self.request.total:
                    self._finish_request()
                recorded = self.response
                payloads.set_captured(
                    self.span,
                    payloads.RESPONSE_BODY,
                    lambda: payloads.body_attribute(
                        recorded.data,
                        self.config,
                        self.response_type,
                        total_size=recorded.total,
                        site=payloads.Site.HTTP_RESPONSE_BODIES,
                    ),
                )

    def wrap_receive(self, receive: Receive) -> Receive:
        async def capturing_receive() -> Message:
            message = await receive()
            if self.active:
                try:
                    self.on_receive(message)
                except Exception:
                    self._stop()
            return message

        return capturing_receive

    def wrap_send(self, send: Send) -> Send:
        async def capturing_send(message: Message) -> None:
            if self.active:
                try:
                    self.on_send(message)
                except Exception:
                    self._stop()
            await send(message)

        return capturing_send
