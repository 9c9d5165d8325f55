"""botocore (boto3): one CLIENT span per AWS API call, with the HTTP exchange as payloads.

Built on opentelemetry-instrumentation-botocore (span `<Service>.<Operation>`, `rpc.*`,
`aws.*`, `cloud.region`, X-Ray propagation). On top of it, each span carries the HTTP
request and response the call really sent and received (the last attempt when botocore
retried): `http.request.headers`, `http.request.body`, `http.response.headers`,
`http.response.body`; headers and bodies masked (`Masking.apply`, request/response
sites), everything truncated. The signing headers (`Authorization`,
`X-Amz-Security-Token`) are always masked. Streams are never
read, so the app gets them intact: an upload from a file and a streamed download (S3
GetObject) have headers only; an upload of `bytes` is peeked at in botocore's buffer.

SQS `ReceiveMessage` responses get the receive scope (see `sqs_scope`).

Upstream's attributes come on top (see `aws_fields`): `aws.service`, `aws.region`,
`region`, `http.method` (the operation), `http.url`, `aws.resource.name`, `messageId`; for
SQS, SNS and Lambda `http.request.body` is the message or payload, as upstream sends it
(other services keep the body really sent). An SQS ReceiveMessage that got no message is
not exported (`LUMIGO_AUTO_FILTER_EMPTY_SQS`, default true), nor is a call whose `http.url`
matches `LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX[_CLIENT]`.
"""

from __future__ import annotations

import io
import logging
import weakref
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Tuple, Union

from opentelemetry import trace

from lumigo_opentelemetry.instrumentations.payloads import (
    REQUEST_BODY,
    REQUEST_HEADERS,
    RESPONSE_BODY,
    RESPONSE_HEADERS,
)
from lumigo_opentelemetry.masking import Site

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config

NAME = "botocore"
HOOK_MODULE = "botocore"

_LOG = logging.getLogger("lumigo-opentelemetry.botocore")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    return BotocoreInstrumentor()  # type: ignore[no-untyped-call]


