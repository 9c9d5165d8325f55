"""Flask: server spans, plus payloads.

On the default HTTP semantic conventions the server spans come from our lean path
(`_flask_server`: the same spans as opentelemetry-instrumentation-flask, for a fraction
of the CPU); with `OTEL_SEMCONV_STABILITY_OPT_IN` set to `http` or `http/dup` they come
from the upstream instrumentor. The payloads are the same either way; with the upstream
instrumentor they are added through its request/response hooks (no fork):

- `http.request.headers` (request hook) and `http.response.headers` (response hook);
- secret query parameters masked in the URL attributes (response hook);
- `http.request.body`: what the application itself read from `wsgi.input`, recorded
  by a pass-through wrapper (bounded by the attribute length limit); a body the
  application never reads is not read by us either;
- `http.response.body`: for ordinary (non-streamed) responses, taken in the last
  `after_request` step; streamed responses and `send_file` are left untouched.

All capture code is guarded: a failure drops that attribute and logs at debug.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.masking import MASKED

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "flask"
HOOK_MODULE = "flask"
#: the version gate reads the declared Flask range from here (no instrumentor import)
INSTRUMENTOR_DISTRIBUTION = "opentelemetry-instrumentation-flask"

logger = logging.getLogger("lumigo-opentelemetry")

_INPUT_KEY = "lumigo.request_input"


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    return FlaskInstrumentor()


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    if lean_path_applies():
        _instrument_lean(config, tracer_provider)
    else:
        _instrument_with_contrib(config, tracer_provider)


def lean_path_applies() -> bool:
    """Our own server spans on the default HTTP semantic conventions; the contrib
    instrumentor for `OTEL_SEMCONV_STABILITY_OPT_IN=http` / `http/dup`.

    The setting is read as contrib reads it (comma-separated, each item stripped; any
    `http` or `http/dup` item leaves the default), without importing contrib's
    `_semconv` module, which costs more than a tenth of Flask's own import."""
    import os

    opt_in = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN")
    if not opt_in:
        return True
    items = [item.strip() for item in opt_in.split(",")]
    return "http" not in items and "http/dup" not in items


def _instrument_lean(config: Config, tracer_provider: TracerProvider) -> None:
    """Our server spans on every app built from now on; without wrapt (`Flask.__init__`
    is wrapped by a plain function, undone by `uninstrument`)."""
    import functools

    import flask

    from lumigo_opentelemetry.instrumentations._flask_server import FlaskServerSpans

    spans = FlaskServerSpans(config, tracer_provider)
    cls = flask.Flask
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            spans.install(self)
        except Exception:
            logger.debug("flask server spans not installed on %r", self, exc_info=True)

    setattr(__init__, _ORIGINAL_INIT, original)
    cls.__init__ = __init__  # type: ignore[method-assign]


_ORIGINAL_INIT = "_lumigo_original_init"


