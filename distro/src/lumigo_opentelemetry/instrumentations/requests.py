"""requests: client spans for outgoing HTTP, and `traceparent` on every request.

This is what joins a trace across services: a Flask handler that calls another
service with `requests` sends the current context along, and the callee's server
span becomes a child of this client span. The OTLP exporter's own requests are
not traced (the SDK suppresses instrumentation while exporting).

The span's URL attributes (`http.url`, `url.full`) are masked as soon as the span is
created (`payloads.mask_span_urls`: secret query parameters, userinfo, the token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "requests"
HOOK_MODULE = "requests"


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    return RequestsInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    from lumigo_opentelemetry.instrumentations.payloads import mask_span_urls

    def request_hook(span: Span, _request: Any) -> None:
        # runs right after the span is created with its URL attributes; never raises
        mask_span_urls(span, config)

    instrumentor().instrument(tracer_provider=tracer_provider, request_hook=request_hook)
