"""grpcio (client and server): one span per call, unary and streaming, with payloads.

Built on opentelemetry-instrumentation-grpc: a CLIENT span per call on channels made by
`grpc.insecure_channel`/`grpc.secure_channel` (trace context sent as metadata) and a
SERVER span per served call on servers made by `grpc.server` (joined to the caller's
trace), with `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`. The
client channel is wrapped here with the upstream `client_interceptor` (the upstream
`GrpcInstrumentorClient` would ignore the tracer provider it is given).

On top of it, unless `LUMIGO_INSTRUMENT_GRPC_PAYLOADS=false`: `rpc.request.payload`
and `rpc.response.payload` on both sides (see `_grpc_payloads`), masked and bounded.
`grpc.aio` channels and servers are traced by the upstream instrumentors, without
payloads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "grpc"
HOOK_MODULE = "grpc"

_LOG = logging.getLogger("lumigo-opentelemetry.grpc")
_CHANNELS = ("insecure_channel", "secure_channel")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorServer

    return GrpcInstrumentorServer()  # type: ignore[no-untyped-call]


class _State:
    def __init__(self) -> None:
        self.server: Optional[BaseInstrumentor] = None
        self.aio: Tuple[BaseInstrumentor, ...] = ()
        self.upstream_server: Optional[Callable[..., Any]] = None


_state: Optional[_State] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument grpc once (a second call is a no-op)."""
    global _state
    # imported first: importing grpc may run the distro's own hook, which instruments
    import grpc
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        GrpcInstrumentorClient,
        client_interceptor,
    )
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
    from wrapt import wrap_function_wrapper

    if _state is not None:
        return

    state = _State()
    state.server = instrumentor()
    state.server.instrument(tracer_provider=tracer_provider, skip_dep_check=True)
    upstream_server = grpc.server
    state.upstream_server = upstream_server
    filter_ = getattr(GrpcInstrumentorClient(), "_filter", None)  # type: ignore[no-untyped-call]

    def server(*args: Any, **kwargs: Any) -> Any:
        if config.grpc_payloads:
            try:
                from lumigo_opentelemetry.instrumentations._grpc_payloads import ServerPayloads

                interceptors = list(kwargs.get("interceptors") or ())
                kwargs["interceptors"] = [*interceptors, ServerPayloads(config)]
            except Exception:
                _LOG.debug("grpc server payload capture not installed", exc_info=True)
        return upstream_server(*args, **kwargs)

    grpc.server = server

    def channel(wrapped: Callable[..., Any], _instance: Any, args: Any, kwargs: Any) -> Any:
        made = wrapped(*args, **kwargs)
        try:
            inner = made
            if config.grpc_payloads:
                from lumigo_opentelemetry.instrumentations._grpc_payloads import ClientPayloads

                inner = grpc.intercept_channel(made, ClientPayloads(config))
            traced = client_interceptor(  # type: ignore[no-untyped-call]
                tracer_provider=tracer_provider, filter_=filter_
            )
            return intercept_channel(inner, traced)  # type: ignore[no-untyped-call]
        except Exception:
            _LOG.debug("grpc channel left untraced", exc_info=True)
            return made

    for name in _CHANNELS:
        wrap_function_wrapper(grpc, name, channel)
    aio = []
    for kind in (GrpcAioInstrumentorClient, GrpcAioInstrumentorServer):
        try:
            upstream = kind()
            upstream.instrument(tracer_provider=tracer_provider, skip_dep_check=True)
            aio.append(upstream)
        except Exception:
            _LOG.debug("grpc.aio not instrumented by %s", kind.__name__, exc_info=True)
    state.aio = tuple(aio)
    _state = state


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    global _state
    state = _state
    if state is None:
        return
    import grpc
    from opentelemetry.instrumentation.utils import unwrap

    for name in _CHANNELS:
        unwrap(grpc, name)
    grpc.server = state.upstream_server
    for upstream in (*state.aio, state.server):
        if upstream is not None and upstream.is_instrumented_by_opentelemetry:
            upstream.uninstrument()
    _state = None
