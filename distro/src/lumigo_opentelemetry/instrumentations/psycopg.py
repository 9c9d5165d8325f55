"""psycopg (3): one CLIENT span per `execute`, sync and async, with `db.statement`.

Built on opentelemetry-instrumentation-psycopg (DB-API integration over
`psycopg.connect`, `Connection.connect` and `AsyncConnection.connect`: span named after
the SQL verb and database, `db.system=postgresql`, `db.name`, `db.user`, peer address).
The statement is the query text with its placeholders: values sent as parameters never
leave the process, a literal with a secret name (`password = '...'`) is masked
(`_dbapi`); long statements are cut by the span limits. Django's PostgreSQL
backend on psycopg 3 is traced through `Connection.connect`.
Connections share one traced cursor class (`_pg_cursors`), so a connection per request
leaves nothing to the cycle collector; a failed statement neither (`_dbapi`).
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
    import psycopg
    from opentelemetry.instrumentation import psycopg as contrib

    from lumigo_opentelemetry.instrumentations import _dbapi, _pg_cursors

    _dbapi.install(config)  # statements masked, as for every DB-API driver
    _dbapi.release_errors()
    _pg_cursors.install(
        contrib.DatabaseApiIntegration,
        _pg_cursors.Connect(psycopg.Cursor, contrib.CursorTracer, is_async=False),
    )
    _pg_cursors.install(
        contrib.DatabaseApiAsyncIntegration,
        _pg_cursors.Connect(psycopg.AsyncCursor, contrib.CursorTracer, is_async=True),
    )
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(tracer_provider=tracer_provider, skip_dep_check=True)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    from opentelemetry.instrumentation import psycopg as contrib

    from lumigo_opentelemetry.instrumentations import _pg_cursors

    _pg_cursors.uninstall(contrib.DatabaseApiIntegration)
    _pg_cursors.uninstall(contrib.DatabaseApiAsyncIntegration)
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
