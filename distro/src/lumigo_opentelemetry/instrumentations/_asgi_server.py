"""Lean FastAPI server spans: what opentelemetry-instrumentation-fastapi records, for less CPU.

`LeanServerSpans` takes the place of contrib's `OpenTelemetryMiddleware` in an app's
middleware stack (the rest of contrib's stack, its exception-recording middleware
included, stays). Per HTTP request, on the default (old) HTTP semantic conventions:

- the span name and request attributes come from contrib's own functions (the app's
  route lookup, `collect_request_attributes`), once per distinct request shape (a
  bounded memo, copied per request, its URL attributes masked once when masking
  changes none of them, with `_fastspan`'s verdict that they are clean; one entry for
  every client, whose `net.peer.ip`/`net.peer.port` are set per request in their
  place; routes with path parameters are not kept). A shape the memo misses (on real
  traffic: a query, user agent or client per request) takes its route details from a
  second memo keyed without those, and its attributes from `_asgi_attributes` (contrib's
  function rebuilt from plain reads for the checked release); one that differs from a
  seen shape only by its query takes that shape without its query from a third memo
  and builds `http.url` alone (the one attribute the query decides), masking and
  checking only it when the rest is known plain; the request
  headers are captured (`_asgi_payloads`, memoised per header set, else read in one
  pass) before the span starts, and all of them go to `start_span` in one call (a
  sampler and every span processor's `on_start` see them); the incoming context is
  extracted as in `_flask_server` (the default W3C propagators on the propagation
  headers the one pass kept);
- the context (extracted parent plus the span) is attached once and detached once
  (`_otel_context.CurrentContext`); the app gets the exchange's own `receive` and
  `send` methods, no closures per request;
- the status is set when the response starts (one `Status` per HTTP status, kept);
  `http.status_code`, the response
  headers and the bodies are set in one call when the last body chunk has been sent,
  and the span ends there (as with contrib); streamed bodies pass through untouched,
  only a bounded copy of their beginning is kept.

Suppressed instrumentation, `OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`, propagation from the
request headers, INTERNAL spans (no payloads) for mounted or nested apps, exceptions
(recorded, status ERROR) and the global response propagator behave as with contrib,
which stays the reference (tests/distro/test_fastapi_golden.py). Websocket and lifespan
scopes, and apps configured with hooks, custom header capture or the new HTTP semantic
conventions, go through contrib's middleware itself (`applies`). Metrics, which the
distro does not export, are not recorded. Where contrib wraps its middleware in a bare
Starlette `ServerErrorMiddleware` (only there to answer 500 should the middleware raise),
the lean path takes that wrapper's place too (`replace_error_wrapper`), answering 500 as
it would when the app's own 500 handling fails.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, MutableMapping, Optional, Tuple

from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.instrumentations._asgi_payloads import Capture, Memos, keyed_headers
from lumigo_opentelemetry.instrumentations._fastspan import end_span, fast_spans, set_attributes
from lumigo_opentelemetry.instrumentations._otel_context import CurrentContext
from lumigo_opentelemetry.instrumentations._propagation import Extractor

if TYPE_CHECKING:
    from lumigo_opentelemetry.config import Config

logger = logging.getLogger("lumigo-opentelemetry")

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MEMO_SIZE = 256
_UNSEEN: Any = object()


def applies(contrib: Any) -> bool:
    """Whether the lean path gives the same spans as this contrib middleware would."""
    from opentelemetry.instrumentation._semconv import _StabilityMode

    return bool(
        getattr(contrib, "_sem_conv_opt_in_mode", None) == _StabilityMode.DEFAULT
        and getattr(contrib, "exclude_receive_span", False)
        and getattr(contrib, "exclude_send_span", False)
        and not getattr(contrib, "server_request_hook", None)
        and not getattr(contrib, "client_request_hook", None)
        and not getattr(contrib, "client_response_hook", None)
        and not getattr(contrib, "http_capture_headers_server_request", None)
        and not getattr(contrib, "http_capture_headers_server_response", None)
        and callable(getattr(contrib, "default_span_details", None))
        and hasattr(contrib, "app")
        and hasattr(contrib, "tracer")
    )


class LeanServerSpans:
    """An ASGI middleware: one server span per HTTP request, payloads included."""

    def __init__(self, contrib: Any, config: Config) -> None:
        from opentelemetry import context, propagate, trace
        from opentelemetry.instrumentation.asgi import (
            asgi_getter,
            collect_request_attributes,
            get_host_port_url_tuple,
        )
        from opentelemetry.instrumentation.propagators import get_global_response_propagator
        from opentelemetry.instrumentation.utils import (
            http_status_to_status_code,
            is_http_instrumentation_enabled,
        )
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.contrib = contrib  # websocket and lifespan scopes
        self.app = contrib.app
        self.config = config
        self.tracer = contrib.tracer
        self.spans = fast_spans(self.tracer)
        excluded = getattr(contrib, "excluded_urls", None)
        self.excluded = excluded if getattr(excluded, "_excluded_urls", True) else None
        self._details: Any = contrib.default_span_details
        from lumigo_opentelemetry.instrumentations._asgi_attributes import (
            lean_collect,
            query_split,
        )

        self._collect: Any = lean_collect(collect_request_attributes)
        self._split: Any = query_split(self._collect)
        self._bases: Dict[Tuple[Any, ...], _Base] = {}
        self._url_of: Any = get_host_port_url_tuple
        self._enabled = is_http_instrumentation_enabled
        self._extract: Any = Extractor(asgi_getter, asgi=True)
        self._context = context
        self._trace = trace
        self._server = SpanKind.SERVER
        self._internal = SpanKind.INTERNAL
        self._status = Status
        self._error = StatusCode.ERROR
        self._unset = StatusCode.UNSET
        self._status_of: Any = http_status_to_status_code
        self._response_propagator: Any = get_global_response_propagator
        self._propagators: Any = _module_global(
            get_global_response_propagator, "_RESPONSE_PROPAGATOR"
        )
        self._textmaps: Any = _module_global(propagate.get_global_textmap, "_HTTP_TEXT_FORMAT")
        self._no_parent: Any = context.Context
        self._current = CurrentContext()
        self._plain_routes = _plain_routes()
        self._plain_app: Any = None  # an app class whose `routes` is Starlette's property
        self._memo: Dict[Tuple[Any, ...], _Shape] = {}
        self._routes: Dict[Tuple[Any, ...], Tuple[str, Dict[str, Any]]] = {}
        self.memos = Memos(config)
        self._statuses: Dict[int, Any] = {}
        self._error_response: Optional[Callable[..., Any]] = None
        self._untraced: Callable[[Scope, Receive, Send], Awaitable[None]] = self.app

    def replace_error_wrapper(self, wrapper: Any) -> None:
        """Take the place of `wrapper`, the bare Starlette `ServerErrorMiddleware` contrib
        puts around its middleware: as it would, answer 500 (its `error_response`) when
        the app raises before a response started; requests without a span go through a
        copy of it around the app."""
        self._error_response = wrapper.error_response
        self._untraced = type(wrapper)(self.app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.contrib(scope, receive, send)
            return
        # an empty context (the usual one at a request's start) holds no suppression
        # flag and no current span: nothing more to read from it
        current, outermost = self._current.current()
        if current and not self._enabled():
            await self._untraced(scope, receive, send)
            return
        try:
            started = self._start(scope, current, outermost, receive, send)
        except Exception:
            logger.debug("fastapi server span not started", exc_info=True)
            started = None
        if started is None:
            await self._untraced(scope, receive, send)
            return
        exchange = started[0]
        exchange.token = started[1]
        try:
            await self.app(
                scope, receive if exchange.capture is None else exchange.receive, exchange.send
            )
        except Exception as exc:
            exchange.failed(exc)
            failure: Optional[Exception] = exc
        else:
            failure = None
        finally:
            self._current.detach(exchange.token)
            if not exchange.ended:
                exchange.end()
        if failure is not None:
            try:
                if self._error_response is not None and not exchange.responded:
                    await self._answer_error(scope, receive, send, failure)
                raise failure
            finally:
                failure = None  # no cycle through this frame's traceback

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> None:
        from starlette.requests import Request

        error_response: Any = self._error_response
        await error_response(Request(scope), exc)(scope, receive, send)

    def _status_for(self, code: int) -> Any:
        """The span status for HTTP status `code`; None for UNSET (the SDK ignores it)."""
        status_code = self._status_of(code, server_span=True)
        return None if status_code is self._unset else self._status(status_code)

    def _start(
        self, scope: Scope, current: Any, outermost: bool, receive: Receive, send: Send
    ) -> Optional[Tuple[_Exchange, Any]]:
        """The span (with its exchange) and the token of its context, for a request
        in the `current` context (`outermost`: it holds no valid span, so a SERVER span
        with payloads, else an INTERNAL one); None: not traced (an excluded URL)."""
        excluded = self.excluded
        if excluded is not None and excluded.url_disabled(self._url_of(scope)[2]):
            return None
        headers = scope.get("headers") or []
        capture = None
        late = payloads.Attributes()  # set when the span ends
        if outermost:
            seen = self.memos.request(headers)
            shape, peer = self._shape(scope, seen.keyed)
            attributes, unchecked = shape.server_attributes(self.config, self.spans, peer)
            if seen.text is not None:
                attributes[payloads.REQUEST_HEADERS] = seen.text
                if unchecked is not None:
                    unchecked = {payloads.REQUEST_HEADERS: seen.text}
            textmaps = self._textmaps
            if (
                not seen.propagated
                and textmaps is not None
                and textmaps._HTTP_TEXT_FORMAT is self._extract._default
            ):  # no header the (default) global propagator reads: what it would give
                parent = self._no_parent()
            elif seen.carrier is not None and textmaps is not None:
                parent = self._extract_from(seen.carrier, textmaps._HTTP_TEXT_FORMAT, scope)
            else:
                parent = self._extract(scope)
            kind = self._server
            capture = Capture(self.memos, seen.content_type, late)
        else:
            shape, peer = self._shape(scope, keyed_headers(headers))
            attributes = payloads.Attributes(shape.raw)
            if peer is not None:
                attributes[_PEER_IP], attributes[_PEER_PORT] = peer
            unchecked = {} if shape.raw_clean(self.spans) else None
            parent = current
            kind = self._internal
        span = self.spans.start_span(shape.name, parent, kind, attributes, None, unchecked)
        token = self._current.attach(span, parent)
        if capture is not None and not span.is_recording():
            capture = None
        return _Exchange(self, span, capture, late, parent, receive, send), token

    def _extract_from(self, carrier: Dict[str, Any], propagator: Any, scope: Scope) -> Any:
        """The parent context: the default global `propagator` (W3C trace context and
        baggage, which read the `traceparent`, `tracestate` and `baggage` headers only)
        run on `carrier`, those headers as contrib's ASGI getter reads them, without it
        decoding every header name per read; any other propagator reads the scope."""
        if self._extract._is_default(propagator):
            return propagator.extract(carrier)
        return self._extract(scope)

    def _shape(
        self, scope: Scope, keyed: Tuple[Any, ...]
    ) -> Tuple[_Shape, Optional[Tuple[str, int]]]:
        """contrib's span name and request attributes for this request shape, from the
        memo when the same shape was seen before; and the client's address and port
        when they are to replace the shape's own (`_peer`: the memo holds one shape for
        every client, whose port changes with each connection)."""
        app: Any = scope.get("app")
        if type(app) is self._plain_app:
            routes = app.router.routes
        else:
            routes = getattr(app, "routes", None)
            if self._plain_routes is not None and (
                getattr(type(app), "routes", None) is self._plain_routes
            ):
                self._plain_app = type(app)
        client = scope.get("client")
        peer = _peer(client, self.spans.max_length)
        try:
            key: Optional[Tuple[Any, ...]] = (
                scope.get("method"),
                scope.get("scheme"),
                scope.get("http_version"),
                scope.get("path"),
                scope.get("root_path"),
                scope.get("query_string"),
                scope.get("server"),
                _PEER if peer is not None else client,
                keyed,
                id(app),
                len(routes) if isinstance(routes, list) else None,
            )
            known = self._memo.get(key)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value in the scope: no memo
            key, known = None, None
        if known is None:
            name, collected, extra, base = self._collected(scope, key, keyed, peer)
            known = _Shape(name, collected, base)
            if (
                peer is not None
                and key is not None
                and (collected.get(_PEER_IP), collected.get(_PEER_PORT)) != peer
            ):
                key = None  # not the client attributes `_peer` replaces: no memo
            route = extra.get("http.route") if isinstance(extra, dict) else None
            if isinstance(route, str) and "{" in route:
                key = None  # a path with ids: seldom seen again, kept out of the memo
            if key is not None:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = known
        return known, peer

    def _collected(
        self,
        scope: Scope,
        key: Optional[Tuple[Any, ...]],
        keyed: Tuple[Any, ...],
        peer: Optional[Tuple[str, int]],
    ) -> Tuple[str, Dict[str, Any], Any, Optional[_Base]]:
        """The span name, the request attributes (route details included), the route
        details and the shape without the query they came from (or None) of a request
        whose shape the memo does not hold. With a query, from the
        memo of shapes without their query (`_bases`, keyed as the shape memo, the query
        aside) where it can: the query decides `http.url` alone (`query_split`)."""
        query = scope.get("query_string")
        split = self._split
        if query and split is not None and key is not None:
            base_key = (*key[:5], _NO_QUERY, *key[6:])
            base = self._bases.get(base_key)
            if base is None:
                name, extra = self._route(scope, key, keyed)
                parts = split.split(scope)
                if parts is None or type(extra) is not dict:
                    return name, self._collect_with(scope, extra), extra, None
                raw, url = parts
                raw.update(extra)
                base = _Base(name, raw, url, extra)
                route = extra.get("http.route")
                if not (isinstance(route, str) and "{" in route) and (
                    peer is None or (raw.get(_PEER_IP), raw.get(_PEER_PORT)) == peer
                ):
                    if len(self._bases) >= _MEMO_SIZE:
                        self._bases.clear()
                    self._bases[base_key] = base
            full = split.query_url(base.url, query)
            if full is not None:
                collected = dict(base.raw)
                collected[_URL] = full
                if peer is not None:  # the shape's own client: as contrib records it
                    collected[_PEER_IP], collected[_PEER_PORT] = peer
                return base.name, collected, base.extra, base
            return base.name, self._collect_with(scope, base.extra), base.extra, None
        name, extra = self._route(scope, key, keyed)
        return name, self._collect_with(scope, extra), extra, None

    def _collect_with(self, scope: Scope, extra: Any) -> Dict[str, Any]:
        collected: Dict[str, Any] = self._collect(scope)
        collected.update(extra)
        return collected

    def _route(
        self, scope: Scope, key: Optional[Tuple[Any, ...]], keyed: Tuple[Any, ...]
    ) -> Tuple[str, Dict[str, Any]]:
        """The span name and route attributes (`default_span_details`) of a request
        whose shape the memo does not hold: kept by what Starlette's routes match on
        (method, path, root path, host header, the app and its route count), not the
        query, client or user agent, which vary per request; routes with path
        parameters are not kept."""
        route_key = None
        if key is not None:
            hosts = tuple([pair for pair in keyed if pair[0] == b"host"])
            route_key = key[:5] + key[6:7] + (hosts,) + key[9:]
            known = self._routes.get(route_key)
            if known is not None:
                return known
        name, extra = self._details(scope)
        route = extra.get("http.route") if type(extra) is dict else None
        if route_key is not None and type(name) is str and type(route) is str and "{" not in route:
            if len(self._routes) >= _MEMO_SIZE:
                self._routes.clear()
            self._routes[route_key] = (name, extra)
        return name, extra


_PEER: Any = object()  # the memo key's client part when `_peer` gives the client
_NO_QUERY: Any = object()  # the query's part of a `_bases` key
_PEER_IP = "net.peer.ip"
_URL = "http.url"
_PEER_PORT = "net.peer.port"


def _peer(client: Any, max_length: Optional[int]) -> Optional[Tuple[str, int]]:
    """The client's (address, port) when contrib records them as they are under
    `net.peer.ip` and `net.peer.port` (a non-empty string within the length limit, a
    non-zero int), else None (the memo key holds the client itself then)."""
    if type(client) is not tuple and type(client) is not list:
        return None
    if len(client) != 2:
        return None
    ip, port = client
    if type(ip) is not str or not ip or type(port) is not int or not port:
        return None
    if max_length is not None and len(ip) > max_length:
        return None
    return ip, port


def _module_global(get_global: Any, name: str) -> Any:
    """The module whose global `name` the function `get_global` just returns (read at
    each request, without the call), or None."""
    module = sys.modules.get(getattr(get_global, "__module__", ""))
    code = getattr(get_global, "__code__", None)
    if (
        module is not None
        and hasattr(module, name)
        and code is not None
        and code.co_names == (name,)
        and code.co_argcount == 0
    ):
        return module
    return None


def _plain_routes() -> Any:
    """Starlette's `routes` property (`self.router.routes`), or None."""
    try:
        from starlette.applications import Starlette

        routes = Starlette.__dict__.get("routes")
        return routes if isinstance(routes, property) else None
    except Exception:
        return None


