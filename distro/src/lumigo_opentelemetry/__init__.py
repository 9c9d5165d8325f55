"""Lumigo's OpenTelemetry distribution for Python.

Activated by `AUTOWRAPT_BOOTSTRAP=lumigo_opentelemetry` or by `import lumigo_opentelemetry`
(both at once initialise once). Public API: `tracer_provider`, `logger_provider`, `init()`,
`logger`, and the helpers upstream documents: `lumigo_wrapped`, `create_programmatic_error`,
`add_execution_tags`.

This file must stay parseable and importable by old interpreters: the version guard comes
before anything that needs Python 3.9.
"""

import sys

__all__ = [
    "add_execution_tags",
    "create_programmatic_error",
    "init",
    "logger",
    "logger_provider",
    "lumigo_wrapped",
    "tracer_provider",
]

if sys.version_info < (3, 9):  # noqa: UP036 - the guard is the point
    sys.stderr.write(
        "lumigo-opentelemetry WARNING: Python "
        + ".".join(str(part) for part in sys.version_info[:2])
        + " is not supported (3.9 or newer is needed); tracing is off\n"
    )
    import logging

    logger = logging.getLogger("lumigo-opentelemetry")
    tracer_provider = None
    logger_provider = None

    def init():  # type: ignore[no-untyped-def]
        """Does nothing on an unsupported Python."""
        return None

    def lumigo_wrapped(func):  # type: ignore[no-untyped-def]
        """Returns `func` unchanged on an unsupported Python."""
        return func

    def create_programmatic_error(error_message, error_type):  # type: ignore[no-untyped-def]
        """Does nothing on an unsupported Python."""
        return None

    def add_execution_tags(tags, only_current_span=False):  # type: ignore[no-untyped-def]
        """Does nothing on an unsupported Python."""
        return None

else:
    from lumigo_opentelemetry._activation import (
        activate,
        current_logger_provider,
        current_tracer_provider,
    )
    from lumigo_opentelemetry.api import (
        add_execution_tags,
        create_programmatic_error,
        lumigo_wrapped,
    )
    from lumigo_opentelemetry.version import __version__ as __version__

    TYPE_CHECKING = False  # typing is not imported at start-up (it costs milliseconds)
    if TYPE_CHECKING:
        import logging
        from typing import Any

        from lumigo_opentelemetry._activation import LoggerProviderLike, ProviderLike

    # Module attributes computed on access (`__getattr__`): reading `tracer_provider`
    # builds the provider if it was still waiting for its first use; `logger` imports
    # `logging`, which start-up does not.
    tracer_provider: "ProviderLike"
    logger_provider: "LoggerProviderLike"
    logger: "logging.Logger"

    def init() -> None:
        """Initialise tracing (once per process; later calls do nothing)."""
        activate()

    def __getattr__(name: str) -> "Any":
        if name == "tracer_provider":
            return current_tracer_provider()
        if name == "logger_provider":
            return current_logger_provider()
        if name == "logger":
            from lumigo_opentelemetry import _logging

            return _logging.logger.real()  # type: ignore[attr-defined]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    init()
