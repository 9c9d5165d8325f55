"""FastAPI: server spans from opentelemetry-instrumentation-fastapi, plus payloads.

On top of the upstream instrumentor (no fork):

- the per-message `receive`/`send` internal spans are left out where the upstream
  version supports that (`exclude_spans`): one server span per request;
- on the default HTTP semantic conventions (and without contrib hooks or custom header
  capture) the upstream `OpenTelemetryMiddleware` in each app's stack is replaced by
  our lean server-span path (`_asgi_server`: the same spans, payloads included, for
  less CPU); otherwise every app gets a payload capture middleware just inside the
  upstream middleware (`_asgi_capture`). Either way: `http.request.headers`/`body`,
  `http.response.headers`/`body`, recorded as the messages pass, bounded, streaming
  untouched;
- FastAPI's own native telemetry (0.16x, `fastapi/telemetry/`) is told not to trace
  and not to auto-configure exporters (`telemetry["tracing"] = False`,
  `telemetry["auto_configure"] = False`, which also overrides
  `FASTAPI_OTEL_AUTO_CONFIGURE=true`): the distro's span and exporter are the only ones.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Tuple

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "fastapi"
HOOK_MODULE = "fastapi"
#: the version gate reads the declared FastAPI range from here (no `packaging` import)
INSTRUMENTOR_DISTRIBUTION = "opentelemetry-instrumentation-fastapi"

logger = logging.getLogger("lumigo-opentelemetry")

_UPSTREAM_MIDDLEWARE = ("opentelemetry.instrumentation.asgi", "OpenTelemetryMiddleware")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    return FastAPIInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    _instrument(config, tracer_provider, lean=True)


def _instrument(config: Config, tracer_provider: TracerProvider, lean: bool) -> None:
    """`lean=False`: contrib's middleware plus our capture (the golden test's reference)."""
    import fastapi
    import wrapt

    upstream = instrumentor()
    # the registry's version gate has checked the same declared range already
    options: Dict[str, Any] = {"tracer_provider": tracer_provider, "skip_dep_check": True}
    if "exclude_spans" in inspect.signature(type(upstream).instrument_app).parameters:
        options["exclude_spans"] = ["receive", "send"]
    upstream.instrument(**options)

    def after_init(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        try:
            _quiet_native_telemetry(instance)
        except Exception:
            logger.debug("could not adjust FastAPI native telemetry", exc_info=True)
        try:
            build = instance.build_middleware_stack
            instance.build_middleware_stack = _with_payload_capture(build, config, lean)
        except Exception:
            logger.debug("fastapi payload capture not installed on %r", instance, exc_info=True)

    # `fastapi.FastAPI` is the upstream instrumented subclass from here on
    wrapt.wrap_function_wrapper(fastapi, "FastAPI.__init__", after_init)


def _quiet_native_telemetry(app: Any) -> None:
    """FastAPI >= 0.16x: no second server span, no second export path."""
    settings = getattr(app, "_telemetry", None)
    if not isinstance(settings, dict):
        return
    if settings.get("auto_configure"):
        logger.debug("FastAPI telemetry auto_configure turned off: the distro exports spans")
    settings["auto_configure"] = False
    settings["tracing"] = False


def _with_payload_capture(
    build: Callable[[], Any], config: Config, lean: bool = True
) -> Callable[[], Any]:
    def build_middleware_stack() -> Any:
        stack = build()
        try:
            _insert_capture(stack, config, lean)
        except Exception:
            logger.debug("fastapi payload capture not inserted", exc_info=True)
        return stack

    return build_middleware_stack


def _insert_capture(stack: Any, config: Config, lean: bool = True) -> None:
    """Replace the upstream middleware by the lean path where it applies, else put the
    payload capture just inside it."""
    from lumigo_opentelemetry.instrumentations import _asgi_server
    from lumigo_opentelemetry.instrumentations._asgi_capture import PayloadCaptureMiddleware

    seen = set()
    parent = None
    node = stack
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        kind = type(node)
        if (kind.__module__, kind.__name__) == _UPSTREAM_MIDDLEWARE:
            if lean and parent is not None and _asgi_server.applies(node):
                parent.app = _asgi_server.LeanServerSpans(node, config)
            elif not isinstance(node.app, PayloadCaptureMiddleware):
                node.app = PayloadCaptureMiddleware(node.app, config)
            return
        parent, node = node, getattr(node, "app", None)
    logger.debug("fastapi payload capture: no OpenTelemetryMiddleware in the stack")


def uninstrument() -> None:
    """Undo `instrument()` (used by tests): the library's own class is restored."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
