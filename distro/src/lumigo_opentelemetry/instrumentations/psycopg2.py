"""psycopg2: one CLIENT span per `cursor.execute`, carrying the SQL as `db.statement`.

Built on opentelemetry-instrumentation-psycopg2 (DB-API integration: span named after
the SQL verb and database, `db.system=postgresql`, `db.name`, `db.user`, peer address).
The statement is the query text the app passed, with its placeholders: values sent as
parameters never leave the process; a literal with a secret name
(`password = '...'`) is masked (`_dbapi`). Statements longer than the attribute limit are cut
by the tracer provider's span limits. Connections made by `psycopg2.connect(...)`
(which is what Django's PostgreSQL backend calls) are traced.
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

NAME = "psycopg2"
HOOK_MODULE = "psycopg2"


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor

    return Psycopg2Instrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Wrap `psycopg2.connect` once (a second call is a no-op)."""
    from opentelemetry.instrumentation import psycopg2 as contrib
    from psycopg2.extensions import cursor

    from lumigo_opentelemetry.instrumentations import _dbapi, _pg_cursors

    _dbapi.install(config)  # statements masked, as for every DB-API driver
    _dbapi.release_errors()
    _pg_cursors.install(
        contrib.DatabaseApiIntegration,
        _pg_cursors.Connect(cursor, contrib.CursorTracer, is_async=False),
    )
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(tracer_provider=tracer_provider, skip_dep_check=True)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    from opentelemetry.instrumentation import psycopg2 as contrib

    from lumigo_opentelemetry.instrumentations import _pg_cursors

    _pg_cursors.uninstall(contrib.DatabaseApiIntegration)
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