class _Base:
    """A request shape without its query: span name, attributes (whose `http.url` each
    query replaces), the URL before the query (unredacted) and the route details."""

    __slots__ = ("_plain", "extra", "name", "raw", "url")

    def __init__(self, name: str, raw: Dict[str, Any], url: str, extra: Dict[str, Any]) -> None:
        self.name = name
        self.raw = raw
        self.url = url
        self.extra = extra
        self._plain: Optional[bool] = None

    def plain(self, config: Config, spans: Any) -> bool:
        """Whether masking changes none of its attributes but `http.url` and all of
        those are clean (`values_clean`): then a query's shape needs only its URL
        masked and checked (kept once found; a config never changes)."""
        plain = self._plain
        if plain is None:
            rest = {key: value for key, value in self.raw.items() if key != _URL}
            try:
                plain = not payloads.masked_url_attributes(rest, config) and bool(
                    spans.values_clean(rest)
                )
            except Exception:
                plain = False
            self._plain = plain
        return plain


class _Shape:
    """A request shape's span name and contrib attributes; the server span's attributes
    (URLs masked) and verdicts of `values_clean` kept once found."""

    __slots__ = ("_clean", "_server", "_server_clean", "base", "name", "raw")

    def __init__(self, name: str, raw: Dict[str, Any], base: Optional[_Base] = None) -> None:
        self.name = name
        self.raw = raw
        self.base = base  # the shape without the query this one was built from
        self._clean: Optional[bool] = None
        self._server: Optional[Dict[str, Any]] = None
        self._server_clean = False

    def raw_clean(self, spans: Any) -> bool:
        if self._clean is None:
            self._clean = bool(spans.values_clean(self.raw))
        return self._clean

    def server_attributes(
        self, config: Config, spans: Any, peer: Optional[Tuple[str, int]] = None
    ) -> Tuple[payloads.Attributes, Optional[Dict[str, Any]]]:
        """A copy of the server span's attributes, URLs masked, the client's `peer`
        (address, port) in place of the shape's, and `unchecked` for `start_span`
        ({}: all clean, None: unknown). Kept only when masking changed nothing (the
        memo holds no masked value; a config never changes)."""
        server = self._server
        if server is not None:
            attributes = payloads.Attributes(server)
            if peer is not None:
                attributes[_PEER_IP], attributes[_PEER_PORT] = peer
            return attributes, {} if self._server_clean else None
        raw = self.raw
        base = self.base
        # a query's shape whose other attributes are known plain: its URL alone
        url: Optional[Dict[str, Any]] = None
        if base is not None and base.plain(config, spans) and _URL in raw:
            url = {_URL: raw[_URL]}
        try:
            changed = payloads.masked_url_attributes(raw if url is None else url, config)
        except Exception:  # `url_masked` says what the failure gives
            changed = None
        if changed is not None and not changed:  # masking keeps them all
            self._server = raw
            self._server_clean = (
                self.raw_clean(spans) if url is None else bool(spans.values_clean(url))
            )
            return self.server_attributes(config, spans, peer)
        attributes = payloads.Attributes(payloads.url_masked(raw, config))
        if peer is not None:
            attributes[_PEER_IP], attributes[_PEER_PORT] = peer
        return attributes, None


