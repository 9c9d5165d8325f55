"""Lean Flask server spans: what opentelemetry-instrumentation-flask records, for less CPU.

Per request, on the default (old) HTTP semantic conventions:

- one WSGI wrapper records the start time and (for the payload capture) wraps
  `wsgi.input` when the request can carry a body (`_wsgi_capture.may_have_body`);
  the span starts once the request is routed (the app's own
  `preprocess_request`, wrapped on the instance): the request attributes are collected
  once (contrib's `collect_request_attributes`, from a bounded memo; a miss built by
  `_wsgi_attributes` for the contrib release it reproduces), URL secrets masked, the
  request headers captured, and all of them given to `start_span` in one call (a
  sampler and every span processor's `on_start` see them; `_fastspan` spares the SDK's
  per-value check of values it would record unchanged);
- the incoming context is extracted with the global propagator (`_propagation`: not
  run when the default W3C propagators would find neither of their headers);
- the context (extracted parent plus the span) is attached once and detached once,
  through the API's context variable when its runtime context is the default one
  (`_otel_context`), and the Flask request context is read from Flask's own context
  variable (no werkzeug proxy);
- whether payloads are captured is decided once, when the span starts (a recording
  server span); the request headers text and a short response body's text come from
  bounded memos (`payloads.wsgi_headers_attribute`, `flask._response_body`);
- the response body is taken after the last `after_request` step; the status code,
  response headers and bodies are set together when the request ends (after the last
  teardown function), with the exception recorded and the status set the way
  `trace.use_span` does it.

Installing it on an app imports nothing of OpenTelemetry: the tracer and contrib's
WSGI helpers are set up on the first routed request, so that importing Flask stays cheap.

Propagation from incoming headers, `OTEL_PYTHON_FLASK_EXCLUDED_URLS`, INTERNAL spans for
apps nested in another traced WSGI app, streamed responses (never read) and requests
that never reach `before_request` behave as with the contrib instrumentor, which stays
the reference (tests/distro/test_flask_golden.py). Metrics, which the distro does
not export, and the SQL commenter context are not produced.
"""

from __future__ import annotations

import logging
import sys
import threading
from time import time_ns
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

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
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

_STATE_KEY = "lumigo.flask_request"
_UNSET = object()
_SCOPE = "opentelemetry.instrumentation.flask"


class _Request:
    """One request's tracing state, kept in its WSGI environ."""

    __slots__ = (
        "capture",
        "context",
        "late",
        "recording",
        "response_headers",
        "span",
        "start",
        "status",
        "token",
    )

    def __init__(self, start: int) -> None:
        self.start = start
        self.span: Any = None
        self.token: Any = None
        self.context: Any = None  # the Flask request context that started the span
        self.recording: Any = None  # RecordingInput of a server span
        self.status: Optional[str] = None
        self.response_headers: Any = None
        self.capture = False  # a recording server span: payloads are captured
        self.late: Dict[str, Any] = {}  # attributes set at the end, in one call


