"""The SQS receive scope, in-process: boto3 against moto in server mode, spans at OTLP."""

from __future__ import annotations

import copy
import json
import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.helpers.data_tracing import instrumented, one, receiver, tracing
from tests.helpers.moto_server import MotoServer, moto_server

__all__ = ["moto_server", "receiver"]


@pytest.fixture(scope="module", autouse=True)
def _botocore() -> Iterator[None]:
    with instrumented("botocore"):
        yield


@pytest.fixture(autouse=True)
def empty_context() -> Iterator[None]:
    """Each test starts with no active span, whatever an earlier test in this process left."""
    token = otel_context.attach(otel_context.Context())
    yield
    otel_context.detach(token)


@pytest.fixture
def received(moto_server: MotoServer, receiver: OtlpReceiver) -> dict[str, Any]:
    """A ReceiveMessage response with two messages, made outside any span."""
    sqs = moto_server.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    response: dict[str, Any] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    assert len(response["Messages"]) == 2
    return response


def _no_active_span() -> bool:
    return not trace.get_current_span().get_span_context().is_valid


def _receive_span(receiver: OtlpReceiver) -> ReceivedSpan:
    receiver.wait_for_spans(1, where=lambda s: s.name == "SQS.ReceiveMessage")
    return one(receiver.spans(), "SQS.ReceiveMessage")


def test_spans_started_in_the_loop_are_children_of_the_receive_span(
    received: dict[str, Any], receiver: OtlpReceiver
) -> None:
    tracer = tracing().tracer
    for message in received["Messages"]:
        with tracer.start_as_current_span(f"handle {message['Body']}"):
            pass
    assert _no_active_span()
    with tracer.start_as_current_span("after the loop"):
        pass

    spans = receiver.wait_for_spans(3, where=lambda s: s.name != "SQS.SendMessage")
    receive = _receive_span(receiver)
    assert receive.kind == "CLIENT"
    for name in ("handle first", "handle second"):
        child = one(spans, name)
        assert child.parent_span_id == receive.span_id
        assert child.trace_id == receive.trace_id
    after = one(spans, "after the loop")
    assert after.parent_span_id == ""
    assert after.trace_id != receive.trace_id


def test_break_restores_the_previous_context(
    received: dict[str, Any], receiver: OtlpReceiver
) -> None:
    tracer = tracing().tracer
    for message in received["Messages"]:
        with tracer.start_as_current_span("handle once"):
            pass
        assert trace.get_current_span().get_span_context().is_valid
        assert message["Body"] == "first"
        break
    assert _no_active_span()

    receive = _receive_span(receiver)
    handled = receiver.wait_for_spans(1, where=lambda s: s.name == "handle once")[0]
    assert handled.parent_span_id == receive.span_id


def test_an_exception_in_the_loop_restores_the_previous_context(
    received: dict[str, Any], receiver: OtlpReceiver
) -> None:
    tracer = tracing().tracer
    with pytest.raises(ValueError, match="bad message"):
        for message in received["Messages"]:
            with tracer.start_as_current_span("handle and fail"):
                raise ValueError(f"bad message {message['Body']}")
    assert _no_active_span()

    receive = _receive_span(receiver)
    failed = receiver.wait_for_spans(1, where=lambda s: s.name == "handle and fail")[0]
    assert failed.parent_span_id == receive.span_id
    assert failed.status == "ERROR"


def test_an_active_span_stays_the_parent(received: dict[str, Any], receiver: OtlpReceiver) -> None:
    tracer = tracing().tracer
    with tracer.start_as_current_span("worker") as worker:
        for _message in received["Messages"]:
            with tracer.start_as_current_span("handle under worker"):
                pass
        assert trace.get_current_span() is worker

    spans = receiver.wait_for_spans(2, where=lambda s: s.name == "handle under worker")
    parent = one(receiver.wait_for_spans(1, where=lambda s: s.name == "worker"), "worker")
    assert {s.parent_span_id for s in spans} == {parent.span_id}


def test_the_messages_still_behave_as_the_list_aws_returned(received: dict[str, Any]) -> None:
    messages = received["Messages"]
    plain = [dict(m) for m in list.__iter__(messages)]
    assert isinstance(messages, list)
    assert len(messages) == 2
    assert messages[0]["Body"] == "first" and messages[-1]["Body"] == "second"
    assert messages[:1] == plain[:1]
    assert messages == plain
    assert [m["Body"] for m in messages] == ["first", "second"]
    assert json.loads(json.dumps(received))["Messages"] == plain
    for clone in (pickle.loads(pickle.dumps(received)), copy.deepcopy(received)):
        assert type(clone["Messages"]) is list and clone["Messages"] == plain
    assert type(copy.copy(messages)) is list
    assert _no_active_span()


def test_an_empty_receive_has_no_messages_key(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    sqs = moto_server.client("sqs")
    url = sqs.create_queue(QueueName=f"empty-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    response = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert response.get("Messages", []) == []
    assert _receive_span(receiver).status != "ERROR"
