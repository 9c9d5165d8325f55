"""The contract of every module `lumigo_opentelemetry.instrumentations.<NAME>`.

Apart from the registry (`__init__`) so that start-up, which imports the registry, does
not import `typing`; `lumigo_opentelemetry.instrumentations.Instrumentation` is this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config


@runtime_checkable
class Instrumentation(Protocol):
    """The contract of every module `lumigo_opentelemetry.instrumentations.<NAME>`."""

    #: the name in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS and in `HOOK_MODULES`
    NAME: str
    #: the library module whose import activates the instrumentation
    HOOK_MODULE: str

    def instrumentor(self) -> BaseInstrumentor:
        """The upstream instrumentor: its declared dependencies are the version gate."""

    def instrument(self, config: Config, tracer_provider: TracerProvider) -> None:
        """Instrument the library; a second call must not instrument it twice."""

    def uninstrument(self) -> None:
        """Undo `instrument()` as far as the library allows (tests use it)."""
