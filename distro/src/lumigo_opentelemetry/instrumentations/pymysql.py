"""pymysql: one CLIENT span per `cursor.execute`, carrying the SQL as `db.statement`.

Built on opentelemetry-instrumentation-pymysql (DB-API integration: span named after the
SQL verb and database, `db.system=mysql`, `db.name`, `db.user`, peer address). The
statement is the query text the app passed (placeholders, not bound parameters, so
values sent as parameters never appear); values longer than the attribute limit are cut
by the tracer provider's span limits. The statement is masked (`_dbapi`: `name =
'literal'` pairs with a secret name, URL userinfo, the tracer token). Connections opened
with `pymysql.connect(...)` are traced; `pymysql.Connect`/
`pymysql.connections.Connection(...)` bypass the wrapper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "pymysql"
HOOK_MODULE = "pymysql"


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor

    return PyMySQLInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Wrap `pymysql.connect` once (a second call is a no-op)."""
    from lumigo_opentelemetry.instrumentations import _dbapi, _dbapi_proxies

    _dbapi.install(config)
    _dbapi.release_errors()
    _dbapi_proxies.install()  # cursors sharing their connection's tracer
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(tracer_provider=tracer_provider)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