class _Capture:
    """Hooks and the `Endpoint._send` wrapper, sharing the set of spans being captured."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.spans: weakref.WeakSet[trace.Span] = weakref.WeakSet()
        # spans whose http.request.body is upstream's message/payload, not the wire body
        self.message_bodies: weakref.WeakSet[trace.Span] = weakref.WeakSet()

    def request_hook(
        self,
        span: trace.Span,
        service_name: str = "",
        operation_name: str = "",
        api_params: Any = None,
        *_args: Any,
    ) -> None:
        try:
            if not span.is_recording():
                return
            self.spans.add(span)
            self._upstream_request_attributes(span, service_name, operation_name, api_params)
        except Exception:
            _LOG.debug("botocore request hook failed", exc_info=True)

    def _upstream_request_attributes(
        self, span: trace.Span, service: str, operation: str, params: Any
    ) -> None:
        from lumigo_opentelemetry.instrumentations import aws_fields

        attributes = getattr(span, "attributes", None) or {}
        region = attributes.get("cloud.region") or attributes.get("aws.region")
        values = aws_fields.request_attributes(
            service,
            operation,
            params if isinstance(params, Mapping) else {},
            region if isinstance(region, str) else None,
            self.config,
        )
        span.set_attributes(values)
        if service in aws_fields.MESSAGE_FIELDS and REQUEST_BODY in values:
            self.message_bodies.add(span)

    def response_hook(
        self, span: trace.Span, service_name: str, operation_name: str, result: Any
    ) -> None:
        try:
            self.spans.discard(span)
            self.message_bodies.discard(span)
            self._upstream_response(span, service_name, operation_name, result)
            if service_name == "sqs" and operation_name == "ReceiveMessage":
                from lumigo_opentelemetry.instrumentations.sqs_scope import scope_messages

                scope_messages(result, span)
        except Exception:
            _LOG.debug("botocore response hook failed", exc_info=True)

    def _upstream_response(
        self, span: trace.Span, service: str, operation: str, result: Any
    ) -> None:
        from lumigo_opentelemetry.export.skip import mark_skip_export
        from lumigo_opentelemetry.instrumentations import aws_fields
        from lumigo_opentelemetry.sampling import endpoint_filtered

        found = aws_fields.message_id(result)
        if found:
            span.set_attribute(aws_fields.MESSAGE_ID, found)
        if self.config.auto_filter_empty_sqs and aws_fields.is_empty_sqs_poll(
            service, operation, result
        ):
            _LOG.debug("empty SQS poll not exported (LUMIGO_AUTO_FILTER_EMPTY_SQS=false keeps it)")
            mark_skip_export(span)
        elif endpoint_filtered(
            self.config, trace.SpanKind.CLIENT, getattr(span, "attributes", None)
        ):
            mark_skip_export(span)

    def send(
        self,
        wrapped: Callable[..., Any],
        _instance: Any,
        args: Tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        span = _tracked_span(self.spans)
        request = args[0] if args else kwargs.get("request")
        if span is not None:
            _guarded(lambda: self._record_request(span, request), "request payload")
        response = wrapped(*args, **kwargs)
        if span is not None:
            _guarded(lambda: self._record_response(span, request, response), "response payload")
        return response

    def _record_request(self, span: trace.Span, request: Any) -> None:
        from lumigo_opentelemetry.instrumentations.payloads import (
            body_attribute,
            headers_attribute,
        )

        headers = _header_items(request.headers)
        span.set_attribute(REQUEST_HEADERS, headers_attribute(headers, self.config))
        if span in self.message_bodies:
            return  # upstream's message/payload body stays
        body, total = _request_body(request.body, self.config.attribute_length_limit)
        if body is not None:
            text = body_attribute(body, self.config, _content_type(headers), total_size=total)
            if text is not None:
                span.set_attribute(REQUEST_BODY, text)

    def _record_response(self, span: trace.Span, request: Any, response: Any) -> None:
        from lumigo_opentelemetry.instrumentations.payloads import (
            body_attribute,
            headers_attribute,
        )

        headers = _header_items(response.headers)
        span.set_attribute(
            RESPONSE_HEADERS,
            headers_attribute(headers, self.config, Site.HTTP_RESPONSE_HEADERS),
        )
        if getattr(request, "stream_output", True):
            return  # the app reads this stream: never touch it
        text = body_attribute(
            response.content,
            self.config,
            _content_type(headers),
            site=Site.HTTP_RESPONSE_BODIES,
        )
        if text is not None:
            span.set_attribute(RESPONSE_BODY, text)


def _tracked_span(spans: weakref.WeakSet[trace.Span]) -> Optional[trace.Span]:
    try:
        span = trace.get_current_span()
        return span if span in spans else None
    except Exception:
        return None


def _guarded(action: Callable[[], None], what: str) -> None:
    try:
        action()
    except Exception:
        _LOG.debug("botocore %s capture failed; attribute dropped", what, exc_info=True)


def _header_items(headers: Any) -> List[Tuple[str, str]]:
    items = []
    for key, value in headers.items():
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        items.append((name, text))
    return items


def _request_body(body: Any, limit: int) -> Tuple[Union[bytes, str, None], Optional[int]]:
    """The body to record and its full size; an in-memory buffer is peeked, never read.

    botocore turns `bytes` bodies of some operations (S3 uploads) into `io.BytesIO`; its
    unread part is copied (at most 4 bytes per character of the limit) without moving
    the position. Other streams (files, sockets, the app's generators) are left alone.
    """
    if isinstance(body, (bytes, str)):
        return body, None
    if isinstance(body, bytearray):
        return bytes(body), None
    if isinstance(body, io.BytesIO):
        start = body.tell()
        with body.getbuffer() as view:
            return bytes(view[start : start + 4 * limit]), len(view) - start
    return None, None


def _content_type(headers: List[Tuple[str, str]]) -> Optional[str]:
    for name, value in headers:
        if name.lower() == "content-type":
            return value
    return None


_capture: Optional[_Capture] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument botocore once; a later call only refreshes the configuration."""
    global _capture
    if _capture is None:
        _capture = _Capture(config)
    else:
        _capture.config = config
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        return
    upstream.instrument(
        tracer_provider=tracer_provider,
        request_hook=_capture.request_hook,
        response_hook=_capture.response_hook,
    )
    from wrapt import wrap_function_wrapper

    wrap_function_wrapper("botocore.endpoint", "Endpoint._send", _capture.send)


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        return
    from botocore.endpoint import Endpoint
    from opentelemetry.instrumentation.utils import unwrap

    unwrap(Endpoint, "_send")
    upstream.uninstrument()
