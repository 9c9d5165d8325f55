"""What `init()` does, exactly once per process: config, resource, provider, export, hooks.

At start-up only the settings are read (their warnings shown) and post-import hooks
registered; nothing of the OpenTelemetry SDK is imported. The provider (SDK, resource,
exporter, exit flush) is built on first use: the first import of an instrumented library
(for Flask and FastAPI, which ask for their tracer on an app's first routed request or
first ASGI call: that call, see `PROVIDER_ON_FIRST_TRACER`) or of the OpenTelemetry API/SDK
(`TRIGGER_MODULES`), or the first request for it (`current_tracer_provider()`,
`lumigo_opentelemetry.tracer_provider`). An app that starts spans through the
OpenTelemetry API imports `opentelemetry.trace` first, so the global provider it sees is
always ours. `LUMIGO_ENABLE_LOGS` builds it at start-up (the logging handler needs it).

Every failure is caught here: the app then runs untraced, with one warning.
"""

from __future__ import annotations

import _thread  # `threading` itself is not imported at start-up (it costs milliseconds)
import atexit
import sys

from lumigo_opentelemetry._logging import configure_logging, logger
from lumigo_opentelemetry.config import Config, get_config
from lumigo_opentelemetry.instrumentations._post_import import when_imported

TYPE_CHECKING = False  # typing is not imported at start-up (it costs milliseconds)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable, Dict, Optional, Union

    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from lumigo_opentelemetry.export.otlp import DeadlineExporter


class DisabledTracerProvider:
    """Stands in for the provider when tracing is off: safe to call, records nothing."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        from opentelemetry.trace import NoOpTracer

        return NoOpTracer()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


class DisabledLoggerProvider:
    """Stands in for the logger provider when logs are off: safe to call, records nothing."""

    def get_logger(self, *args: Any, **kwargs: Any) -> Any:
        from opentelemetry._logs import NoOpLogger

        return NoOpLogger(str(args[0]) if args else "lumigo")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


if TYPE_CHECKING:
    ProviderLike = Union[TracerProvider, DisabledTracerProvider]
    LoggerProviderLike = Union[LoggerProvider, DisabledLoggerProvider]

#: modules whose import asks for tracing: the OpenTelemetry API an app uses to start spans,
#: and the SDK packages (an app that imports one wants the global provider set)
TRIGGER_MODULES = (
    "opentelemetry.trace",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk._logs",
    "opentelemetry.sdk.metrics",
)

_lock = _thread.RLock()
_resource_lock = _thread.allocate_lock()
_on_this_thread = _thread._local()  # .resource: this thread is building the resource
_started = False
_building = False
_missed_trigger = False  # a trigger fired while this thread built the resource
#: the settings while the provider waits for its first use; None once built (or off)
_pending: Optional[Config] = None
_resource: Optional[Resource] = None
_provider: ProviderLike = DisabledTracerProvider()
_logger_provider: LoggerProviderLike = DisabledLoggerProvider()


def current_tracer_provider() -> ProviderLike:
    """The distro's tracer provider, built now if it was waiting for its first use
    (a disabled one when tracing is off)."""
    if _pending is not None:
        _build_now()
    return _provider


def current_logger_provider() -> LoggerProviderLike:
    """The logger provider `activate()` set up (a disabled one when logs are off)."""
    return _logger_provider


def activate() -> None:
    """Initialise once (later or re-entrant calls do nothing): read the settings, show
    their warnings, register the hooks. The SDK, the resource and the exporter are set up
    on first use: the first import of an instrumented library or of the OpenTelemetry
    API/SDK, or the first request for the provider (`current_tracer_provider()`)."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
        try:
            _prepare(get_config())
        except Exception as exc:
            logger.warning("tracing is off: initialisation failed: %r", exc)


