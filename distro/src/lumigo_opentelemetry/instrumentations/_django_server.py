"""Lean Django server spans: what opentelemetry-instrumentation-django's middleware records
(plus the distro's payloads), for less CPU.

`LeanMiddleware` takes the place of contrib's middleware in `settings.MIDDLEWARE` (the
contrib instrumentor configures it first: its tracer, excluded URLs, hooks). It is
contrib's middleware class with a lean path for WSGI requests on the default (old) HTTP
semantic conventions; ASGI requests go through contrib's own code. Per WSGI request:

- the span name is contrib's (`METHOD route`, from resolving `request.path`), the
  resolution kept in a bounded memo per URL resolver and path;
- the request attributes are contrib's `collect_request_attributes` (memoized, URL
  secrets masked once per memo entry), given to `start_span` with the request headers
  in one call (`_fastspan`);
- the incoming context is extracted only when a header can carry one (`_propagation`);
  the context (parent plus span) is attached once and detached once, through the
  API's context variable when its runtime context is the default one (`_otel_context`);
- `http.route` (when Django reaches the view middleware), the status code, the
  response headers and the request/response bodies are set together at the end, the
  exception Django gave `process_exception` recorded with the status, as contrib's
  `use_span` does.

A disallowed `Host` header still fails the request before any span starts (contrib
computes the absolute URI first), `OTEL_PYTHON_DJANGO_EXCLUDED_URLS` excludes as there,
streaming responses are not read. Contrib stays the reference
(tests/distro/test_django_golden.py). Metrics, which the distro does not export, are
not produced.
"""

from __future__ import annotations

import logging
from time import time_ns
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from opentelemetry.instrumentation.django.middleware import otel_middleware
from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans
from lumigo_opentelemetry.instrumentations._otel_context import CurrentContext
from lumigo_opentelemetry.instrumentations._propagation import Extractor
from lumigo_opentelemetry.instrumentations._wsgi_request import (
    COMMON_METHODS,
    custom_header_collectors,
    memoized,
)

if TYPE_CHECKING:
    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

_ASGI_REQUEST: Any = getattr(otel_middleware, "ASGIRequest", None)
#: where a lean request's state lives on the Django request
_STATE = "_lumigo_server_span"
_NAMES_SIZE = 256
#: contrib's middleware, as named in `settings.MIDDLEWARE`
CONTRIB_PATH = f"{_DjangoMiddleware.__module__}.{_DjangoMiddleware.__qualname__}"
LEAN_PATH = f"{__name__}.LeanMiddleware"


class _State:
    """One request's span, its context token, its late attributes, its exception."""

    __slots__ = ("exception", "late", "span", "token")

    def __init__(self, span: Any, token: Any) -> None:
        self.span = span
        self.token = token
        self.late = payloads.Attributes()  # set in one call at the end
        self.exception: Optional[BaseException] = None


