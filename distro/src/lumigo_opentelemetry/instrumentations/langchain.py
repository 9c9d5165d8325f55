"""LangChain: one span per chain, LLM/chat-model call, tool and retriever step.

Built on OpenLLMetry's opentelemetry-instrumentation-langchain (what the upstream
distro uses): a LangChain callback handler opens a span for each run (`<Name>.workflow`,
`execute_task <Name>`, `<Model>.chat`, `execute_tool <name>`), nested as the runs are,
with the run's inputs and outputs as JSON (`traceloop.entity.input`/`output`,
`gen_ai.input.messages`/`output.messages`, ...). Its tracer is handed a provider that
masks before anything is stored: in every JSON-looking attribute value the values of
secret keys become `****`, also inside JSON carried in a string (a model's JSON answer);
every string value is cut to the attribute limit. Free text (a prompt that spells out a
password) cannot be told apart from other text and is kept as written.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional

from lumigo_opentelemetry.masking import MASKED

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "langchain"
HOOK_MODULE = "langchain_core"

_LOG = logging.getLogger("lumigo-opentelemetry.langchain")
_JSON_STARTS = ("{", "[")
_MAX_DEPTH = 32


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor

    return LangchainInstrumentor()


def _mask_deep(value: Any, config: Config, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        secret = config.masking.is_secret
        return {
            k: MASKED if isinstance(k, str) and secret(k) else _mask_deep(v, config, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_deep(v, config, depth + 1) for v in value]
    if isinstance(value, str) and value.lstrip().startswith(_JSON_STARTS):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, (dict, list)):
            return json.dumps(_mask_deep(parsed, config, depth + 1), ensure_ascii=False)
    return value


def masked_value(value: Any, config: Config) -> Any:
    """An attribute value with secrets in its JSON masked and strings bounded."""
    if not isinstance(value, str):
        return value
    limit = config.attribute_length_limit
    if value.lstrip().startswith(_JSON_STARTS):
        try:
            value = _mask_deep(value, config)
        except Exception:
            _LOG.debug("langchain attribute masking failed; value dropped", exc_info=True)
            return MASKED
    return value[:limit]


def _masked_attributes(attributes: Optional[Mapping[str, Any]], config: Config) -> Any:
    if not attributes:
        return attributes
    return {key: masked_value(value, config) for key, value in attributes.items()}


class _MaskingTracerProvider:
    """Hands out tracers whose spans mask what the instrumentation sets on them."""

    def __init__(self, provider: Any, config: Config) -> None:
        self.provider = provider
        self.config = config

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return _MaskingTracer(self, args, kwargs)


class _MaskingTracer:
    def __init__(self, owner: _MaskingTracerProvider, args: Any, kwargs: Any) -> None:
        self._owner = owner
        self._tracer = owner.provider.get_tracer(*args, **kwargs)

    def _span(self, span: Any) -> Any:
        import wrapt

        owner = self._owner

        class MaskingSpan(wrapt.ObjectProxy):  # type: ignore[type-arg]
            def set_attribute(self, key: str, value: Any) -> None:
                self.__wrapped__.set_attribute(key, masked_value(value, owner.config))

            def set_attributes(self, attributes: Dict[str, Any]) -> None:
                self.__wrapped__.set_attributes(_masked_attributes(attributes, owner.config))

        return MaskingSpan(span)

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["attributes"] = _masked_attributes(kwargs.get("attributes"), self._owner.config)
        return self._span(self._tracer.start_span(name, *args, **kwargs))

    @contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        kwargs["attributes"] = _masked_attributes(kwargs.get("attributes"), self._owner.config)
        with self._tracer.start_as_current_span(name, *args, **kwargs) as span:
            yield self._span(span)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracer, name)


_masking: Optional[_MaskingTracerProvider] = None


def _wrapt_compat() -> None:
    """Let the instrumentation releases that still call wrapt 1's
    `wrap_function_wrapper(module=..., name=..., wrapper=...)` (the newest ones for
    Python 3.9, <= 0.50) run on wrapt 2, whose first parameter is `target`. Newer releases
    pass it positionally, which the adapter passes through unchanged."""
    import inspect

    import wrapt
    from opentelemetry.instrumentation import langchain as upstream_module

    wrap = getattr(upstream_module, "wrap_function_wrapper", None)
    if wrap is not wrapt.wrap_function_wrapper:
        return  # already adapted
    if "module" in inspect.signature(wrap).parameters:
        return  # wrapt 1 API: nothing to adapt

    def wrap_function_wrapper(*args: Any, **kwargs: Any) -> Any:
        if "module" in kwargs:
            args = (kwargs.pop("module"), *args)
        return wrapt.wrap_function_wrapper(*args, **kwargs)

    upstream_module.wrap_function_wrapper = wrap_function_wrapper  # type: ignore[attr-defined]


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Register the instrumentation's callback handler once; a later call only refreshes
    the configuration."""
    global _masking
    if _masking is None:
        _masking = _MaskingTracerProvider(tracer_provider, config)
    else:
        _masking.config = config
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        _wrapt_compat()
        upstream.instrument(tracer_provider=_masking, skip_dep_check=True)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
