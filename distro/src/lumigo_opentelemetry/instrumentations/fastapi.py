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
- importing FastAPI stays cheap: the hook only puts a subclass in place of
  `fastapi.FastAPI` (contrib's `instrument()` does the same, under the same name);
  contrib's `instrument_app`, with its imports (`packaging`, the ASGI middleware,
  `_semconv`) and the tracer, runs for each app when the app first builds its
  middleware stack (its first ASGI call: the lifespan start-up or the first request);
- FastAPI's own native telemetry (0.16x, `fastapi/telemetry/`) is told not to trace
  and not to auto-configure exporters (`telemetry["tracing"] = False`,
  `telemetry["auto_configure"] = False`, which also overrides
  `FASTAPI_OTEL_AUTO_CONFIGURE=true`): the distro's span and exporter are the only ones.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

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
_ERROR_MIDDLEWARE = ("starlette.middleware.errors", "ServerErrorMiddleware")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    return FastAPIInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument every app built from now on; contrib is set up per app, lazily."""
    import fastapi

    global _original_class
    if _original_class is not None:
        return  # instrumented already
    setup = _Setup(config, tracer_provider)
    base = fastapi.FastAPI

    class _InstrumentedFastAPI(base):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            setup.on_init(self)

    _original_class = base
    fastapi.FastAPI = _InstrumentedFastAPI  # type: ignore[misc]


def _instrument_with_contrib(config: Config, tracer_provider: TracerProvider) -> None:
    """contrib's own `instrument()` at once, its middleware plus our payload capture
    middleware in each app (never the lean path): the golden test's reference."""
    import fastapi
    import wrapt

    upstream = instrumentor()
    options: Dict[str, Any] = {"tracer_provider": tracer_provider, "skip_dep_check": True}
    if "exclude_spans" in inspect.signature(type(upstream).instrument_app).parameters:
        options["exclude_spans"] = ["receive", "send"]
    upstream.instrument(**options)

    def after_init(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        _quiet_native_telemetry(instance)
        build = instance.build_middleware_stack
        instance.build_middleware_stack = _with_payload_capture(build, config, lean=False)

    wrapt.wrap_function_wrapper(fastapi, "FastAPI.__init__", after_init)


_original_class: Any = None
#: an app's flag contrib reads; set at once so that an app instrumented by hand later
#: is refused by contrib as already instrumented, as with contrib's own subclass
_CONTRIB_FLAG = "_is_instrumented_by_opentelemetry"


class _Setup:
    """Per app: FastAPI's native telemetry quietened at once; contrib's `instrument_app`
    and our capture (or lean path) when the app first builds its middleware stack."""

    def __init__(self, config: Config, tracer_provider: TracerProvider) -> None:
        self.config = config
        self.tracer_provider = tracer_provider
        self._options: Optional[Dict[str, Any]] = None

    def on_init(self, app: Any) -> None:
        try:
            _quiet_native_telemetry(app)
        except Exception:
            logger.debug("could not adjust FastAPI native telemetry", exc_info=True)
        if getattr(app, _CONTRIB_FLAG, False):
            return
        setattr(app, _CONTRIB_FLAG, True)
        app.build_middleware_stack = functools.partial(self.first_build, app)

    def first_build(self, app: Any) -> Any:
        """Instrument `app` as contrib's subclass would have at its creation, then build."""
        del app.build_middleware_stack  # the class's method again
        try:
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            setattr(app, _CONTRIB_FLAG, False)
            FastAPIInstrumentor.instrument_app(app, **self.options(FastAPIInstrumentor))
        except Exception:
            logger.debug("fastapi not instrumented on %r", app, exc_info=True)
            return app.build_middleware_stack()
        try:
            build = app.build_middleware_stack
            app.build_middleware_stack = _with_payload_capture(build, self.config)
        except Exception:
            logger.debug("fastapi payload capture not installed on %r", app, exc_info=True)
        return app.build_middleware_stack()

    def options(self, instrumentor: Any) -> Dict[str, Any]:
        if self._options is None:
            options: Dict[str, Any] = {"tracer_provider": self.tracer_provider}
            if "exclude_spans" in inspect.signature(instrumentor.instrument_app).parameters:
                options["exclude_spans"] = ["receive", "send"]
            self._options = options
        return self._options


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
            return _insert_capture(stack, config, lean)
        except Exception:
            logger.debug("fastapi payload capture not inserted", exc_info=True)
        return stack

    return build_middleware_stack


def _insert_capture(stack: Any, config: Config, lean: bool = True) -> Any:
    """Replace the upstream middleware by the lean path where it applies, else put the
    payload capture just inside it; returns the stack's (maybe new) outermost app.

    contrib wraps its middleware in a bare `ServerErrorMiddleware` (no handler), there
    only to answer 500 should the middleware itself raise; the lean path never raises
    anything of its own, so when it replaces contrib's middleware it also takes the
    place of that wrapper: one middleware frame and one `send` wrapper less per message."""
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
                spans = _asgi_server.LeanServerSpans(node, config)
                if parent is stack and _bare_error_wrapper(parent):
                    spans.replace_error_wrapper(parent)
                    return spans
                parent.app = spans
            elif not isinstance(node.app, PayloadCaptureMiddleware):
                node.app = PayloadCaptureMiddleware(node.app, config)
            return stack
        parent, node = node, getattr(node, "app", None)
    logger.debug("fastapi payload capture: no OpenTelemetryMiddleware in the stack")
    return stack


def _bare_error_wrapper(node: Any) -> bool:
    """Whether `node` is a Starlette `ServerErrorMiddleware` with no handler and no debug
    page: it does nothing but answer 500 when what it wraps raises before responding."""
    kind = type(node)
    return (
        (kind.__module__, kind.__name__) == _ERROR_MIDDLEWARE
        and getattr(node, "handler", True) is None
        and getattr(node, "debug", True) is False
    )


def uninstrument() -> None:
    """Undo `instrument()` (used by tests): the library's own class is restored and the
    apps contrib instrumented are uninstrumented (as contrib's `uninstrument()` does)."""
    global _original_class
    import fastapi

    if _original_class is not None:
        fastapi.FastAPI = _original_class  # type: ignore[misc]
        _original_class = None
    contrib = sys.modules.get("opentelemetry.instrumentation.fastapi")
    if contrib is None:
        return
    upstream = contrib.FastAPIInstrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()  # `_instrument_with_contrib`
        return
    instrumented = contrib._InstrumentedFastAPI._instrumented_fastapi_apps
    for app in list(instrumented):
        contrib.FastAPIInstrumentor.uninstrument_app(app)
    instrumented.clear()
