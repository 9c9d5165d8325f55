"""Django (WSGI and ASGI): a SERVER span per request with its route, plus payloads.

Built on opentelemetry-instrumentation-django (its middleware, first in
`settings.MIDDLEWARE`: span `<METHOD> <route>`, `http.route`, status, client and server
address; the caller's trace context is honoured). The upstream instrumentor reads the
settings when it instruments, so it runs at the first `BaseHandler.load_middleware()`,
when the app's settings are final; the post-import hook (on the `django` package, so
that the upstream module, which imports Django's request handlers, never meets a
half-imported handler module) only wraps that method. Nothing configures Django's
settings on the app's behalf. On top of it, as for Flask:

- `http.request.headers` and `http.response.headers`, secret ones masked;
- `http.request.body`: the body the view read (`request.body`, or `request.POST` of a
  non-multipart form); a body the app never read is not read by us either;
- `http.response.body` of non-streaming responses (`StreamingHttpResponse`,
  `FileResponse` are left alone);
- secret query parameters masked in the URL attributes; everything truncated.

Hooks are guarded: a capture failure drops that attribute; the request is untouched.

On the default HTTP semantic conventions, WSGI requests take our lean path instead
(`_django_server.LeanMiddleware` in the upstream middleware's place: the same spans and
payloads for a fraction of the CPU); ASGI requests keep the upstream middleware's code.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.masking import MASKED

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "django"
HOOK_MODULE = "django"

_LOG = logging.getLogger("lumigo-opentelemetry.django")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    return DjangoInstrumentor()


def response_body(response: Any, config: Config) -> Optional[str]:
    """The body of a non-streaming response, bounded, as `body_attribute` renders it.

    A short body's text is kept in a bounded memo keyed on its content type and bytes
    (fixed answers repeat: health checks, empty lists, `ok`); only texts in which
    nothing was masked are kept there."""
    if getattr(response, "streaming", True):
        return None
    content = response.content
    content_type = _content_type(response)
    limit = max(0, config.attribute_length_limit)
    key: Optional[Tuple[Any, bytes]] = None
    masking = config.masking
    # (a body within the bytes kept below: the whole body is rendered)
    if type(content) is bytes and len(content) <= min(_BODY_MEMO_LENGTH, 4 * limit):
        key = (content_type, content)
        try:
            known = _BODY_TEXTS.get(key)
        except TypeError:  # an unhashable content type: no memo
            key, known = None, None
        if known is not None and known[0] is masking and known[1] == limit:
            return known[2]
    text = payloads.body_attribute(
        content[: 4 * limit],
        config,
        content_type,
        total_size=len(content),
        site=payloads.Site.HTTP_RESPONSE_BODIES,
    )
    if key is not None and text is not None and MASKED not in text:
        if len(_BODY_TEXTS) >= _BODY_MEMO_SIZE:
            _BODY_TEXTS.clear()
        _BODY_TEXTS[key] = (masking, limit, text)
    return text


_BODY_MEMO_LENGTH = 1024
_BODY_MEMO_SIZE = 256
#: (content type, body) -> (masking, limit, attribute text) of short bodies seen before
_BODY_TEXTS: Dict[Tuple[Any, bytes], Tuple[Any, int, str]] = {}


def _header_store(response: Any) -> Optional[Dict[str, Tuple[str, str]]]:
    """The (lower-case name -> (name, value)) store behind a response's headers when
    they are Django's own `ResponseHeaders` (each value as it gives it), else None."""
    headers = response.__dict__.get("headers")
    kind = _RESPONSE_HEADERS[0] if _RESPONSE_HEADERS else _response_headers_class()
    if kind is None or type(headers) is not kind:
        return None
    store = headers.__dict__.get("_store")
    return store if type(store) is dict else None


def _content_type(response: Any) -> Optional[str]:
    """`response.get("Content-Type")`."""
    store = _header_store(response)
    if store is None:
        return response.get("Content-Type")  # type: ignore[no-any-return]
    pair = store.get("content-type")
    return None if pair is None else pair[1]


def response_header_pairs(response: Any) -> Any:
    """`list(response.items())` (the same pairs, maybe as a tuple): for Django's own
    header map, its stored pairs, without the mapping protocol's calls per header."""
    store = _header_store(response)
    if store is None:
        return list(response.items())
    return tuple(store.values())


def _response_headers_class() -> Any:
    """Django's `ResponseHeaders` (None: not found), looked up once, when the first
    response is captured (Django is loaded by then)."""
    try:
        from django.http.response import ResponseHeaders

        kind: Any = ResponseHeaders
    except Exception:
        kind = None
    _RESPONSE_HEADERS[:] = [kind]
    return kind


_RESPONSE_HEADERS: List[Any] = []