class _Exchange:
    """One request's span: the status when the response starts, the late attributes
    and the end when its last body chunk is sent (or when the app returns or fails)."""

    __slots__ = (
        "_inside",
        "capture",
        "downstream_receive",
        "downstream_send",
        "ended",
        "late",
        "owner",
        "parent",
        "responded",
        "span",
        "token",
    )

    def __init__(
        self,
        owner: LeanServerSpans,
        span: Any,
        capture: Optional[Capture],
        late: payloads.Attributes,
        parent: Any,
        receive: Receive,
        send: Send,
    ) -> None:
        self.owner = owner
        self.downstream_receive = receive  # the server's
        self.downstream_send = send
        self.span = span
        self.capture = capture
        self.late = late
        self.parent = parent  # the context the span was started in
        self.responded = False  # whether the response started
        self.ended = False  # whether `end` ran
        self.token: Any = None  # of the span's context, for the request's detach
        self._inside: Any = None  # the app's context while the last chunk is sent

    async def receive(self) -> Message:
        """The app's `receive`: the server's, the request body captured as it passes."""
        message = await self.downstream_receive()
        capture = self.capture
        if capture is not None:
            try:
                capture.on_receive(message)
            except Exception:
                logger.debug("fastapi request body capture failed", exc_info=True)
        return message

    async def send(self, message: Message) -> None:
        """The app's `send`: the server's, after the span's bookkeeping; the span ends
        once the last body chunk has been sent."""
        try:
            kind = message.get("type")
            if kind == "http.response.body":
                last = not message.get("more_body", False)
                capture = self.capture
                if capture is not None:
                    capture.response_body(message, last)
            else:
                last = False
                if kind == "http.response.start":
                    self._response_start(message)
        except Exception:
            last = False
            logger.debug("fastapi server span bookkeeping failed", exc_info=True)
        if not last:
            await self.downstream_send(message)
            return
        # The server's own work once the response is complete runs under the caller's
        # context, not the span's: uvicorn's keep-alive timer copies the current context,
        # and a cancelled timer stays in asyncio's queue for seconds, holding what that
        # context refers to (it outlives young collections, so full ones run often).
        try:
            outside = self._send_outside()
        except Exception:
            logger.debug("fastapi context not reset for the last chunk", exc_info=True)
            outside = False
        if outside:
            try:
                await self.downstream_send(message)
            finally:
                # the app's context again (its background tasks run in it): a new token
                self.token = self.owner._current._variable.set(self._inside)
                self._inside = None
        else:
            context = self.owner._context
            outside_token = context.attach(self.parent or context.Context())
            try:
                await self.downstream_send(message)
            finally:
                context.detach(outside_token)
        self.end()

    def _send_outside(self) -> bool:
        """Resets the span's token in place, so the last chunk goes out in the request's
        own starting context (the timer's copy then refers to nothing new); False when
        it cannot: the API's runtime context is not the context variable, or the send
        runs in another task than the one that attached the span (a streamed body sent
        from a child task)."""
        current = self.owner._current
        runtime = current._runtime
        if runtime is None or getattr(self.owner._context, "_RUNTIME_CONTEXT", None) is not runtime:
            return False
        variable = current._variable
        inside = variable.get()
        try:
            variable.reset(self.token)
        except Exception:  # another task's context, or reset already
            return False
        self._inside = inside
        return True

    def _response_start(self, message: Message) -> None:
        """Bookkeeping before the response's start `message` is sent."""
        span = self.span
        self.responded = True
        status = message.get("status")
        if status and span.is_recording():
            self._status(status)
        capture = self.capture
        if capture is not None:
            capture.response_start(message)
        owner = self.owner
        module = owner._propagators
        propagator = (
            module._RESPONSE_PROPAGATOR if module is not None else owner._response_propagator()
        )
        if propagator:
            from opentelemetry.instrumentation.asgi import asgi_setter

            trace = owner._trace
            propagator.inject(
                message,
                context=trace.set_span_in_context(span, trace.context_api.Context()),
                setter=asgi_setter,
            )

    def _status(self, status: Any) -> None:
        owner = self.owner
        if type(status) is int and status >= 0:  # the usual case: its status kept
            known = owner._statuses.get(status, _UNSEEN)
            if known is _UNSEEN:
                known = owner._status_for(status)
                if len(owner._statuses) < _MEMO_SIZE:
                    owner._statuses[status] = known
            self.late["http.status_code"] = status
            if known is not None:
                self.span.set_status(known)
            return
        text = str(status)
        try:
            code = int(status)
        except ValueError:
            code = -1
        if code < 0:
            self.span.set_status(owner._status(owner._error, "Non-integer HTTP status: " + text))
            return
        self.late["http.status_code"] = code
        known = owner._status_for(code)
        if known is not None:
            self.span.set_status(known)

    def failed(self, exc: Exception) -> None:
        """What `trace.use_span` does for an exception leaving the request."""
        span = self.span
        try:
            if span.is_recording():
                span.record_exception(exc)
                owner = self.owner
                span.set_status(owner._status(owner._error, f"{type(exc).__name__}: {exc}"))
        except Exception:
            logger.debug("fastapi exception not recorded", exc_info=True)

    def end(self) -> None:
        self.ended = True
        span = self.span
        if not span.is_recording():
            return
        late = self.late
        try:
            # the late attributes set as it ends, in one call (as Flask and Django do)
            end_span(span, None, late or None)
        except Exception:
            logger.debug("fastapi server span not ended at once", exc_info=True)
            self._end_apart(span, late)
        late.clear()

    def _end_apart(self, span: Any, late: Dict[str, Any]) -> None:
        """What `end` did before ending in one call: the late attributes set, then the
        span ended, each step on its own (whichever `end_span` did not do yet)."""
        if getattr(span, "end_time", None) is not None:
            return  # ended (with or without the attributes): as the separate calls end it
        try:
            if late:
                set_attributes(span, late)
        except Exception:
            logger.debug("fastapi late attributes not set", exc_info=True)
        try:
            end_span(span)
        except Exception:
            logger.debug("fastapi server span not ended", exc_info=True)