def _prepare(config: Config) -> None:
    global _pending
    # switched off, nothing but the distro itself logs: no need to watch for `logging`
    configure_logging(config.debug, watch=not config.switch_off)
    for warning in config.warnings:
        logger.warning(warning)
    if config.switch_off:
        logger.debug("LUMIGO_SWITCH_OFF is set: tracing is off")
        return
    if not config.enable_traces:
        logger.info("LUMIGO_ENABLE_TRACES is false: no instrumentation, no spans sent")
    elif not config.token:
        logger.info("LUMIGO_TRACER_TOKEN is not set: spans will not be exported")
    _pending = config
    if config.enable_traces:
        _install_instrumentations(config)
    if config.enable_logs:  # the logging handler starts now, so the provider too
        _build_now()
    else:
        for module in TRIGGER_MODULES:
            when_imported(module, _on_trigger_import)
    if config.should_report_dependencies:
        try:
            from lumigo_opentelemetry.dependencies import report_in_background

            report_in_background(config, lambda: dict(resource_for(config).attributes))
        except Exception as exc:
            logger.debug("dependency report not started: %r", exc)


def resource_for(config: Config) -> Resource:
    """The resource every span carries, built once by whichever thread asks first.

    No lock is held while it is built (a thread waiting for another's build could
    deadlock on an import lock that thread holds); two racing threads both build it and
    the first one's is kept."""
    global _resource, _missed_trigger
    resource = _resource
    if resource is None:
        from lumigo_opentelemetry.resources import build_resource

        _on_this_thread.resource = True
        try:
            built = build_resource(config)
        finally:
            _on_this_thread.resource = False
        with _resource_lock:
            if _resource is None:
                _resource = built
            resource = _resource
    if _missed_trigger:  # e.g. a resource detector imported the OpenTelemetry API
        _missed_trigger = False
        _on_trigger_import(None)
    return resource


def _on_trigger_import(_module: Optional[ModuleType]) -> None:
    """An OpenTelemetry API/SDK module was imported: set the provider up now.

    Never blocks: while another thread builds the provider, that thread sets it. While
    this thread builds the resource, the build waits until the resource is done.
    """
    global _missed_trigger
    if _pending is None:
        return
    if getattr(_on_this_thread, "resource", False):
        _missed_trigger = True
        return
    if not _lock.acquire(blocking=False):
        return
    try:
        _build_now(defer_circular=True)
    finally:
        _lock.release()


def _build_now(defer_circular: bool = False) -> None:
    """Build and install the provider once (re-entrant calls during the build do nothing).

    `defer_circular`: an import under way that the build needs (the app imported an SDK
    module which imported the API) leaves the provider pending; the end of that import
    (its own trigger) builds it.
    """
    global _pending, _building, _provider
    with _lock:
        config = _pending
        if config is None or _building:
            return
        _building = True
        try:
            try:
                modules = _import_provider_modules(config)
            except ImportError as exc:
                if defer_circular and _is_circular(exc):
                    logger.debug("provider set-up waits for an import under way: %s", exc)
                    return
                raise
            _pending = None
            _provider = _build(config, modules)
        except Exception as exc:
            _pending = None
            logger.warning("tracing is off: initialisation failed: %r", exc)
        finally:
            _building = False


def _is_circular(exc: ImportError) -> bool:
    name = exc.name or ""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False)) or "partially initialized" in str(exc)


