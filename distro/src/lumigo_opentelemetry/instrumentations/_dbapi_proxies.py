"""DB-API connection and cursor proxies that cost less per cursor and per query.

opentelemetry-instrumentation-dbapi (pymysql and every driver on its generic
`TracedConnectionProxy`) builds, for each `connection.cursor()`, a `TracedCursorProxy`
with a new `CursorTracer` (through `typing`'s generic alias call, plus a regular
expression lookup), and each `cursor.execute` goes through the proxy's method, then the
wrapt binding of `traced_execution` and its wrapper: about as much work as the untraced
query's own Python.

Here `DatabaseApiIntegration.wrapped_connection` is wrapped: a connection proxy that
contrib made as usual (`TracedConnectionProxy`, exactly) is replaced by its subclass
`LeanConnectionProxy` around the same connection and integration. Its cursors are
`LeanCursorProxy` (a `TracedCursorProxy` subclass) sharing one `CursorTracer` per
connection: the one contrib makes for a cursor (it holds nothing about the cursor), made
once when the connection is. Their `execute`, `executemany` and `callproc` call the lean path
(`LeanExecution.run`) directly, which is what `traced_execution` would have called; the
usual cursor attributes (`fetchone`, `rowcount`, ...) are read through properties that
forward to the cursor as wrapt's proxy does, without its failed lookup first.
Anything else (another proxy type, a tracer class whose `traced_execution` is not ours,
a failure here) gets contrib's own cursor proxy.
"""

from __future__ import annotations

import logging
from operator import attrgetter
from typing import Any, Callable, Mapping, Optional, Tuple

from lumigo_opentelemetry.instrumentations._dbapi_lean import LeanExecution, lean_of

logger = logging.getLogger("lumigo-opentelemetry")

#: (LeanConnectionProxy, LeanCursorProxy), made when installed
_classes: Optional[Tuple[type, type]] = None


def _make_classes(dbapi: Any) -> Tuple[type, type]:
    # what `TracedCursorProxy.__init__` calls first: its wrapt base's `__init__`
    base_init: Callable[..., None] = next(
        klass.__dict__["__init__"]
        for klass in dbapi.TracedCursorProxy.__mro__[1:]
        if "__init__" in klass.__dict__
    )
    new: Callable[[type], Any] = dbapi.TracedCursorProxy.__new__
    base_getattribute: Any = next(
        klass.__dict__["__getattribute__"]
        for klass in dbapi.TracedConnectionProxy.__mro__[1:]
        if "__getattribute__" in klass.__dict__
    )
    get = object.__getattribute__

    class LeanCursorProxy(dbapi.TracedCursorProxy):  # type: ignore[misc]
        """`TracedCursorProxy` with its connection's tracer (`_lean_cursor`); queries go
        straight to the lean path."""

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            cursor = self.__wrapped__
            return self._self_lumigo_lean.run(
                self._self_cursor_tracer, cursor, cursor.execute, args, kwargs
            )

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            cursor = self.__wrapped__
            return self._self_lumigo_lean.run(
                self._self_cursor_tracer, cursor, cursor.executemany, args, kwargs
            )

        def callproc(self, *args: Any, **kwargs: Any) -> Any:
            cursor = self.__wrapped__
            return self._self_lumigo_lean.run(
                self._self_cursor_tracer, cursor, cursor.callproc, args, kwargs
            )

    class LeanConnectionProxy(dbapi.TracedConnectionProxy):  # type: ignore[misc]
        """`TracedConnectionProxy` whose cursors share one tracer (see module)."""

        # wrapt's attribute lookup (in C), not contrib's `__getattribute__` (a Python call
        # on every read, that ends in the same lookup for anything the app reads)
        __getattribute__ = base_getattribute

        def __init__(self, connection: Any, db_api_integration: Any) -> None:
            super().__init__(connection, db_api_integration)
            self._self_lumigo_tracer = _tracer_for(dbapi, db_api_integration)

        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            cursor = get(self, "__wrapped__").cursor(*args, **kwargs)
            known = get(self, "_self_lumigo_tracer")
            if known is not None:
                try:  # `LeanCursorProxy(...)` with no `__init__` call (no frame of ours)
                    proxy = new(LeanCursorProxy)
                    base_init(proxy, cursor)
                    proxy._self_cursor_tracer = known[0]
                    proxy._self_lumigo_lean = known[1]
                    return proxy
                except Exception:
                    logger.debug("lean DB-API cursor not made", exc_info=True)
            return dbapi.get_traced_cursor_proxy(cursor, get(self, "_self_db_api_integration"))

    for name in _FORWARDED:
        setattr(LeanCursorProxy, name, _forwarded(name))
    return LeanConnectionProxy, LeanCursorProxy


