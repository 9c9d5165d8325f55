"""The current OpenTelemetry context, read and set without the API's call layers.

`opentelemetry.context` keeps the current context in one `ContextVar` when its runtime
context is the default `ContextVarsRuntimeContext`; the lean server paths then read and
set that variable directly (one C call instead of three to five Python calls). Any
other runtime context (set with `OTEL_PYTHON_CONTEXT`, or replaced at any time) goes
through the API functions, as before.
"""

from __future__ import annotations

from typing import Any, Tuple


class CurrentContext:
    """`get_current`, `get_current_span`, `attach(set_span_in_context(...))` and `detach`."""

    def __init__(self) -> None:
        from opentelemetry import context, trace
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
        from opentelemetry.trace.propagation import _SPAN_KEY

        self._api = context
        self._trace = trace
        self._context_type = context.Context
        self._span_type = trace.Span
        self._invalid = trace.INVALID_SPAN
        self._key = _SPAN_KEY
        runtime = getattr(context, "_RUNTIME_CONTEXT", None)
        variable = getattr(runtime, "_current_context", None)
        if type(runtime) is not ContextVarsRuntimeContext or variable is None:
            runtime = variable = None
        self._runtime = runtime
        self._variable: Any = variable  # set whenever `_runtime` is

    # each method checks inline that the API's runtime context is still the one found

    def get(self) -> Any:
        """`get_current()`."""
        runtime = self._runtime
        if runtime is None or getattr(self._api, "_RUNTIME_CONTEXT", None) is not runtime:
            return self._api.get_current()
        return self._variable.get()

    def current(self) -> Tuple[Any, bool]:
        """(the current context, whether it holds no valid span: a server span's case)."""
        runtime = self._runtime
        if runtime is None or getattr(self._api, "_RUNTIME_CONTEXT", None) is not runtime:
            current = self._api.get_current()
            return current, self._trace.get_current_span(current) is self._invalid
        current = self._variable.get()
        span = current.get(self._key)
        return current, (
            span is None or span is self._invalid or not isinstance(span, self._span_type)
        )

    def attach(self, span: Any, parent: Any) -> Any:
        """`attach(set_span_in_context(span, parent))`: the token for `detach`."""
        runtime = self._runtime
        if (
            parent is None
            or runtime is None
            or getattr(self._api, "_RUNTIME_CONTEXT", None) is not runtime
        ):
            return self._api.attach(self._trace.set_span_in_context(span, parent))
        values = parent.copy() if parent else {}
        values[self._key] = span
        return self._variable.set(self._context_type(values))

    def detach(self, token: Any) -> None:
        """`detach(token)`: a failure is logged by the API, as it logs its own."""
        runtime = self._runtime
        if runtime is not None and getattr(self._api, "_RUNTIME_CONTEXT", None) is runtime:
            try:
                self._variable.reset(token)
                return
            except Exception:  # the API's own detach says why (logged there)
                pass
        self._api.detach(token)
