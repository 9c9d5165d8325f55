"""The `lumigo-opentelemetry` logger: info and warnings to stderr, debug with LUMIGO_DEBUG.

`logging` costs milliseconds to import, so start-up does not import it: `logger` stands in
for `logging.getLogger(LOGGER_NAME)` and imports `logging` on its first message (a debug
message without LUMIGO_DEBUG is dropped without it). The stderr handler and level that
`configure_logging()` asks for are applied as soon as `logging` is imported, by the distro
or by anyone else, so modules that log through `logging.getLogger(LOGGER_NAME)` directly
get them too.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, Optional

LOGGER_NAME = "lumigo-opentelemetry"
_HANDLER_ATTR = "_lumigo_handler"

#: what configure_logging() asked for (None: not called yet), and whether it is applied
_debug: Optional[bool] = None
_applied = False


class _DistroLogger:
    """The distro's logger; imports `logging` on first use."""

    __slots__ = ()

    @staticmethod
    def real() -> logging.Logger:
        import logging

        if _debug is not None and not _applied:
            _apply(logging)
        return logging.getLogger(LOGGER_NAME)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if _debug is False and _applied is False:
            return  # the INFO level would drop it: no need to import logging for it
        self.real().debug(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


logger: logging.Logger = _DistroLogger()  # type: ignore[assignment]


def configure_logging(debug: bool, watch: bool = True) -> None:
    """Attach one stderr handler (idempotent); DEBUG level when `debug`, else INFO.

    Applied now if `logging` is imported, else on the distro's first message or (with
    `watch`) when anything imports `logging`."""
    global _debug, _applied
    _debug = debug
    _applied = False
    if "logging" in sys.modules:
        _apply(sys.modules["logging"])
        return
    if not watch:
        return
    from lumigo_opentelemetry.instrumentations._post_import import when_imported

    when_imported("logging", _apply)


def _apply(logging: Any) -> None:
    global _applied
    if _debug is None:
        return
    _applied = True
    target = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, _HANDLER_ATTR, False) for h in target.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lumigo-opentelemetry %(levelname)s: %(message)s"))
        setattr(handler, _HANDLER_ATTR, True)
        target.addHandler(handler)
    target.setLevel(logging.DEBUG if _debug else logging.INFO)
    target.propagate = False