#: cursor attributes read through a property of the proxy, not wrapt's fallback (which
#: makes and drops an AttributeError, message included, on every read)
_FORWARDED = (
    "fetchone",
    "fetchmany",
    "fetchall",
    "close",
    "description",
    "rowcount",
    "lastrowid",
    "rownumber",
    "arraysize",
    "nextset",
    "connection",
    "scroll",
)


def _forwarded(name: str) -> property:
    """The wrapped cursor's `name`: read (in C), set and deleted there, as wrapt does."""

    def set_(proxy: Any, value: Any) -> None:
        setattr(proxy.__wrapped__, name, value)

    def delete(proxy: Any) -> None:
        delattr(proxy.__wrapped__, name)

    return property(attrgetter(f"__wrapped__.{name}"), set_, delete)


def _tracer_for(dbapi: Any, integration: Any) -> Optional[Tuple[Any, LeanExecution]]:
    """(tracer, lean): the `CursorTracer` contrib makes for a cursor of `integration`'s
    connection (made around a stand-in cursor, which it does not touch), when its
    `traced_execution` is ours; else None (the connection's cursors stay contrib's)."""
    try:
        proxy = dbapi.get_traced_cursor_proxy(_StandIn(), integration)
        if type(proxy) is dbapi.TracedCursorProxy:
            tracer = proxy._self_cursor_tracer
            lean = lean_of(tracer)
            if lean is not None:
                return (tracer, lean)
    except Exception:
        logger.debug("lean DB-API cursors not used", exc_info=True)
    return None


class _StandIn:
    """The cursor the tracer is made around (contrib's proxy only wraps it)."""


class _WrappedConnection:
    """Wraps `DatabaseApiIntegration.wrapped_connection`: contrib's connection proxy,
    re-made as a `LeanConnectionProxy`."""

    def __init__(self, reference: Any, lean_class: Any) -> None:
        self.reference = reference
        self.lean_class = lean_class

    def __call__(
        self,
        wrapped: Callable[..., Any],
        _instance: Any,
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        proxy: Any = wrapped(*args, **kwargs)
        try:
            if type(proxy) is self.reference:
                return self.lean_class(proxy.__wrapped__, proxy._self_db_api_integration)
        except Exception:
            logger.debug("lean DB-API connection proxy not used", exc_info=True)
        return proxy


def install() -> None:
    """Wrap `DatabaseApiIntegration.wrapped_connection` once."""
    global _classes
    from opentelemetry.instrumentation import dbapi
    from wrapt import wrap_function_wrapper

    current = dbapi.DatabaseApiIntegration.__dict__.get("wrapped_connection")
    if isinstance(getattr(current, "_self_wrapper", None), _WrappedConnection):
        return
    if _classes is None:
        _classes = _make_classes(dbapi)
    wrap_function_wrapper(
        dbapi.DatabaseApiIntegration,
        "wrapped_connection",
        _WrappedConnection(dbapi.TracedConnectionProxy, _classes[0]),
    )


def uninstall() -> None:
    """Undo `install()` (used by tests); connections made since keep their proxies."""
    from opentelemetry.instrumentation import dbapi
    from opentelemetry.instrumentation.utils import unwrap

    current = dbapi.DatabaseApiIntegration.__dict__.get("wrapped_connection")
    if isinstance(getattr(current, "_self_wrapper", None), _WrappedConnection):
        unwrap(dbapi.DatabaseApiIntegration, "wrapped_connection")
