"""The helpers upstream's README documents, with its semantics: never raising into the app.

- `lumigo_wrapped(func)`: runs `func` in a span `LumigoRoot` (tracer `lumigo`) carrying
  `input_args`, `input_kwargs` and `return_value` as JSON (secret keys masked, cut to the
  attribute length limit); an exception is recorded on the span and re-raised.
- `create_programmatic_error(message, error_type)`: a span event named `message` with
  attribute `lumigo.type=error_type` on the current span (Lumigo's programmatic error).
- `add_execution_tags(tags, only_current_span=False)`: see `execution_tags`.

Importing this module imports nothing of the OpenTelemetry SDK (the package imports it at
start-up, also when tracing is switched off); each helper imports what it needs when called.
"""

from __future__ import annotations

from lumigo_opentelemetry._logging import logger

TYPE_CHECKING = False  # typing is not imported at start-up (it costs milliseconds)
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping, TypeVar

    T = TypeVar("T")

__all__ = ["add_execution_tags", "create_programmatic_error", "lumigo_wrapped"]

ROOT_SPAN_NAME = "LumigoRoot"
TRACER_NAME = "lumigo"
PROGRAMMATIC_ERROR_ATTRIBUTE = "lumigo.type"


def _dump(value: Any) -> str:
    import json

    from lumigo_opentelemetry.config import get_config
    from lumigo_opentelemetry.masking import Site

    config = get_config()
    try:
        text = config.masking.apply(Site.DB, json.loads(json.dumps(value, default=str)))
    except Exception:
        text = repr(value)
    return text[: config.attribute_length_limit]


def _set(span: Any, key: str, value: Any) -> None:
    try:
        span.set_attribute(key, _dump(value))
    except Exception:
        logger.debug("lumigo_wrapped: %s not recorded", key, exc_info=True)


def lumigo_wrapped(func: Callable[..., T]) -> Callable[..., T]:
    """Trace each call of `func` as a `LumigoRoot` span with its arguments and result."""

    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from opentelemetry import trace

        tracer = trace.get_tracer_provider().get_tracer(TRACER_NAME)
        with tracer.start_as_current_span(ROOT_SPAN_NAME) as span:
            if span.is_recording():
                _set(span, "input_args", list(args))
                _set(span, "input_kwargs", kwargs)
            result = func(*args, **kwargs)
            if span.is_recording():
                _set(span, "return_value", result)
            return result

    return wrapper


def add_execution_tags(tags: Mapping[str, Any], only_current_span: bool = False) -> None:
    """Add execution tags to the current span and, by default, to the spans started after
    it in this context; does nothing while the distro is not tracing. Never raises."""
    try:
        from lumigo_opentelemetry import _activation

        provider = _activation.current_tracer_provider()
        if isinstance(provider, _activation.DisabledTracerProvider):
            return
        from lumigo_opentelemetry import execution_tags

        execution_tags.add_execution_tags(tags, only_current_span, provider)
    except Exception as exc:
        logger.warning("execution tags not added: %r", exc)


def create_programmatic_error(error_message: str, error_type: str) -> None:
    """Report a programmatic error on the current span; never raises."""
    try:
        from opentelemetry.trace import get_current_span

        get_current_span().add_event(
            str(error_message), {PROGRAMMATIC_ERROR_ATTRIBUTE: str(error_type)}
        )
    except Exception as exc:
        logger.warning("programmatic error not recorded: %r", exc)
