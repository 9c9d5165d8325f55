"""`LUMIGO_ENABLE_LOGS`: the `logging` module's records as OTLP/HTTP log records.

Imported only when logs are on. A `LoggingHandler` on the root logger turns every record
(of the levels the app's loggers let through) into an OpenTelemetry log record carrying
the trace and span ids of the span active when it was logged. Bodies are masked with
`LUMIGO_SECRET_MASKING_REGEX` (a JSON body or a dict/list message: secret keys become
`****`), then exported in batches by opentelemetry-exporter-otlp-proto-http's log exporter
to `Config.logs_endpoint` with the `Authorization: LumigoToken <token>` header.
`LUMIGO_DEBUG_LOGDUMP` appends each record as one JSON line to a file (like the span dump).
The distro's own, OpenTelemetry's and urllib3's loggers are never exported (no loops).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor

from lumigo_opentelemetry._logging import LOGGER_NAME, logger
from lumigo_opentelemetry.config import Config, authorization_header
from lumigo_opentelemetry.export.spandump import append_line
from lumigo_opentelemetry.masking import Site

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

#: loggers whose records are never exported (the export path itself logs through them)
QUIET_LOGGERS = (LOGGER_NAME, "opentelemetry", "urllib3", "requests")
_HANDLER_ATTR = "_lumigo_logs_handler"


def _record(item: Any) -> Any:
    """The API log record inside what a processor gets (LogData or ReadWriteLogRecord)."""
    return getattr(item, "log_record", item)


class MaskingProcessor(LogRecordProcessor):
    """Masks secret keys in each record's body before any exporter sees it."""

    def __init__(self, config: Config) -> None:
        self._masking = config.masking

    def _mask(self, item: Any) -> None:
        try:
            record = _record(item)
            body = record.body
            if isinstance(body, str):
                if body.lstrip().startswith(("{", "[")):
                    record.body = self._masking.apply(Site.DB, body, "application/json")
            elif isinstance(body, (dict, list)):
                record.body = json.loads(self._masking.apply(Site.DB, body))
        except Exception:
            logger.debug("log body masking failed; body dropped", exc_info=True)
            with contextlib.suppress(Exception):
                _record(item).body = None

    # the SDK renamed `emit` to `on_emit`; both are the same step here
    def on_emit(self, log_record: Any) -> None:
        self._mask(log_record)

    def emit(self, log_data: Any) -> None:
        self._mask(log_data)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def record_line(item: Any) -> bytes:
    """One log record as a single JSON line (the LUMIGO_DEBUG_LOGDUMP format)."""
    record = _record(item)
    severity = getattr(record, "severity_number", None)
    trace_id = getattr(record, "trace_id", None) or 0
    span_id = getattr(record, "span_id", None) or 0
    doc: Dict[str, Any] = {
        "body": record.body,
        "severity_text": getattr(record, "severity_text", None),
        "severity_number": getattr(severity, "value", None),
        "timestamp": getattr(record, "timestamp", None),
        "trace_id": f"{trace_id:032x}" if trace_id else "",
        "span_id": f"{span_id:016x}" if span_id else "",
        "attributes": dict(getattr(record, "attributes", None) or {}),
    }
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
    return (text + "\n").encode("utf-8")


class LogDumpProcessor(LogRecordProcessor):
    """Appends each record to `path`; an unwritable file is reported once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._failed = False

    def _write(self, item: Any) -> None:
        try:
            append_line(self.path, record_line(item))
        except Exception as exc:
            if not self._failed:
                self._failed = True
                logger.warning("cannot write the log dump %s: %s", self.path, exc)

    def on_emit(self, log_record: Any) -> None:
        self._write(log_record)

    def emit(self, log_data: Any) -> None:
        self._write(log_data)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _NotOurs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not any(name == q or name.startswith(q + ".") for q in QUIET_LOGGERS)


def build_logger_provider(config: Config, resource: Resource) -> Optional[LoggerProvider]:
    """The logger provider with masking, the OTLP exporter (with a token) and the log dump;
    None when there is nowhere to send logs."""
    if not config.token and not config.logdump_path:
        logger.info("LUMIGO_ENABLE_LOGS is set but LUMIGO_TRACER_TOKEN is not: logs are not sent")
        return None
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(MaskingProcessor(config))
    if config.token:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        exporter = OTLPLogExporter(
            endpoint=config.logs_endpoint,
            headers={"Authorization": authorization_header(config.token)},
            timeout=config.export_timeout,
        )
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        logger.debug("exporting logs to %s", config.logs_endpoint)
    if config.logdump_path:
        provider.add_log_record_processor(LogDumpProcessor(config.logdump_path))
        logger.debug("dumping logs to %s", config.logdump_path)
    return provider


def install_handler(provider: LoggerProvider) -> None:
    """Send the root logger's records to `provider` (once), and make it the global one."""
    from opentelemetry import _logs

    _logs.set_logger_provider(provider)
    root = logging.getLogger()
    if any(getattr(h, _HANDLER_ATTR, False) for h in root.handlers):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's handler, still fine
        handler = LoggingHandler(logger_provider=provider)
    handler.addFilter(_NotOurs())
    setattr(handler, _HANDLER_ATTR, True)
    root.addHandler(handler)