def _instrument_with_contrib(config: Config, tracer_provider: TracerProvider) -> None:
    import flask
    import wrapt

    _load_span_kind()

    # the upstream calls these hooks unguarded, inside the request: never let them raise
    def request_hook(span: Span, environ: Mapping[str, Any]) -> None:
        try:
            if _is_server_span(span):
                payloads.set_captured(
                    span, payloads.REQUEST_HEADERS, _request_headers_attribute, environ, config
                )
        except Exception:
            logger.debug("flask request hook failed", exc_info=True)

    def response_hook(span: Span, _status: str, headers: Any) -> None:
        try:
            if _is_server_span(span):
                payloads.set_captured(
                    span,
                    payloads.RESPONSE_HEADERS,
                    payloads.headers_attribute,
                    headers,
                    config,
                    payloads.Site.HTTP_RESPONSE_HEADERS,
                )
                # the URL attributes are final by now (the request hook runs before they are set)
                payloads.mask_span_urls(span, config)
        except Exception:
            logger.debug("flask response hook failed", exc_info=True)

    instrumentor().instrument(
        tracer_provider=tracer_provider, request_hook=request_hook, response_hook=response_hook
    )

    def after_init(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        try:
            instance.wsgi_app = _recording_wsgi_app(instance.wsgi_app, config)
            # registered first, so Flask runs it last: it sees the final response
            instance.after_request(_capture_bodies(config))
        except Exception:
            logger.debug("flask payload capture not installed on %r", instance, exc_info=True)

    # `flask.Flask` is the upstream instrumented subclass from here on
    wrapt.wrap_function_wrapper(flask, "Flask.__init__", after_init)


_SERVER_KIND: Any = None


def _load_span_kind() -> Any:
    global _SERVER_KIND
    if _SERVER_KIND is None:
        from opentelemetry.trace import SpanKind

        _SERVER_KIND = SpanKind.SERVER
    return _SERVER_KIND


def _is_server_span(span: Any) -> bool:
    """Payloads go on server spans only (not on the INTERNAL span of a Flask app
    running inside another traced WSGI app)."""
    return (
        span is not None
        and span.is_recording()
        and getattr(span, "kind", None) == (_SERVER_KIND or _load_span_kind())
    )


def _request_headers_attribute(environ: Mapping[str, Any], config: Config) -> str:
    return payloads.headers_attribute(payloads.wsgi_request_headers(environ), config)


def _recording_wsgi_app(wsgi_app: Any, config: Config) -> Callable[..., Any]:
    from lumigo_opentelemetry.instrumentations._wsgi_capture import RecordingInput

    def recording_app(environ: Any, start_response: Any) -> Any:
        try:
            stream = environ.get("wsgi.input")
            if stream is not None and not isinstance(stream, RecordingInput):
                recording = RecordingInput(stream, config.attribute_length_limit)
                environ["wsgi.input"] = recording
                environ[_INPUT_KEY] = recording
        except Exception:
            logger.debug("request body recording not installed", exc_info=True)
        return wsgi_app(environ, start_response)

    return recording_app


def _capture_bodies(config: Config) -> Callable[[Any], Any]:
    import flask
    from opentelemetry import trace
    from opentelemetry.instrumentation.flask import (  # the key contrib stores its span under
        _ENVIRON_SPAN_KEY as upstream_span_key,
    )

    def capture(response: Any) -> Any:
        try:
            environ = flask.request.environ
            span = environ.get(upstream_span_key) or trace.get_current_span()
            if not _is_server_span(span):
                return response
            recording = environ.get(_INPUT_KEY)
            recorder = getattr(recording, "recorder", None)
            # nothing read (e.g. a GET): no attribute, as body_attribute gives for no body
            if recorder is not None and recorder.total:
                payloads.set_captured(
                    span,
                    payloads.REQUEST_BODY,
                    recorder.attribute,
                    config,
                    environ.get("CONTENT_TYPE"),
                )
            payloads.set_captured(span, payloads.RESPONSE_BODY, _response_body, response, config)
        except Exception:
            logger.debug("flask body capture failed", exc_info=True)
        return response

    return capture


def _response_body(response: Any, config: Config) -> Optional[str]:
    """The body of a non-streamed response, without touching streamed ones.

    A short single-chunk body's text is kept in a bounded memo keyed on its content type
    and bytes (fixed answers repeat: health checks, empty lists, `ok`); only texts in
    which nothing was masked are kept there."""
    items: Any = getattr(response, "response", None)
    kind = type(items)
    if kind is not list and kind is not tuple and not getattr(response, "is_sequence", False):
        return None
    if getattr(response, "direct_passthrough", False):
        return None
    content_type = response.headers.get("Content-Type")
    if len(items) == 1 and type(items[0]) is bytes:
        # the usual single-chunk body: no copy, no re-encoding
        body = items[0]
        limit = max(0, config.attribute_length_limit)
        key = (content_type, body) if len(body) <= _BODY_MEMO_LENGTH else None
        masking = config.masking
        if key is not None:
            known = _BODY_TEXTS.get(key)
            if known is not None and known[0] is masking and known[1] == limit:
                return known[2]
        text = payloads.body_attribute(
            body[:limit],
            config,
            content_type,
            total_size=len(body),
            site=payloads.Site.HTTP_RESPONSE_BODIES,
        )
        if key is not None and text is not None and MASKED not in text:
            if len(_BODY_TEXTS) >= _BODY_MEMO_SIZE:
                _BODY_TEXTS.clear()
            _BODY_TEXTS[key] = (masking, limit, text)
        return text
    recorder = payloads.BoundedBody(config.attribute_length_limit)
    for item in items:
        recorder.add(item)
    return payloads.body_attribute(
        recorder.data,
        config,
        content_type,
        total_size=recorder.total,
        site=payloads.Site.HTTP_RESPONSE_BODIES,
    )


_BODY_MEMO_LENGTH = 1024
_BODY_MEMO_SIZE = 256
#: (content type, body) -> (masking, limit, attribute text) of short bodies seen before
_BODY_TEXTS: Dict[Tuple[Any, bytes], Tuple[Any, int, str]] = {}


def uninstrument() -> None:
    """Undo `instrument()` (used by tests): the library's own class is restored."""
    import flask

    original = getattr(flask.Flask.__init__, _ORIGINAL_INIT, None)
    if original is not None:
        flask.Flask.__init__ = original  # type: ignore[method-assign]
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