def _import_provider_modules(config: Config) -> Dict[str, Any]:
    """Everything the provider needs, imported before anything is built."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider

    from lumigo_opentelemetry.export.skip import SkipExportFilter
    from lumigo_opentelemetry.sampling import LumigoSampler

    modules: Dict[str, Any] = {
        "trace": trace,
        "SpanLimits": SpanLimits,
        "TracerProvider": TracerProvider,
        "SkipExportFilter": SkipExportFilter,
        "LumigoSampler": LumigoSampler,
    }
    if config.enable_traces and config.token:
        from lumigo_opentelemetry.export import otlp

        modules["otlp"] = otlp
    if config.spandump_path and config.enable_traces:
        from lumigo_opentelemetry.export.spandump import SpanDumpProcessor

        modules["SpanDumpProcessor"] = SpanDumpProcessor
    from lumigo_opentelemetry.resources import build_resource  # noqa: F401

    return modules


def _build(config: Config, modules: Dict[str, Any]) -> TracerProvider:
    resource = resource_for(config)
    limits = modules["SpanLimits"](
        max_attribute_length=config.attribute_length_limit,
        max_span_attribute_length=config.attribute_length_limit,
    )
    provider: TracerProvider = modules["TracerProvider"](
        resource=resource,
        span_limits=limits,
        sampler=modules["LumigoSampler"](config),
        shutdown_on_exit=False,
    )
    skip_filter = modules["SkipExportFilter"]

    exporter: Optional[DeadlineExporter] = None
    if "otlp" in modules:
        otlp = modules["otlp"]
        exporter = otlp.build_exporter(config)
        provider.add_span_processor(skip_filter(otlp.build_batch_processor(config, exporter)))
        logger.debug("exporting spans to %s", config.endpoint)

    if "SpanDumpProcessor" in modules:
        dump = modules["SpanDumpProcessor"](config.spandump_path)
        provider.add_span_processor(skip_filter(dump))
        logger.debug("dumping spans to %s", config.spandump_path)

    modules["trace"].set_tracer_provider(provider)
    atexit.register(_shutdown_at_exit, provider, exporter, config.export_timeout)
    if config.enable_logs:
        _start_logs(config, resource)
    logger.debug("initialised (service.name=%s)", resource.attributes.get("service.name"))
    return provider


def _start_logs(config: Config, resource: Resource) -> None:
    global _logger_provider
    try:
        from lumigo_opentelemetry.export.logs import build_logger_provider, install_handler

        logger_provider = build_logger_provider(config, resource)
        if logger_provider is not None:
            install_handler(logger_provider)
            _logger_provider = logger_provider
    except Exception as exc:
        logger.warning("logs are off: their set-up failed: %r", exc)


def _install_instrumentations(config: Config) -> None:
    """A post-import hook per enabled library; the provider is built when the first fires."""
    try:
        from lumigo_opentelemetry import instrumentations as registry
    except Exception as exc:
        logger.warning("instrumentations unavailable: %r", exc)
        return
    registry.install_hooks(config, lambda name: _instrument_on_import(registry, name, config))


def _instrument_on_import(
    registry: ModuleType, name: str, config: Config
) -> Callable[[ModuleType], None]:
    def on_import(_module: ModuleType) -> None:
        if _pending is not None and name in registry.PROVIDER_ON_FIRST_TRACER:
            # the provider (SDK, resource, exporter) waits for the first tracer asked for
            registry.activate(name, config, ProviderOnFirstTracer())
            return
        provider = current_tracer_provider()
        if not isinstance(provider, DisabledTracerProvider):
            registry.activate(name, config, provider)

    return on_import


class ProviderOnFirstTracer:
    """Stands in for the provider, for an instrumentation that asks for its tracer only
    when it first traces (e.g. Flask's first request): the provider is built then
    (`current_tracer_provider()`; a no-op tracer if tracing turned out to be off)."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return current_tracer_provider().get_tracer(*args, **kwargs)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return current_tracer_provider().force_flush(timeout_millis)

    def shutdown(self) -> None:
        if _pending is None:
            current_tracer_provider().shutdown()


def _shutdown_at_exit(
    provider: TracerProvider, exporter: Optional[DeadlineExporter], budget: float
) -> None:
    """Flush what is queued, giving the backend at most `budget` seconds more."""
    try:
        if exporter is not None:
            exporter.start_deadline(budget)
        provider.shutdown()
    except Exception as exc:
        logger.debug("shutdown failed: %r", exc)
