"""The OTLP/HTTP protobuf exporter to Lumigo, behind a BatchSpanProcessor.

Every request carries `Authorization: LumigoToken <token>`. Exports run on the batch
processor's thread, never on the app's. At interpreter exit the queued spans get one
export budget (`Config.export_timeout`); once an export fails or the budget is spent the
rest is dropped, so a backend that is down or hangs delays exit by at most about one
exporter timeout. The HTTP stack is imported on the first export, not at start-up.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from typing import Any, Callable, Optional, Sequence

from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from lumigo_opentelemetry._logging import logger
from lumigo_opentelemetry.config import (
    BSP_DEFAULT_EXPORT_TIMEOUT_MS,
    BSP_DEFAULT_MAX_BATCH,
    BSP_DEFAULT_MAX_QUEUE_SIZE,
    BSP_DEFAULT_SCHEDULE_DELAY_MS,
    Config,
    authorization_header,
)

__all__ = [
    "BSP_DEFAULT_EXPORT_TIMEOUT_MS",
    "BSP_DEFAULT_MAX_BATCH",
    "BSP_DEFAULT_MAX_QUEUE_SIZE",
    "BSP_DEFAULT_SCHEDULE_DELAY_MS",
    "DeadlineExporter",
    "authorization_header",
    "build_batch_processor",
    "build_exporter",
    "otlp_exporter",
]


def _call(ref: weakref.WeakMethod[Callable[[], None]]) -> None:
    method = ref()
    if method is not None:
        method()


class DeadlineExporter(SpanExporter):
    """The exporter the batch processor sees: lazy, exit-bounded, never raising.

    The real exporter is built by `factory` on the first export, on the batch processor's
    thread (or just before a fork, on the forking thread), so importing the HTTP stack
    (requests, urllib3, protobuf encoders) never costs the app's start-up. After
    `start_deadline(seconds)` (called at interpreter exit) a batch is dropped when the
    deadline has passed or when an export has failed since: a backend that is down or
    hangs then costs at most one export timeout at exit, while a healthy one still
    receives everything that was queued.
    """

    def __init__(self, factory: Callable[[], SpanExporter], takes_encoded: bool = False) -> None:
        """`takes_encoded`: the exporter `factory` builds takes `encoder.Encoded` pairs
        in place of spans (the distro's own)."""
        self._factory: Optional[Callable[[], SpanExporter]] = factory
        self.takes_encoded = takes_encoded
        self._inner: Optional[SpanExporter] = None
        self._lock = threading.Lock()
        self._deadline: Optional[float] = None
        self._gave_up = False
        self._dropped = 0
        if hasattr(os, "register_at_fork"):
            before = weakref.WeakMethod(self._before_fork)
            parent = weakref.WeakMethod(self._after_fork_in_parent)
            child = weakref.WeakMethod(self._after_fork_in_child)
            os.register_at_fork(
                before=lambda: _call(before),
                after_in_parent=lambda: _call(parent),
                after_in_child=lambda: _call(child),
            )

    # Fork safety: a fork must never happen while the batch processor's thread is building
    # the exporter (importing the HTTP stack): the child would inherit held import locks and
    # hang on its next import of those modules. So the forking thread builds it first.
    def _before_fork(self) -> None:
        self._lock.acquire()
        self._build_locked()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def _build_locked(self) -> None:
        if self._inner is None and self._factory is not None:
            try:
                self._inner = self._factory()
            except Exception as exc:
                logger.warning("cannot create the span exporter: %r", exc)
            self._factory = None

    def _exporter(self) -> Optional[SpanExporter]:
        with self._lock:
            self._build_locked()
            return self._inner

    def start_deadline(self, seconds: float) -> None:
        if self._deadline is None:
            self._deadline = time.monotonic() + seconds

    def _exiting(self) -> bool:
        return self._deadline is not None

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self._deadline is not None and (  # (`_exiting()`)
            self._gave_up or time.monotonic() >= (self._deadline or 0.0)
        ):
            self._dropped += len(spans)
            return SpanExportResult.FAILURE
        inner = self._inner  # once built, kept: no lock to read it
        if inner is None:
            inner = self._exporter()
        if inner is None:
            if self._exiting():
                self._dropped += len(spans)
            return SpanExportResult.FAILURE
        try:
            result = inner.export(spans)
        except Exception as exc:
            logger.debug("span export failed: %r", exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS and self._exiting():
            # the batch that failed is lost too: count it with those dropped after it
            self._dropped += len(spans)
            self._gave_up = True
        return result

    def shutdown(self) -> None:
        if self._dropped:
            logger.warning("dropped %d spans at exit: the backend did not take them", self._dropped)
        if self._inner is not None:
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def otlp_exporter(config: Config) -> SpanExporter:
    """The OTLP/HTTP protobuf exporter to `config.endpoint` with the Lumigo token header
    (our encoder, the SDK's transport: see `http_exporter`)."""
    # requests imports `netrc` lazily on its first request; importing it now keeps the export
    # path free of imports, so a fork during an export cannot inherit a held import lock.
    import netrc  # noqa: F401

    from lumigo_opentelemetry.export.http_exporter import LumigoSpanExporter

    if not config.token:
        raise ValueError("the OTLP exporter needs LUMIGO_TRACER_TOKEN")
    exporter: SpanExporter = LumigoSpanExporter(
        endpoint=config.endpoint,
        headers={"Authorization": authorization_header(config.token)},
        timeout=config.export_timeout,
    )
    return exporter


def build_exporter(config: Config) -> DeadlineExporter:
    """A lazy exporter: nothing of the HTTP stack is imported until the first export."""
    return DeadlineExporter(functools.partial(otlp_exporter, config), takes_encoded=True)


def build_batch_processor(config: Config, exporter: SpanExporter) -> BatchSpanProcessor:
    """A batch processor (queueing spans encoded: `early`) with the OTEL_BSP_* values
    already validated by `Config`."""
    from lumigo_opentelemetry.export.early import EncodingBatchSpanProcessor

    # Explicit values (never None) so the SDK does not re-read a bad env value itself.
    return EncodingBatchSpanProcessor(
        exporter,
        max_queue_size=config.bsp_max_queue_size or BSP_DEFAULT_MAX_QUEUE_SIZE,
        schedule_delay_millis=config.bsp_schedule_delay_ms or BSP_DEFAULT_SCHEDULE_DELAY_MS,
        max_export_batch_size=config.bsp_max_export_batch_size or BSP_DEFAULT_MAX_BATCH,
        export_timeout_millis=config.bsp_export_timeout_ms or BSP_DEFAULT_EXPORT_TIMEOUT_MS,
    )
