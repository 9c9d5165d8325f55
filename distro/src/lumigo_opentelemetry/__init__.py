"""Lumigo's OpenTelemetry distribution for Python.

Activated by `AUTOWRAPT_BOOTSTRAP=lumigo_opentelemetry` or by `import lumigo_opentelemetry`
(both at once initialise once). Public API: `tracer_provider`, `init()`, `logger`.

This file must stay parseable and importable by old interpreters: the version guard comes
before anything that needs Python 3.9.
"""

import sys

__all__ = ["init", "logger", "tracer_provider"]

if sys.version_info < (3, 9):  # noqa: UP036 - the guard is the point
    sys.stderr.write(
        "lumigo-opentelemetry WARNING: Python "
        + ".".join(str(part) for part in sys.version_info[:2])
        + " is not supported (3.9 or newer is needed); tracing is off\n"
    )
    import logging

    logger = logging.getLogger("lumigo-opentelemetry")
    tracer_provider = None

    def init():  # type: ignore[no-untyped-def]
        """Does nothing on an unsupported Python."""
        return None

else:
    from lumigo_opentelemetry._activation import DisabledTracerProvider, ProviderLike, activate
    from lumigo_opentelemetry._logging import logger
    from lumigo_opentelemetry.version import __version__ as __version__

    tracer_provider: ProviderLike = DisabledTracerProvider()

    def init() -> None:
        """Initialise tracing (once per process; later calls do nothing)."""
        global tracer_provider
        tracer_provider = activate()

    init()
