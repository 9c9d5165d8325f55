"""gRPC messages on spans: interceptors that sit inside the upstream ones.

The upstream interceptor starts the span and makes it current; these interceptors run
within it, record the request and response messages as `rpc.request.payload` and
`rpc.response.payload` and pass every message through unchanged. A protobuf message is
rendered as JSON (field names as in the .proto) with secret fields masked; raw bytes as
`body_attribute` renders them; streams as their messages joined by `,`, recorded until
the attribute limit is reached. Recording errors are dropped (logged at debug).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional

import grpc
from opentelemetry import trace

from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.masking import Site

if TYPE_CHECKING:
    from lumigo_opentelemetry.config import Config

REQUEST_PAYLOAD = "rpc.request.payload"
RESPONSE_PAYLOAD = "rpc.response.payload"

_LOG = logging.getLogger("lumigo-opentelemetry.grpc")


def message_text(message: Any, config: Config) -> str:
    """One message as masked, bounded text."""
    limit = config.attribute_length_limit
    if hasattr(message, "DESCRIPTOR"):
        from google.protobuf.json_format import MessageToDict

        fields = MessageToDict(message, preserving_proto_field_name=True)
        text = config.masking.apply(Site.DB, fields)
        return payloads.truncate(text, limit)
    if isinstance(message, (bytes, bytearray, str)):
        return payloads.body_attribute(message, config) or ""
    return payloads.truncate(str(message), limit)


class _Recorder:
    """Bounded, comma-joined messages on one attribute of one span."""

    def __init__(self, span: Any, key: str, config: Config) -> None:
        self.span, self.key, self.config = span, key, config
        self.parts: List[str] = []
        self.size = 0

    def add(self, message: Any) -> None:
        limit = self.config.attribute_length_limit
        if self.size >= limit or not self.span.is_recording():
            return
        try:
            text = message_text(message, self.config)
            self.parts.append(text)
            self.size += len(text) + 1
            self.span.set_attribute(self.key, ",".join(self.parts)[:limit])
        except Exception:
            _LOG.debug("grpc %s capture failed; attribute dropped", self.key, exc_info=True)
            self.size = limit

    def wrap(self, messages: Iterator[Any]) -> Iterator[Any]:
        for message in messages:
            self.add(message)
            yield message


def _recorder(key: str, config: Config) -> Optional[_Recorder]:
    try:
        span = trace.get_current_span()
        return _Recorder(span, key, config) if span.is_recording() else None
    except Exception:
        return None


class ClientPayloads(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Records client calls' messages on the current (upstream client) span."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def _request(self, request: Any, streaming: bool) -> Any:
        recorder = _recorder(REQUEST_PAYLOAD, self.config)
        if recorder is None:
            return request
        if streaming:
            return recorder.wrap(request)
        recorder.add(request)
        return request

    def _unary_response(self, outcome: Any) -> Any:
        recorder = _recorder(RESPONSE_PAYLOAD, self.config)
        if recorder is not None:

            def done(future: Any) -> None:
                try:
                    if future.exception() is None:
                        recorder.add(future.result())
                except Exception:
                    _LOG.debug("grpc response capture failed", exc_info=True)

            outcome.add_done_callback(done)
        return outcome

    def _stream_response(self, outcome: Any) -> Any:
        recorder = _recorder(RESPONSE_PAYLOAD, self.config)
        return outcome if recorder is None else _StreamingCall(outcome, recorder)

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return self._unary_response(continuation(details, self._request(request, False)))

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return self._stream_response(continuation(details, self._request(request, False)))

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return self._unary_response(continuation(details, self._request(requests, True)))

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return self._stream_response(continuation(details, self._request(requests, True)))


class _StreamingCall(grpc.Call, grpc.Future):  # type: ignore[misc]
    """A response stream that records the messages the app iterates over.

    Still a `grpc.Call` and `grpc.Future`, so the upstream interceptor ends its span when
    the call is done rather than at once. The call is done when the server's status
    arrives, which can be before the app has read the last messages: done callbacks wait
    until the app's iteration ends (or this stream is dropped unread), so the span is still
    recording when they are read.
    """

    def __init__(self, call: Any, recorder: _Recorder) -> None:
        self._call = call
        self._messages = recorder.wrap(iter(call))
        # done callbacks held until the iteration ends; the finalizer runs them if the
        # app drops the stream without reading it to its end
        self._held = _HeldCallbacks(call)
        weakref.finalize(self, self._held.release)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._messages)
        except BaseException:  # the end of the stream, or its error: the call is over
            self._held.release()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)

    # grpc.Call / grpc.RpcContext / grpc.Future, all answered by the real call
    def initial_metadata(self) -> Any:
        return self._call.initial_metadata()

    def trailing_metadata(self) -> Any:
        return self._call.trailing_metadata()

    def code(self) -> Any:
        return self._call.code()

    def details(self) -> Any:
        return self._call.details()

    def is_active(self) -> Any:
        return self._call.is_active()

    def time_remaining(self) -> Any:
        return self._call.time_remaining()

    def add_callback(self, callback: Any) -> Any:
        return self._call.add_callback(callback)

    def cancel(self) -> Any:
        cancelled = self._call.cancel()
        self._held.release()  # the app reads no more: the span may end
        return cancelled

    def cancelled(self) -> Any:
        return self._call.cancelled()

    def running(self) -> Any:
        return self._call.running()

    def done(self) -> Any:
        return self._call.done()

    def result(self, timeout: Optional[float] = None) -> Any:
        return self._call.result(timeout)

    def exception(self, timeout: Optional[float] = None) -> Any:
        return self._call.exception(timeout)

    def traceback(self, timeout: Optional[float] = None) -> Any:
        return self._call.traceback(timeout)

    def add_done_callback(self, fn: Any) -> Any:
        return self._call.add_done_callback(self._held.hold(fn))


class _HeldCallbacks:
    """A call's done callbacks, run once the call is done and `release` was called."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._lock = threading.Lock()
        self._released = False
        self._waiting: List[Callable[[Any], Any]] = []

    def hold(self, fn: Callable[[Any], Any]) -> Callable[[Any], None]:
        def done(_call: Any) -> None:
            with self._lock:
                if not self._released:
                    self._waiting.append(fn)
                    return
            fn(self._call)

        return done

    def release(self) -> None:
        with self._lock:
            self._released = True
            waiting, self._waiting = self._waiting, []
        for fn in waiting:
            try:
                fn(self._call)
            except Exception:
                _LOG.debug("grpc done callback failed", exc_info=True)