def request_body(request: Any, config: Config) -> Optional[str]:
    """The body the app already read (Django keeps it as `request._body`), else None."""
    body = request.__dict__.get("_body")
    if not body:
        return None
    limit = max(0, config.attribute_length_limit)
    content_type = request.META.get("CONTENT_TYPE")
    return payloads.body_attribute(body[: 4 * limit], config, content_type, total_size=len(body))


def capture_response(target: Any, request: Any, response: Any, config: Config) -> None:
    """The end-of-request captures (response headers, the request body the app read,
    the response body) set on `target`, a span or the attributes set at its end."""
    payloads.set_captured(
        target,
        payloads.RESPONSE_HEADERS,
        payloads.headers_attribute,
        response_header_pairs(response),
        config,
        payloads.Site.HTTP_RESPONSE_HEADERS,
    )
    payloads.set_captured(target, payloads.REQUEST_BODY, request_body, request, config)
    payloads.set_captured(target, payloads.RESPONSE_BODY, response_body, response, config)


class _Hooks:
    def __init__(self, config: Config) -> None:
        self.config = config

    def request(self, span: Span, request: Any) -> None:
        try:
            if span.is_recording():
                payloads.set_captured(
                    span,
                    payloads.REQUEST_HEADERS,
                    payloads.headers_attribute,
                    dict(request.headers),
                    self.config,
                )
        except Exception:
            _LOG.debug("django request hook failed", exc_info=True)

    def response(self, span: Span, request: Any, response: Any) -> None:
        try:
            if not span.is_recording():
                return
            config = self.config
            capture_response(span, request, response, config)
            payloads.mask_span_urls(span, config)
        except Exception:
            _LOG.debug("django response hook failed", exc_info=True)


_hooks: Optional[_Hooks] = None
_provider: Optional[TracerProvider] = None
#: whether WSGI requests take the lean path (the golden test turns it off for contrib's)
_lean = True


def _instrument_before_middleware(
    wrapped: Callable[..., Any], _instance: Any, args: Tuple[Any, ...], kwargs: Any
) -> Any:
    """`BaseHandler.load_middleware`: put the upstream middleware in, then load."""
    try:
        upstream = instrumentor()
        if _hooks is not None and not upstream.is_instrumented_by_opentelemetry:
            upstream.instrument(
                tracer_provider=_provider,
                request_hook=_hooks.request,
                response_hook=_hooks.response,
                skip_dep_check=True,
            )
            if _lean:
                _install_lean(_hooks.config)
    except Exception:
        _LOG.warning("django is not instrumented: its middleware could not be added")
        _LOG.debug("django instrumentation failed", exc_info=True)
    return wrapped(*args, **kwargs)


def _install_lean(config: Config) -> None:
    """The lean middleware in the upstream one's place, on the default HTTP semantic
    conventions (the mode the upstream instrumentor settled on); never raises."""
    try:
        from opentelemetry.instrumentation._semconv import _StabilityMode
        from opentelemetry.instrumentation.django.middleware.otel_middleware import (
            _DjangoMiddleware,
        )

        if _DjangoMiddleware._sem_conv_opt_in_mode is _StabilityMode.DEFAULT:
            from lumigo_opentelemetry.instrumentations import _django_server

            _django_server.install(config)
    except Exception:
        _LOG.debug("django lean server spans not installed", exc_info=True)


def instrument(config: Config, tracer_provider: TracerProvider, lean: bool = True) -> None:
    """Arrange for the upstream middleware to be added when Django loads its middleware
    (replaced by the lean one unless `lean` is False)."""
    global _hooks, _provider, _lean
    from django.core.handlers.base import BaseHandler
    from wrapt import wrap_function_wrapper

    _provider = tracer_provider
    _lean = lean
    if _hooks is None:
        _hooks = _Hooks(config)
    else:
        _hooks.config = config
    if not _wrapped_by_us(BaseHandler.__dict__.get("load_middleware")):
        wrap_function_wrapper(BaseHandler, "load_middleware", _instrument_before_middleware)


def _wrapped_by_us(method: Any) -> bool:
    """Whether `method` or a function it wraps is wrapped by `_instrument_before_middleware`
    (wrapt 2 no longer makes its wrappers `wrapt.ObjectProxy` instances: the wrapper is
    asked, layer by layer, what it wraps with)."""
    for _ in range(32):  # wrappers of wrappers, bounded
        if method is None:
            return False
        if getattr(method, "_self_wrapper", None) is _instrument_before_middleware:
            return True
        method = getattr(method, "__wrapped__", None)
    return False


def uninstrument() -> None:
    """Undo `instrument()` (used by tests): the middleware leaves the settings."""
    from django.core.handlers.base import BaseHandler
    from opentelemetry.instrumentation.utils import unwrap

    unwrap(BaseHandler, "load_middleware")
    if "lumigo_opentelemetry.instrumentations._django_server" in sys.modules:
        from lumigo_opentelemetry.instrumentations import _django_server

        _django_server.uninstall()
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        upstream.uninstrument()
