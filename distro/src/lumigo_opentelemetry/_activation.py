"""What `init()` does, exactly once per process: config, resource, provider, export, hooks.

Every failure is caught here: the app then runs untraced, with one warning.
"""

from __future__ import annotations

import atexit
import importlib
import threading
from typing import TYPE_CHECKING, Any, Optional, Union

from lumigo_opentelemetry._logging import configure_logging, logger
from lumigo_opentelemetry.config import Config, get_config

if TYPE_CHECKING:
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


ProviderLike = Union["TracerProvider", DisabledTracerProvider]
LoggerProviderLike = Union["LoggerProvider", DisabledLoggerProvider]

_lock = threading.RLock()
_started = False
_provider: ProviderLike = DisabledTracerProvider()
_logger_provider: LoggerProviderLike = DisabledLoggerProvider()


def current_tracer_provider() -> ProviderLike:
    """The tracer provider `activate()` set up (a disabled one when tracing is off)."""
    return _provider


def current_logger_provider() -> LoggerProviderLike:
    """The logger provider `activate()` set up (a disabled one when logs are off)."""
    return _logger_provider


def activate() -> ProviderLike:
    """Initialise once; later (or re-entrant) calls return the same provider."""
    global _started, _provider
    with _lock:
        if _started:
            return _provider
        _started = True
        try:
            _provider = _activate(get_config())
        except Exception as exc:
            logger.warning("tracing is off: initialisation failed: %r", exc)
        return _provider


def _activate(config: Config) -> ProviderLike:
    configure_logging(config.debug)
    for warning in config.warnings:
        logger.warning(warning)
    if config.switch_off:
        logger.debug("LUMIGO_SWITCH_OFF is set: tracing is off")
        return DisabledTracerProvider()

    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider

    from lumigo_opentelemetry.export.skip import SkipExportFilter
    from lumigo_opentelemetry.resources import build_resource
    from lumigo_opentelemetry.sampling import LumigoSampler

    resource = build_resource(config)
    limits = SpanLimits(
        max_attribute_length=config.attribute_length_limit,
        max_span_attribute_length=config.attribute_length_limit,
    )
    provider = TracerProvider(
        resource=resource,
        span_limits=limits,
        sampler=LumigoSampler(config),
        shutdown_on_exit=False,
    )

    exporter: Optional[DeadlineExporter] = None
    if not config.enable_traces:
        logger.info("LUMIGO_ENABLE_TRACES is false: no instrumentation, no spans sent")
    elif config.token:
        from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter

        exporter = build_exporter(config)
        provider.add_span_processor(SkipExportFilter(build_batch_processor(config, exporter)))
        logger.debug("exporting spans to %s", config.endpoint)
    else:
        logger.info("LUMIGO_TRACER_TOKEN is not set: spans will not be exported")

    if config.spandump_path and config.enable_traces:
        from lumigo_opentelemetry.export.spandump import SpanDumpProcessor

        provider.add_span_processor(SkipExportFilter(SpanDumpProcessor(config.spandump_path)))
        logger.debug("dumping spans to %s", config.spandump_path)

    trace.set_tracer_provider(provider)
    atexit.register(_shutdown_at_exit, provider, exporter, config.export_timeout)
    if config.enable_logs:
        _start_logs(config, resource)
    if config.enable_traces:
        _install_instrumentations(config, provider)

    if config.should_report_dependencies:
        try:
            from lumigo_opentelemetry.dependencies import report_in_background

            report_in_background(config, dict(resource.attributes))
        except Exception as exc:
            logger.debug("dependency report not started: %r", exc)
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


def _install_instrumentations(config: Config, provider: TracerProvider) -> None:
    try:
        registry = importlib.import_module("lumigo_opentelemetry.instrumentations")
        install_hooks = registry.install_hooks
    except Exception as exc:
        logger.warning("instrumentations unavailable: %r", exc)
        return
    try:
        install_hooks(config, provider)
    except Exception as exc:
        logger.warning("installing instrumentation hooks failed: %r", exc)


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