class _Lean:
    """What the lean path needs, made once when the middleware is installed."""

    def __init__(self, config: Config) -> None:
        from django.urls import Resolver404, get_resolver, get_urlconf, resolve
        from opentelemetry.instrumentation.propagators import get_global_response_propagator
        from opentelemetry.instrumentation.utils import http_status_to_status_code
        from opentelemetry.instrumentation.wsgi import collect_request_attributes, wsgi_getter
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.util.http import sanitize_method

        self.config = config
        self.tracer = _DjangoMiddleware._tracer
        self.spans = fast_spans(self.tracer)
        self.excluded = _DjangoMiddleware._excluded_urls
        self.has_exclusions = bool(getattr(self.excluded, "_excluded_urls", True))
        self.traced_attrs = list(_DjangoMiddleware._traced_request_attrs or ())
        self.collect = memoized(
            collect_request_attributes,
            self._masked,
            payloads.Attributes,
            self.spans.values_clean,
            self.spans.max_length,
            self._masked_url,
        )
        self.extract = Extractor(wsgi_getter, asgi=False)
        self.custom_request, self.custom_response = custom_header_collectors()
        self.current = CurrentContext()
        self.server = SpanKind.SERVER
        self.internal = SpanKind.INTERNAL
        self.status = Status
        self.error = StatusCode.ERROR
        self.unset = StatusCode.UNSET
        self.status_of = http_status_to_status_code
        self.response_propagator: Callable[[], Any] = get_global_response_propagator
        self.sanitize_method = sanitize_method
        self.resolve = resolve
        self.resolver_404 = Resolver404
        self.get_resolver = get_resolver
        self.get_urlconf = get_urlconf
        #: (resolver, path) -> (resolver, the name's route part or None)
        self.names: Dict[Tuple[int, str], Tuple[Any, Optional[str]]] = {}

    def _masked(self, attributes: Dict[str, Any]) -> Dict[str, Any]:
        """The request attributes with URL secrets masked, as the response hook masks
        them (query strings dropped as a whole should masking fail): `url_masked`."""
        return payloads.url_masked(attributes, self.config)

    def _masked_url(self, key: str, value: Any) -> Any:
        """`_masked({key: value})[key]`: a request's own target or URL, masked."""
        return payloads.url_value_masked(key, value, self.config)

    # --- span name ------------------------------------------------------------------

    def span_name(self, request: Any) -> str:
        """contrib's `_DjangoMiddleware._get_span_name`."""
        method = request.method.strip()
        if method not in COMMON_METHODS:
            method = self.sanitize_method(method)
            if method == "_OTHER":
                return "HTTP"
        if request.resolver_match:
            part = _route_part(request.resolver_match)
        else:
            part = self._resolved_part(request.path)
        return request.method if part is None else f"{method} {part}"

    def _resolved_part(self, path: str) -> Optional[str]:
        resolver = self.get_resolver(self.get_urlconf())
        key = (id(resolver), path)
        known = self.names.get(key)
        if known is not None and known[0] is resolver:
            return known[1]
        try:
            part = _route_part(self.resolve(path))
        except self.resolver_404:
            part = None
        if len(self.names) >= _NAMES_SIZE:
            self.names.clear()
        self.names[key] = (resolver, part)
        return part

    # --- start and end ----------------------------------------------------------------

    def start(self, request: Any) -> Optional[_State]:
        meta = request.META
        start = time_ns()
        attributes, unchecked = self.collect(meta, True)
        if self.traced_attrs:
            from opentelemetry.instrumentation.utils import extract_attributes_from_object

            extract_attributes_from_object(request, self.traced_attrs, attributes)
            unchecked = None
        name = self.span_name(request)
        current, server = self.current.current()
        if server:
            parent = self.extract.wsgi(meta)  # (META is the WSGI environ)
            kind = self.server
            if self.custom_request is not None:
                attributes.update(self.custom_request(meta))
                unchecked = None
        else:
            parent = current
            kind = self.internal
        try:  # (as `payloads.set_captured(attributes, ...)` does it, inline)
            # `dict(request.headers)` as the hook renders it, from `request.META`
            headers = payloads.wsgi_headers_attribute(meta, self.config, keep_empty_content=True)
            if headers is not None:
                attributes[payloads.REQUEST_HEADERS] = headers
        except Exception:
            logger.debug(
                "capturing %s failed; attribute dropped", payloads.REQUEST_HEADERS, exc_info=True
            )
        if unchecked is not None and payloads.REQUEST_HEADERS in attributes:
            unchecked[payloads.REQUEST_HEADERS] = attributes[payloads.REQUEST_HEADERS]
        span = self.spans.start_span(name, parent, kind, attributes, start, unchecked)
        return _State(span, self.current.attach(span, parent))

    def end(self, request: Any, state: _State, response: Any) -> None:
        span = state.span
        ready = None  # the late attributes, once complete: set as the span ends
        try:
            if response is not None and span.is_recording():
                late = state.late
                code = response.status_code
                late["http.status_code"] = code
                if self.custom_response is not None and span.kind is self.server:
                    late.update(self.custom_response(response.items()))
                self._capture(request, response, late)
                ready = late
                status = self.status_of(code, server_span=True)
                if status is not self.unset:  # the SDK ignores an UNSET status
                    span.set_status(self.status(status))
            if response is not None:
                propagator = self.response_propagator()
                if propagator:
                    propagator.inject(response)
            exc = state.exception
            if exc is not None and isinstance(exc, Exception) and span.is_recording():
                span.record_exception(exc)
                span.set_status(self.status(self.error, f"{type(exc).__name__}: {exc}"))
        finally:
            try:
                end_span(span, None, ready)
            finally:
                self.current.detach(state.token)

    def _capture(self, request: Any, response: Any, late: Dict[str, Any]) -> None:
        from lumigo_opentelemetry.instrumentations.django import capture_response

        capture_response(late, request, response, self.config)


