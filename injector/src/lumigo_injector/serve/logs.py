"""Logging of `serve`: one JSON object per line (default) or plain text, on stderr.

kopf's own formatter is used for both, so operator and webhook lines look alike and extra
fields (`namespace`, `pod`, `reason`, ...) become JSON keys. At `info`, kopf's per-handler
"succeeded" lines (one per watched object change) are silenced; failures still show.
"""

from __future__ import annotations

import logging

import kopf


def configure(log_format: str = "json", level: str = "info") -> None:
    """Set up the root logger once, for the whole process."""
    kopf.configure(
        debug=level == "debug",
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=log_format != "json",
    )
    logging.getLogger().setLevel(level.upper())
    if level != "debug":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
