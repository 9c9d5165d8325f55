"""The lean server paths' parent context: what `propagate.extract` gives, for WSGI and ASGI.

`Extractor` skips the propagators only when the global one is the default W3C pair and
the request has neither of their headers; every case here compares it with the real
`propagate.extract` on the same carrier, under the default and under other propagators.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lumigo_opentelemetry.instrumentations._propagation import Extractor

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class TenantPropagator(TextMapPropagator):
    """A user's own propagator: puts an `x-tenant` header into the baggage."""

    def extract(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        getter: Getter[CarrierT] = None,  # type: ignore[assignment]
    ) -> Context:
        found = getter.get(carrier, "x-tenant")
        if not found:
            return context or Context()
        return baggage.set_baggage("tenant", found[0], context or Context())

    def inject(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        return None

    @property
    def fields(self) -> Set[str]:
        return {"x-tenant"}


@pytest.fixture
def global_propagator() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    yield
    propagate.set_global_textmap(saved)


def _wsgi(**headers: str) -> Dict[str, Any]:
    environ: Dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    for name, value in headers.items():
        environ["HTTP_" + name.upper()] = value
    return environ


def _asgi(*headers: Tuple[bytes, bytes]) -> Dict[str, Any]:
    return {"type": "http", "headers": list(headers)}


def _summary(context: Context) -> Tuple[Any, Dict[str, object]]:
    span = trace.get_current_span(context).get_span_context()
    return (span.trace_id, span.span_id, span.is_remote), dict(baggage.get_all(context))


CASES: List[Tuple[Dict[str, Any], Dict[str, Any]]] = [
    (_wsgi(), _asgi()),
    (_wsgi(HOST="h"), _asgi((b"host", b"h"))),
    (_wsgi(TRACEPARENT=PARENT), _asgi((b"traceparent", PARENT.encode()))),
    (_wsgi(BAGGAGE="k=v"), _asgi((b"Baggage", b"k=v"))),
    (_wsgi(X_TENANT="acme"), _asgi((b"x-tenant", b"acme"), (b"TRACEPARENT", PARENT.encode()))),
]


@pytest.mark.usefixtures("global_propagator")
@pytest.mark.parametrize(("environ", "scope"), CASES)
def test_same_parent_as_extract_under_the_default_propagators(
    environ: Dict[str, Any], scope: Dict[str, Any]
) -> None:
    wsgi, asgi = Extractor(wsgi_getter, asgi=False), Extractor(asgi_getter, asgi=True)
    assert _summary(wsgi(environ)) == _summary(propagate.extract(environ, getter=wsgi_getter))
    assert _summary(asgi(scope)) == _summary(propagate.extract(scope, getter=asgi_getter))


@pytest.mark.usefixtures("global_propagator")
def test_a_propagator_set_later_is_run_even_without_w3c_headers() -> None:
    wsgi, asgi = Extractor(wsgi_getter, asgi=False), Extractor(asgi_getter, asgi=True)
    environ, scope = _wsgi(X_TENANT="acme"), _asgi((b"x-tenant", b"acme"))
    assert _summary(wsgi(environ))[1] == {}  # the default pair: nothing to find
    propagate.set_global_textmap(TenantPropagator())
    assert _summary(wsgi(environ))[1] == {"tenant": "acme"}
    assert _summary(asgi(scope))[1] == {"tenant": "acme"}
    # the default pair plus the user's: still run
    propagate.set_global_textmap(
        CompositePropagator(
            [TraceContextTextMapPropagator(), W3CBaggagePropagator(), TenantPropagator()]
        )
    )
    assert _summary(asgi(scope))[1] == {"tenant": "acme"}
