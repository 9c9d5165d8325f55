"""requests: client spans for outgoing HTTP, and `traceparent` on every request.

This is what joins a trace across services: a Flask handler that calls another
service with `requests` sends the current context along, and the callee's server
span becomes a child of this client span. The OTLP exporter's own requests are
not traced (the SDK suppresses instrumentation while exporting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "requests"
HOOK_MODULE = "requests"


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    return RequestsInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    instrumentor().instrument(tracer_provider=tracer_provider)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
