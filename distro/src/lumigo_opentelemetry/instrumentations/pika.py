"""pika (RabbitMQ): publish and consume spans, joined into one trace by message headers.

Built on opentelemetry-instrumentation-pika: `basic_publish` is a PRODUCER span that
writes the trace context into the message's `headers` property; a consumer callback
(`basic_consume`) or the `consume()` generator runs in a CONSUMER span whose parent is
that producer span, so the consumer's own spans join the producer's trace. Channels
are instrumented as the app opens them (the upstream wraps `BlockingConnection.channel`
and `Connection.channel`). A `BlockingChannel` drives an inner `Channel`, which the
upstream instruments too (two PRODUCER spans per publish); its inner channel is set
back to plain right after it opens, so each publish and delivery is one span.
The upstream makes each message of `consume()` current as the generator hands it out and
only detaches it when the next message is taken: after the loop (`break`, `cancel()`) or
on an idle iteration (`inactivity_timeout`) the last message's span would stay current and
the app's next spans become its children. `consume()` is wrapped so that its context ends
whenever the app asks for the next item and when the generator ends or is closed, and
`cancel()` ends it too.
On top of it, as the upstream distro does, the message body as `messaging.publish.body`
and `messaging.consume.body`: decoded as the message's `content_type` says, JSON masked,
binary bodies as a size placeholder, truncated to the attribute limit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Tuple

from lumigo_opentelemetry.instrumentations import payloads

if TYPE_CHECKING:
    from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
        BaseInstrumentor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from lumigo_opentelemetry.config import Config

NAME = "pika"
HOOK_MODULE = "pika"

PUBLISH_BODY = "messaging.publish.body"
CONSUME_BODY = "messaging.consume.body"

_LOG = logging.getLogger("lumigo-opentelemetry.pika")


def instrumentor() -> BaseInstrumentor:
    from opentelemetry.instrumentation.pika import PikaInstrumentor

    return PikaInstrumentor()


class _Hooks:
    def __init__(self, config: Config) -> None:
        self.config = config

    def _body(self, span: Span, key: str, body: Any, properties: Any) -> None:
        try:
            if span is None or not span.is_recording():
                return
            if isinstance(body, str):
                body = body.encode("utf-8")
            content_type = getattr(properties, "content_type", None)
            payloads.set_captured(
                span, key, payloads.body_attribute, body, self.config, content_type
            )
        except Exception:
            _LOG.debug("pika %s capture failed; attribute dropped", key, exc_info=True)

    def publish(self, span: Span, body: Any, properties: Any = None, *_rest: Any) -> None:
        self._body(span, PUBLISH_BODY, body, properties)

    def consume(self, span: Span, body: Any, properties: Any = None, *_rest: Any) -> None:
        self._body(span, CONSUME_BODY, body, properties)


def _one_span_per_blocking_call(
    wrapped: Callable[..., Any], _instance: Any, args: Tuple[Any, ...], kwargs: Any
) -> Any:
    """`BlockingConnection.channel`: un-instrument the inner channel it opened."""
    channel = wrapped(*args, **kwargs)
    try:
        inner = getattr(channel, "_impl", None)
        original = getattr(getattr(inner, "basic_publish", None), "_original_function", None)
        if inner is not None and original is not None:
            from opentelemetry.instrumentation.utils import unwrap

            inner.basic_publish = original
            unwrap(inner, "basic_consume")
    except Exception:
        _LOG.debug("pika inner channel left instrumented", exc_info=True)
    return channel


def _end_message_context(channel: Any) -> None:
    """Detach the context the upstream attached for the message `consume()` last handed
    out (it would stay current until the next message is taken)."""
    try:
        generator_info = getattr(channel, "_queue_consumer_generator", None)
        proxy = getattr(generator_info, "pending_events", None)
        token = getattr(proxy, "_self_active_token", None)
        if proxy is None or token is None:
            return
        proxy._self_active_token = None  # the upstream would detach it again
        reset = getattr(getattr(token, "var", None), "reset", None)
        if reset is None:  # not a contextvars token: another runtime context
            from opentelemetry import context

            context.detach(token)
        else:
            reset(token)  # raises outside the context it was attached in: left as is
    except Exception:
        _LOG.debug("pika message context left attached", exc_info=True)


def _consumed_with_context_ended(messages: Iterator[Any], channel: Any) -> Iterator[Any]:
    try:
        while True:
            _end_message_context(channel)  # the app is done with the previous item
            try:
                item = next(messages)
            except StopIteration:
                return
            yield item
    finally:
        _end_message_context(channel)
        close = getattr(messages, "close", None)
        if close is not None:
            close()


def _consume(wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Any) -> Any:
    """`BlockingChannel.consume`: its messages' context ends with their iteration."""
    return _consumed_with_context_ended(wrapped(*args, **kwargs), instance)


def _cancel(wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Any) -> Any:
    """`BlockingChannel.cancel`: the consumer generator's last message's context ends."""
    _end_message_context(instance)
    return wrapped(*args, **kwargs)


_hooks: Optional[_Hooks] = None


def instrument(config: Config, tracer_provider: TracerProvider) -> None:
    """Instrument pika once; a later call only refreshes the configuration."""
    global _hooks
    if _hooks is None:
        _hooks = _Hooks(config)
    else:
        _hooks.config = config
    upstream = instrumentor()
    if not upstream.is_instrumented_by_opentelemetry:
        upstream.instrument(
            tracer_provider=tracer_provider,
            publish_hook=_hooks.publish,
            consume_hook=_hooks.consume,
            skip_dep_check=True,
        )
        from wrapt import wrap_function_wrapper

        wrap_function_wrapper("pika", "BlockingConnection.channel", _one_span_per_blocking_call)
        wrap_function_wrapper(
            "pika.adapters.blocking_connection", "BlockingChannel.consume", _consume
        )
        wrap_function_wrapper(
            "pika.adapters.blocking_connection", "BlockingChannel.cancel", _cancel
        )


def uninstrument() -> None:
    """Undo `instrument()` (used by tests)."""
    upstream = instrumentor()
    if upstream.is_instrumented_by_opentelemetry:
        from opentelemetry.instrumentation.utils import unwrap
        from pika import BlockingConnection
        from pika.adapters.blocking_connection import BlockingChannel

        unwrap(BlockingConnection, "channel")  # ours, on top of the upstream wrapper
        unwrap(BlockingChannel, "consume")
        unwrap(BlockingChannel, "cancel")
        upstream.uninstrument()
