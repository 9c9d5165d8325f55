"""pika in-process against the RabbitMQ at 127.0.0.1:5672 (guest/guest); spans at OTLP."""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.data_tracing import instrumented, one, receiver, tracing
from tests.helpers.need import tcp_service

__all__ = ["receiver"]


@pytest.fixture(autouse=True)
def _pika() -> Iterator[None]:
    tcp_service("127.0.0.1", 5672, "RabbitMQ")
    with instrumented("pika"):
        yield


@pytest.fixture
def channel() -> Iterator[Any]:
    import pika

    params = pika.ConnectionParameters(
        "127.0.0.1", 5672, credentials=pika.PlainCredentials("guest", "guest")
    )
    connection = pika.BlockingConnection(params)
    try:
        yield connection.channel()
    finally:
        connection.close()


def _queue(channel: Any) -> str:
    name = f"lumigo-test-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue=name, auto_delete=True)
    return name


def test_the_consumer_joins_the_producers_trace(channel: Any, receiver: Any) -> None:
    import pika

    queue = _queue(channel)
    body = json.dumps({"order": 7, "card_secret": "4111"}).encode()
    with tracing().tracer.start_as_current_span("checkout"):
        channel.basic_publish(
            "", queue, body, pika.BasicProperties(content_type="application/json")
        )

    handled: list[bytes] = []

    def on_message(ch: Any, method: Any, _properties: Any, message: bytes) -> None:
        with tracing().tracer.start_as_current_span("handle-order"):
            handled.append(message)
        ch.basic_ack(method.delivery_tag)
        ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    channel.start_consuming()
    assert handled == [body]  # the app got its message untouched (headers aside)

    spans = receiver.wait_for_spans(4)
    checkout, handle = one(spans, "checkout"), one(spans, "handle-order")
    producer = next(s for s in spans if s.kind == "PRODUCER")
    consumer = next(s for s in spans if s.kind == "CONSUMER")
    assert producer.parent_span_id == checkout.span_id
    assert consumer.parent_span_id == producer.span_id
    assert handle.parent_span_id == consumer.span_id
    assert {s.trace_id for s in spans} == {checkout.trace_id}
    for span, key in ((producer, "messaging.publish.body"), (consumer, "messaging.consume.body")):
        assert json.loads(span.attributes[key]) == {"order": 7, "card_secret": "****"}
    assert "4111" not in str([s.attributes for s in spans])


def test_consume_generator_and_bounded_binary_bodies(channel: Any, receiver: Any) -> None:
    queue = _queue(channel)
    channel.basic_publish("", queue, b"\x00\x01" * 5000)
    channel.basic_publish("", queue, b"x" * 10_000)
    got: list[bytes] = []

    def consume_two() -> None:
        for method, _properties, message in channel.consume(queue, inactivity_timeout=10):
            assert method is not None, "RabbitMQ delivered nothing"
            got.append(message)
            channel.basic_ack(method.delivery_tag)
            if len(got) == 2:
                break
        channel.cancel()

    # The instrumentation keeps the last message's span current after the loop (until the
    # next message): run the loop in its own context, as a consumer thread would, so that
    # span does not stay active in the test process.
    contextvars.copy_context().run(consume_two)
    assert [len(m) for m in got] == [10_000, 10_000]
    spans = receiver.wait_for_spans(4)
    published = [s.attributes["messaging.publish.body"] for s in spans if s.kind == "PRODUCER"]
    assert published == ["<binary body: 10000 bytes>", "x" * 2048]
    consumed = [s.attributes["messaging.consume.body"] for s in spans if s.kind == "CONSUMER"]
    assert consumed == published