class FlaskServerSpans:
    """Installs the lean server-span path on Flask apps."""

    def __init__(self, config: Config, tracer_provider: TracerProvider) -> None:
        """Cheap: nothing of OpenTelemetry is imported until the first routed request
        (`_prepare`), so importing Flask and building apps stay fast."""
        self.config = config
        self._provider = tracer_provider
        self._prepared = False
        self._prepare_lock = threading.Lock()

    def _prepare(self) -> None:
        """The tracer and contrib's helpers, once, on the first routed request."""
        with self._prepare_lock:
            if self._prepared:
                return
            from opentelemetry import trace
            from opentelemetry.instrumentation.utils import http_status_to_status_code
            from opentelemetry.instrumentation.wsgi import collect_request_attributes, wsgi_getter
            from opentelemetry.trace import SpanKind, Status, StatusCode
            from opentelemetry.util.http import get_excluded_urls

            self.tracer = trace.get_tracer(
                _SCOPE,
                _scope_version(),
                self._provider,
                schema_url="https://opentelemetry.io/schemas/1.11.0",
            )
            self.spans = fast_spans(self.tracer)
            self.excluded = get_excluded_urls("FLASK")
            self.has_exclusions = bool(getattr(self.excluded, "_excluded_urls", True))
            self._current = CurrentContext()
            self._extract = Extractor(wsgi_getter, asgi=False).wsgi
            self._collect = memoized(
                collect_request_attributes,
                self._masked,
                dict.copy,
                self.spans.values_clean,
                self.spans.max_length,
                self._masked_url,
            )
            self._status_of = http_status_to_status_code
            self._server = SpanKind.SERVER
            self._internal = SpanKind.INTERNAL
            self._status = Status
            self._error = StatusCode.ERROR
            self._unset = StatusCode.UNSET
            self._custom_request, self._custom_response = custom_header_collectors()
            self._current_context = _request_context_getter()
            import flask

            from lumigo_opentelemetry.instrumentations.flask import _response_body

            self._request = flask.request
            self._response_body = _response_body
            self._prepared = True

    # --- installation -----------------------------------------------------------------

    def install(self, app: Any) -> None:
        """Called right after `Flask.__init__`. The span starts when the request is
        routed (before every `before_request` function), ends after every teardown
        function, and the response body is taken after every `after_request` function:
        the app's own methods are wrapped on the instance (no hook functions, which
        Flask would check for coroutines on every request)."""
        app.wsgi_app = self._middleware(app.wsgi_app)
        preprocess = app.preprocess_request
        process_response = app.process_response
        teardown = app.do_teardown_request
        start, end, capture = self._start, self._teardown_request, self._response

        def preprocess_request() -> Any:
            try:
                start()
            except Exception:
                logger.debug("flask server span not started", exc_info=True)
            return preprocess()

        def process_response_then_capture(response: Any) -> Any:
            response = process_response(response)
            capture(response)
            return response

        def do_teardown_request(*args: Any, **kwargs: Any) -> None:
            exc = args[0] if args else kwargs.get("exc", _UNSET)
            try:
                teardown(*args, **kwargs)
            finally:
                if exc is not None and not isinstance(exc, BaseException):
                    exc = sys.exc_info()[1]  # Flask's own default
                end(exc)

        app.preprocess_request = preprocess_request
        app.process_response = process_response_then_capture
        app.do_teardown_request = do_teardown_request

    def _middleware(self, wsgi_app: Callable[..., Any]) -> Callable[..., Any]:
        from lumigo_opentelemetry.instrumentations._wsgi_capture import (
            RecordingInput,
            may_have_body,
        )

        limit = self.config.attribute_length_limit

        def traced_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Any:
            state = _Request(time_ns())
            outer = environ.get(_STATE_KEY)  # a Flask app nested in another one
            try:
                if may_have_body(environ):  # else no body to record: no wrapper
                    stream = environ.get("wsgi.input")
                    if stream is not None and not isinstance(stream, RecordingInput):
                        state.recording = environ["wsgi.input"] = RecordingInput(stream, limit)
                environ[_STATE_KEY] = state
            except Exception:
                logger.debug("flask request state not installed", exc_info=True)

            def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
                state.status = status
                state.response_headers = headers
                return start_response(status, headers, *args)

            try:
                return wsgi_app(environ, recording_start_response)
            finally:
                if outer is not None:
                    environ[_STATE_KEY] = outer

        return traced_app

    # --- span start -------------------------------------------------------------------

    def _start(self) -> None:
        if not self._prepared:
            self._prepare()

        request_context = self._current_context()
        request = request_context.request
        environ = request.environ
        state = environ.get(_STATE_KEY)
        if state is None or state.span is not None:
            return
        if self.has_exclusions and self.excluded.url_disabled(request.url):
            return
        rule = request.url_rule
        current, server = self._current.current()
        # contrib's request attributes (a copy); a server span's with their URLs masked
        found, unchecked = self._collect(environ, server)
        attributes = found
        if rule is not None:
            attributes["http.route"] = rule.rule
            if unchecked is not None:
                unchecked["http.route"] = rule.rule
        name = _span_name(environ, rule)
        if not server:
            parent = current
            kind = self._internal
        else:
            parent = self._extract(environ)
            kind = self._server
            try:  # (as `_captured` does it, inline)
                headers: Optional[str] = payloads.wsgi_headers_attribute(environ, self.config)
            except Exception:
                _dropped(payloads.REQUEST_HEADERS)
                headers = None
            if headers is not None:
                attributes[payloads.REQUEST_HEADERS] = headers
                if unchecked is not None:
                    unchecked[payloads.REQUEST_HEADERS] = headers
            if self._custom_request is not None:
                attributes.update(self._custom_request(environ))
                unchecked = None
        span = self.spans.start_span(name, parent, kind, attributes, state.start, unchecked)
        state.span = span
        state.capture = server and span.is_recording()
        state.context = request_context
        state.token = self._current.attach(span, parent)

    def _masked(self, attributes: Dict[str, Any]) -> Dict[str, Any]:
        """A server span's request attributes: URL secrets masked."""
        return payloads.url_masked(attributes, self.config)

    def _masked_url(self, key: str, value: Any) -> Any:
        """`_masked({key: value})[key]`: a request's own target or URL, masked."""
        return payloads.url_value_masked(key, value, self.config)

    # --- span end ---------------------------------------------------------------------

    def _teardown_request(self, exc: Optional[BaseException]) -> None:
        if not self._prepared:
            return  # no span started yet
        try:
            current = self._current_context()
            state = current.request.environ.get(_STATE_KEY)
            if state is None or state.span is None or state.token is None:
                return
            if state.context is not current:
                return  # a copied request context ends, not the one that started the span
            token, state.token = state.token, None
            try:
                self._end(state, exc)
            finally:
                # the environ holds the state and the request context holds the environ:
                # let go of the context, so the request's objects die with it, not in a GC
                state.context = None
                self._current.detach(token)
        except Exception:
            logger.debug("flask server span not ended", exc_info=True)

    def _end(self, state: _Request, exc: Optional[BaseException]) -> None:
        span = state.span
        if not span.is_recording():
            span.end()
            return
        late = state.late
        status = state.status
        code = -1
        code_text = ""
        if status is not None:
            code_text = status.split(" ", 1)[0]
            try:
                code = int(code_text)
            except ValueError:
                code = -1
            if code >= 0:
                late["http.status_code"] = code
        if state.capture:
            self._capture(state, late)
        if status is not None:
            if code < 0:
                span.set_status(self._status(self._error, "Non-integer HTTP status: " + code_text))
            else:
                # (100-499: contrib's `http_status_to_status_code` gives UNSET for a
                # server span, which the SDK ignores)
                if not 100 <= code <= 499:
                    status_code = self._status_of(code, server_span=True)
                    if status_code is not self._unset:
                        span.set_status(self._status(status_code))
        if exc is not None and isinstance(exc, Exception):
            span.record_exception(exc)
            span.set_status(self._status(self._error, f"{type(exc).__name__}: {exc}"))
        end_span(span, None, late)  # the late attributes set as it ends, in one call

    def _capture(self, state: _Request, late: Dict[str, Any]) -> None:
        config = self.config
        headers = state.response_headers
        if headers is not None:
            try:  # (as `_captured` does it, inline)
                text: Optional[str] = payloads.headers_attribute(
                    headers, config, payloads.Site.HTTP_RESPONSE_HEADERS
                )
            except Exception:
                _dropped(payloads.RESPONSE_HEADERS)
                text = None
            if text is not None:
                late[payloads.RESPONSE_HEADERS] = text
            if self._custom_response is not None:
                late.update(self._custom_response(headers))
        recording = state.recording
        recorder = recording.recorder if recording is not None else None
        if recorder is not None and recorder.total:
            text = _captured(
                payloads.REQUEST_BODY,
                recorder.attribute,
                config,
                self._current_context().request.environ.get("CONTENT_TYPE"),
            )
            if text is not None:
                late[payloads.REQUEST_BODY] = text

    def _response(self, response: Any) -> None:
        """The final response's body, kept for the server span's end."""
        if not self._prepared:
            return  # no span started yet
        try:
            state: Any = self._current_context().request.environ.get(_STATE_KEY)
            if state is not None and state.capture:
                try:  # (as `_captured` does it, inline)
                    body = self._response_body(response, self.config)
                except Exception:
                    _dropped(payloads.RESPONSE_BODY)
                    body = None
                if body is not None:
                    state.late[payloads.RESPONSE_BODY] = body
        except Exception:
            logger.debug("flask body capture failed", exc_info=True)