def _route_part(match: Any) -> Optional[str]:
    route = getattr(match, "route", None)
    if route:
        return str(route)
    url_name = getattr(match, "url_name", None)
    return str(url_name) if url_name else None


def _is_asgi(request: Any) -> bool:
    """contrib's test: ASGI requests take its own path."""
    asgi_request = _ASGI_REQUEST
    return asgi_request is not None and isinstance(request, asgi_request)


class LeanMiddleware(_DjangoMiddleware):
    """contrib's middleware, with the lean path for WSGI requests (`install` sets it up)."""

    _lumigo: Optional[_Lean] = None

    def __call__(self, request: Any) -> Any:
        lean = LeanMiddleware._lumigo
        if lean is None or _is_asgi(request):
            return super().__call__(request)  # type: ignore[no-untyped-call]
        if lean.has_exclusions:
            # as contrib: the absolute URI (its host checked against ALLOWED_HOSTS) first
            if lean.excluded.url_disabled(request.build_absolute_uri("?")):
                return self.get_response(request)
        else:
            request.get_host()  # a disallowed host fails here, before any span, as there
        try:
            state = lean.start(request)
        except Exception:
            logger.debug("django server span not started", exc_info=True)
            state = None
        if state is None:
            return self.get_response(request)
        request.__dict__[_STATE] = state
        response = None
        try:
            response = self.get_response(request)
        finally:
            # the request keeps no span state (nor the exception) past its span
            request.__dict__.pop(_STATE, None)
            try:
                lean.end(request, state, response)
            except Exception:
                logger.debug("django server span not ended", exc_info=True)
        return response

    def process_view(self, request: Any, view_func: Any, *args: Any, **kwargs: Any) -> None:
        state = request.__dict__.get(_STATE)
        if state is None:
            if LeanMiddleware._lumigo is None or _is_asgi(request):
                super().process_view(  # type: ignore[no-untyped-call]
                    request, view_func, *args, **kwargs
                )
            return
        route = getattr(request.resolver_match, "route", None)
        if route and state.span.is_recording():
            state.late["http.route"] = route

    def process_exception(self, request: Any, exception: Exception) -> None:
        state = request.__dict__.get(_STATE)
        if state is None:
            if LeanMiddleware._lumigo is None or _is_asgi(request):
                super().process_exception(request, exception)  # type: ignore[no-untyped-call]
            return
        state.exception = exception


def install(config: Config) -> bool:
    """Put `LeanMiddleware` where contrib's instrumentor put its middleware (called right
    after it instrumented, on the default HTTP semantic conventions); False if it
    did not put one (e.g. `OTEL_PYTHON_DJANGO_INSTRUMENT=False`)."""
    from django.conf import settings

    middleware = getattr(settings, "MIDDLEWARE", None)
    if not isinstance(middleware, list) or CONTRIB_PATH not in middleware:
        return LEAN_PATH in (middleware or ())
    LeanMiddleware._lumigo = _Lean(config)
    middleware[middleware.index(CONTRIB_PATH)] = LEAN_PATH
    settings.MIDDLEWARE = middleware
    return True


def uninstall() -> None:
    """Take `LeanMiddleware` out of the settings again (used by tests)."""
    from django.conf import settings

    LeanMiddleware._lumigo = None
    middleware = getattr(settings, "MIDDLEWARE", None)
    if isinstance(middleware, list) and LEAN_PATH in middleware:
        middleware.remove(LEAN_PATH)
        settings.MIDDLEWARE = middleware
