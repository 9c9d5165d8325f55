"""psycopg (3): one CLIENT span per `execute`, sync and async, with `db.statement`.

Built on opentelemetry-instrumentation-psycopg (DB-API integration over
`psycopg.connect`, `Connection.connect` and `AsyncConnection.connect`: span named after
the SQL verb and database, `db.system=postgresql`, `db.name`, `db.user`, peer address).
The statement is the query text with its placeholders: values sent as parameters never
leave the process; long statements are cut by the span limits. Django's PostgreSQL
backend on psycopg 3 is traced through `Connection.connect`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "psycopg"
HOOK_MODULE = "psycopg"


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    return PsycopgInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Wrap psycopg's connect functions once (a second call is a no-op)."""
    from lumigo_opentelemetry.instrumentations import _dbapi

    _dbapi.release_errors()
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(tracer_provider=tracer_provider, skip_dep_check=True)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
