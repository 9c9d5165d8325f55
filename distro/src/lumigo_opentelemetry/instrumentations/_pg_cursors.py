"""psycopg and psycopg2: one traced cursor class per cursor class, not one per connection.

opentelemetry-instrumentation-psycopg (and -psycopg2) gives every connection that
`connect` opens a new cursor class (`_new_cursor_factory`), whose methods reach that
connection's tracer through a closure. A class is a reference cycle of its own (its
`__mro__` holds it, its methods' `super()` cell holds it), so an app that opens a
connection per request (Django's default `CONN_MAX_AGE = 0`, a `with connect(...)` per
request) leaves a class, its functions and its tracer to the cycle collector each time.

Here contrib's connect wrapper (`wrapped_connection` of its integration, sync and async)
is replaced: the traced cursor class is made once per base cursor class and kept, and
each connection's tracer (contrib's `CursorTracer` over that connection's integration,
which carries its database, host, port and user) is kept by connection (weakly); the
class finds it through `cursor.connection`. Spans, names and attributes are contrib's; a
sync query goes straight to the lean path (`LeanExecution.run`) when that is what the
tracer's `traced_execution` runs.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from lumigo_opentelemetry.instrumentations._dbapi_lean import lean_of

_MAX_CLASSES = 64  # base cursor classes remembered; past that, a class per connection
_classes: Dict[Tuple[type, bool], type] = {}
#: connection -> (its tracer, the `LeanExecution` its `traced_execution` runs, or None)
_tracers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


#: `_tracers.get` without its Python frame: the mapping it reads, and the weak reference
#: it looks a connection up by
_registered = _tracers.data.get  # type: ignore[attr-defined]
_ref = weakref.ref


def _tracer(cursor: Any) -> Any:
    """(tracer, its `LeanExecution` or None) of the cursor's connection, if registered."""
    try:
        return _registered(_ref(cursor.connection))
    except TypeError:  # a connection that cannot be weakly referenced: never registered
        return None


def _async_tracer(cursor: Any) -> Any:
    known = _tracer(cursor)
    return None if known is None else known[0]


def _sync_class(base: type) -> type:
    class TracedCursor(base):  # type: ignore[misc]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            try:  # `_tracer(self)` without its call
                known = _registered(_ref(self.connection))
            except TypeError:
                known = None
            if known is None:
                return super().execute(*args, **kwargs)
            tracer, lean = known
            if lean is None:
                return tracer.traced_execution(self, super().execute, *args, **kwargs)
            return lean.run(tracer, self, super().execute, args, kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> Any:
            try:  # `_tracer(self)` without its call
                known = _registered(_ref(self.connection))
            except TypeError:
                known = None
            if known is None:
                return super().executemany(*args, **kwargs)
            tracer, lean = known
            if lean is None:
                return tracer.traced_execution(self, super().executemany, *args, **kwargs)
            return lean.run(tracer, self, super().executemany, args, kwargs)

        def callproc(self, *args: Any, **kwargs: Any) -> Any:
            try:  # `_tracer(self)` without its call
                known = _registered(_ref(self.connection))
            except TypeError:
                known = None
            if known is None:
                return super().callproc(*args, **kwargs)
            tracer, lean = known
            if lean is None:
                return tracer.traced_execution(self, super().callproc, *args, **kwargs)
            return lean.run(tracer, self, super().callproc, args, kwargs)

    return TracedCursor


def _async_class(base: type) -> type:
    class TracedAsyncCursor(base):  # type: ignore[misc]
        async def execute(self, *args: Any, **kwargs: Any) -> Any:
            tracer = _async_tracer(self)
            if tracer is None:
                return await super().execute(*args, **kwargs)
            return await tracer.traced_execution_async(self, super().execute, *args, **kwargs)

        async def executemany(self, *args: Any, **kwargs: Any) -> Any:
            tracer = _async_tracer(self)
            if tracer is None:
                return await super().executemany(*args, **kwargs)
            return await tracer.traced_execution_async(self, super().executemany, *args, **kwargs)

        async def callproc(self, *args: Any, **kwargs: Any) -> Any:
            tracer = _async_tracer(self)
            if tracer is None:
                return await super().callproc(*args, **kwargs)
            return await tracer.traced_execution_async(self, super().callproc, *args, **kwargs)

    return TracedAsyncCursor


def traced_class(base: type, is_async: bool) -> type:
    """The traced subclass of `base`, made once."""
    key = (base, is_async)
    made = _classes.get(key)
    if made is None:
        made = (_async_class if is_async else _sync_class)(base)
        if len(_classes) < _MAX_CLASSES:
            _classes[key] = made
    return made


class Connect:
    """Replaces `wrapped_connection(connect, args, kwargs)` of a contrib integration."""

    def __init__(self, default_base: type, tracer_class: type, is_async: bool) -> None:
        self.default_base = default_base
        self.tracer_class = tracer_class
        self.is_async = is_async

    def _prepare(self, kwargs: Dict[str, Any]) -> None:
        base = kwargs.pop("cursor_factory", None) or self.default_base
        kwargs["cursor_factory"] = traced_class(base, self.is_async)

    def _keep_tracer(self, integration: Any, connection: Any) -> Any:
        integration.get_connection_attributes(connection)
        tracer = self.tracer_class(integration)
        _tracers[connection] = (tracer, lean_of(tracer))
        return connection

    def __call__(
        self,
        _wrapped: Callable[..., Any],
        integration: Any,
        args: Tuple[Any, ...],
        _kwargs: Mapping[str, Any],
    ) -> Any:
        connect_method, connect_args, connect_kwargs = args
        self._prepare(connect_kwargs)
        if self.is_async:
            return self._connect_async(integration, connect_method, connect_args, connect_kwargs)
        return self._keep_tracer(integration, connect_method(*connect_args, **connect_kwargs))

    async def _connect_async(
        self,
        integration: Any,
        connect_method: Callable[..., Any],
        connect_args: Tuple[Any, ...],
        connect_kwargs: Dict[str, Any],
    ) -> Any:
        connection = await connect_method(*connect_args, **connect_kwargs)
        return self._keep_tracer(integration, connection)


def install(integration: type, connect: Connect) -> None:
    """Replace `integration.wrapped_connection` once (wrapt, so `unwrap` undoes it)."""
    from wrapt import wrap_function_wrapper

    if not _replaced(integration):
        wrap_function_wrapper(integration, "wrapped_connection", connect)


def uninstall(integration: type) -> None:
    """Undo `install()` (used by tests)."""
    from opentelemetry.instrumentation.utils import unwrap

    if _replaced(integration):
        unwrap(integration, "wrapped_connection")


def _replaced(integration: type) -> bool:
    current: Optional[Any] = integration.__dict__.get("wrapped_connection")
    return isinstance(getattr(current, "_self_wrapper", None), Connect)
