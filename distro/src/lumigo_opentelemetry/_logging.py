"""The `lumigo-opentelemetry` logger: info and warnings to stderr, debug with LUMIGO_DEBUG."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "lumigo-opentelemetry"
logger = logging.getLogger(LOGGER_NAME)

_HANDLER_ATTR = "_lumigo_handler"


def configure_logging(debug: bool) -> None:
    """Attach one stderr handler (idempotent); DEBUG level when `debug`, else INFO."""
    if not any(getattr(h, _HANDLER_ATTR, False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lumigo-opentelemetry %(levelname)s: %(message)s"))
        setattr(handler, _HANDLER_ATTR, True)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