class ServerPayloads(grpc.ServerInterceptor):  # type: ignore[misc]
    """Records served calls' messages on the current (upstream server) span."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        try:
            return self._wrap(handler)
        except Exception:
            _LOG.debug("grpc server payload capture not installed", exc_info=True)
            return handler

    def _wrap(self, handler: Any) -> Any:
        config = self.config
        streaming_in, streaming_out = handler.request_streaming, handler.response_streaming
        behavior = (
            handler.stream_stream if streaming_in and streaming_out
            else handler.stream_unary if streaming_in
            else handler.unary_stream if streaming_out
            else handler.unary_unary
        )  # fmt: skip
        if behavior is None:
            return handler

        def recorded(request: Any, context: Any) -> Any:
            requests = _recorder(REQUEST_PAYLOAD, config)
            if requests is not None:
                if streaming_in:
                    request = requests.wrap(request)
                else:
                    requests.add(request)
            result = behavior(request, context)
            responses = _recorder(RESPONSE_PAYLOAD, config)
            if responses is None:
                return result
            if streaming_out:
                return responses.wrap(result)
            responses.add(result)
            return result

        make = (
            grpc.stream_stream_rpc_method_handler if streaming_in and streaming_out
            else grpc.stream_unary_rpc_method_handler if streaming_in
            else grpc.unary_stream_rpc_method_handler if streaming_out
            else grpc.unary_unary_rpc_method_handler
        )  # fmt: skip
        return make(
            recorded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
