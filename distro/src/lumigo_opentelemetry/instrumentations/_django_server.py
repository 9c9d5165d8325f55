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
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from opentelemetry.instrumentation.django.middleware import otel_middleware
from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

from lumigo_opentelemetry.instrumentations import django as lumigo_django
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
_HOSTS_SIZE = 64
#: contrib's middleware, as named in `settings.MIDDLEWARE`
CONTRIB_PATH = f"{_DjangoMiddleware.__module__}.{_DjangoMiddleware.__qualname__}"
LEAN_PATH = f"{__name__}.LeanMiddleware"


class _State:
    """One request's span, its context token, its late attributes, its exception."""

    __slots__ = ("exception", "late", "span", "token")

    def __init__(self, span: Any, token: Any) -> None:
        self.span = span
        self.token = token
        self.late: Dict[str, Any] = {}  # set in one call at the end
        self.exception: Optional[BaseException] = None


class _Lean:
    """What the lean path needs, made once when the middleware is installed."""

    def __init__(self, config: Config) -> None:
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIRequest
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
            dict.copy,
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
        self.urlconf_storage = urlconf_storage()
        #: (resolver, path) -> (resolver, the name's route part or None)
        self.names: Dict[Tuple[int, str], Tuple[Any, Optional[str]]] = {}
        self.wsgi_request = WSGIRequest
        self.check_host = HostCheck(settings).check

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
        storage = self.urlconf_storage
        if storage is not None:  # `get_urlconf()`, read as asgiref's `Local` reads it
            urlconf = storage._storage().data.get("value")
        else:
            urlconf = self.get_urlconf()
        resolver = self.get_resolver(urlconf)
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
                # (an int in 100-499: contrib's `http_status_to_status_code` gives UNSET
                # for a server span, which the SDK ignores)
                if type(code) is not int or not 100 <= code <= 499:
                    status = self.status_of(code, server_span=True)
                    if status is not self.unset:
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
        """`django.capture_response(late, request, response, config)`, with Django's
        response headers read from their store (`response_header_pairs`) and the set
        attribute calls inline."""
        config = self.config
        text: Optional[str]
        try:
            text = payloads.headers_attribute(
                lumigo_django.response_header_pairs(response),
                config,
                payloads.Site.HTTP_RESPONSE_HEADERS,
            )
            if text is not None:
                late[payloads.RESPONSE_HEADERS] = text
        except Exception:
            _dropped(payloads.RESPONSE_HEADERS)
        if request.__dict__.get("_body"):  # (else `request_body` gives None)
            try:
                text = lumigo_django.request_body(request, config)
                if text is not None:
                    late[payloads.REQUEST_BODY] = text
            except Exception:
                _dropped(payloads.REQUEST_BODY)
        try:
            text = lumigo_django.response_body(response, config)
            if text is not None:
                late[payloads.RESPONSE_BODY] = text
        except Exception:
            _dropped(payloads.RESPONSE_BODY)


class HostCheck:
    """`request.get_host()`, for what it does on the lean path (see `check`)."""

    def __init__(self, settings: Any) -> None:
        from django.http.request import HttpRequest

        self.get_host = HttpRequest.get_host
        self.raw_host = HttpRequest._get_raw_host
        #: the settings values Django's lazy settings object has cached (it caches each
        #: value it is asked for and drops them when a setting or the whole settings
        #: object is replaced, as `override_settings` does); None: another object
        self.settings_cache: Optional[Dict[str, Any]] = _settings_cache(settings)
        #: `Host` header -> (the `ALLOWED_HOSTS` list it was found allowed by, its items)
        self.hosts: Dict[str, Tuple[Any, List[Any]]] = {}

    def check(self, request: Any) -> None:
        """`request.get_host()`, for what it does here: raise `DisallowedHost` for a
        host the settings do not allow, before any span starts (as contrib's
        `build_absolute_uri` does). A `Host` header Django found allowed is remembered
        (bounded) with the `ALLOWED_HOSTS` list that allowed it, and not asked about
        again while that list (the same object, the same items) is the setting: with
        `USE_X_FORWARDED_HOST` off and a non-empty list, Django's answer depends on
        these two alone. Anything else (another `get_host`, the forwarded host in use,
        settings not cached by Django's lazy settings object) asks Django."""
        host = request.META.get("HTTP_HOST")
        cache = self.settings_cache
        kind = type(request)
        if (
            cache is None
            or type(host) is not str
            or cache.get("USE_X_FORWARDED_HOST", True) is not False
            or kind.get_host is not self.get_host
            or kind._get_raw_host is not self.raw_host
        ):
            request.get_host()
            return
        allowed: Any = cache.get("ALLOWED_HOSTS")
        known = self.hosts.get(host)
        if known is not None and known[0] is allowed and known[1] == allowed:
            return
        request.get_host()  # raises DisallowedHost when the host is not allowed
        # (kept while that list is the setting; an empty one: DEBUG decides as well)
        if allowed is cache.get("ALLOWED_HOSTS") and type(allowed) is list and allowed:
            if len(self.hosts) >= _HOSTS_SIZE:
                self.hosts.clear()
            self.hosts[host] = (allowed, allowed.copy())


def _dropped(key: str) -> None:
    """What `payloads.set_captured` logs when computing attribute `key` failed."""
    logger.debug("capturing %s failed; attribute dropped", key, exc_info=True)


def _settings_cache(settings: Any) -> Optional[Dict[str, Any]]:
    """The attribute dictionary in which Django's `LazySettings` keeps the settings it
    was asked for (None: `settings` is not that object, or keeps no such cache)."""
    from django.conf import LazySettings

    if type(settings) is not LazySettings or "__getattr__" not in LazySettings.__dict__:
        return None
    cache = object.__getattribute__(settings, "__dict__")
    return cache if type(cache) is dict else None


#: asgiref releases whose `Local` `urlconf_storage` was checked against
_ASGIREF_CHECKED = frozenset({"3.13.0"})


def urlconf_storage() -> Any:
    """The storage behind Django's URL conf local (`django.urls.base._urlconfs`) when
    it is asgiref's non-thread-critical `Local` of a release it was checked against:
    there `get_urlconf()` is `storage._storage().data.get("value")` (the storage of
    the current context when the current thread owns it, else an empty one), read
    without the two `__getattr__` layers, the lock (the data is replaced, never
    changed, when a value is set) and the missing-attribute error. None otherwise:
    `get_urlconf()` is called."""
    try:
        from asgiref import local as asgiref_local
        from django.urls import base

        from lumigo_opentelemetry.instrumentations._version_gate import installed_version

        if installed_version("asgiref") not in _ASGIREF_CHECKED:
            return None
        urlconfs = base.__dict__.get("_urlconfs")
        if type(urlconfs) is not getattr(asgiref_local, "_DefaultLocal", None):
            return None
        storage = object.__getattribute__(urlconfs, "_storage")
        if type(storage) is not getattr(asgiref_local, "_CVar", None):
            return None
        return storage
    except Exception:
        return None


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
        if lean is None or (type(request) is not lean.wsgi_request and _is_asgi(request)):
            return super().__call__(request)  # type: ignore[no-untyped-call]
        if lean.has_exclusions:
            # as contrib: the absolute URI (its host checked against ALLOWED_HOSTS) first
            if lean.excluded.url_disabled(request.build_absolute_uri("?")):
                return self.get_response(request)
        else:
            lean.check_host(request)  # a disallowed host fails here, before any span
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
