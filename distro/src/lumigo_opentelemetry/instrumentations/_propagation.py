"""The parent context of a server span, without running propagators that find nothing.

With the default global propagator (W3C trace context, then W3C baggage: what
`OTEL_PROPAGATORS` gives unless set) a request that carries neither a `traceparent` nor
a `baggage` header extracts to an empty context; the lean server paths check for the
two headers and skip the extraction then. Any other propagator setup (B3, X-Ray, a
user's own, set at any time) is always run.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

_ASGI_NAMES = frozenset({b"traceparent", b"baggage"})


class Extractor:
    """`propagate.extract(carrier, getter=getter)`, for WSGI environs or ASGI scopes."""

    def __init__(self, getter: Any, asgi: bool) -> None:
        from opentelemetry import propagate
        from opentelemetry.context import Context

        self._empty: Callable[[], Any] = Context
        self._getter = getter
        self._extract: Callable[..., Any] = propagate.extract
        self._global: Callable[[], Any] = propagate.get_global_textmap
        self._has_headers = _asgi_has_headers if asgi else _wsgi_has_headers
        self._default: Optional[Any] = None  # the global propagator found to be the default

    def __call__(self, carrier: Any) -> Any:
        if not self._has_headers(carrier):
            propagator = self._global()
            if propagator is self._default or self._is_default(propagator):
                return self._empty()
        return self._extract(carrier, getter=self._getter)

    def wsgi(self, environ: Any) -> Any:
        """`self(environ)` for a WSGI environ, with the header check inline."""
        if "HTTP_TRACEPARENT" not in environ and "HTTP_BAGGAGE" not in environ:
            propagator = self._global()
            if propagator is self._default or self._is_default(propagator):
                return self._empty()
        return self._extract(environ, getter=self._getter)

    def _is_default(self, propagator: Any) -> bool:
        if propagator is self._default:
            return True
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        inner = getattr(propagator, "_propagators", None)
        default = [TraceContextTextMapPropagator, W3CBaggagePropagator]
        if (
            type(propagator) is CompositePropagator
            and isinstance(inner, (list, tuple))
            and [type(p) for p in inner] == default
        ):
            self._default = propagator
            return True
        return False


def _wsgi_has_headers(environ: Any) -> bool:
    return "HTTP_TRACEPARENT" in environ or "HTTP_BAGGAGE" in environ


def _asgi_has_headers(scope: Any) -> bool:
    """Whether the scope has a header contrib's ASGI getter would find under one of the
    two names (it compares decoded names, lower-cased; only ASCII bytes decode to them)."""
    for name, _value in scope.get("headers") or ():
        if type(name) is not bytes or name.lower() in _ASGI_NAMES:
            return True
    return False