def _scope_version() -> str:
    """contrib's `opentelemetry.instrumentation.flask.version.__version__`, read from its
    distribution's metadata (importing the version module runs the whole instrumentor
    package); the module itself when the metadata cannot say."""
    from lumigo_opentelemetry.instrumentations._version_gate import installed_version

    version = installed_version("opentelemetry-instrumentation-flask")
    if version:
        return version
    from opentelemetry.instrumentation.flask.version import __version__

    return str(__version__)


def _span_name(environ: Dict[str, Any], rule: Any) -> str:
    """contrib's `get_default_span_name`: `METHOD route`, else `METHOD path`."""
    method = environ.get("REQUEST_METHOD", "").strip().upper()
    if method not in COMMON_METHODS:  # the rest as contrib's sanitize_method has them
        from opentelemetry.util.http import sanitize_method

        method = sanitize_method(method)
    if rule is not None:
        return f"{'HTTP' if method == '_OTHER' else method} {rule.rule}"
    if method == "_OTHER":
        return "HTTP"
    path = str(environ.get("PATH_INFO", "")).strip()
    return f"{method} {path}" if method and path else str(method)


def _captured(key: str, compute: Callable[..., Optional[str]], *args: Any) -> Optional[str]:
    """`compute(*args)` for attribute `key`, or None (logged at debug, as
    `payloads.set_captured` does) if it fails: the attribute is dropped."""
    try:
        return compute(*args)
    except Exception:
        _dropped(key)
        return None


def _dropped(key: str) -> None:
    """What `_captured` logs when computing attribute `key` failed (in an except block)."""
    logger.debug("capturing %s failed; attribute dropped", key, exc_info=True)


def _request_context_getter() -> Callable[[], Any]:
    """The current Flask request context object (Flask >= 2.2, and before)."""
    import flask

    variable = getattr(flask.globals, "_cv_request", None)
    if variable is not None and hasattr(variable, "get"):
        return variable.get  # type: ignore[no-any-return]  # a ContextVar: one C call
    current = getattr(flask.globals, "request_ctx", None)
    if current is not None:
        return current._get_current_object  # type: ignore[no-any-return]
    stack = flask._request_ctx_stack  # type: ignore[attr-defined]
    return lambda: stack.top
