"""grpcio in-process: a real gRPC server and client on 127.0.0.1, spans at OTLP.

Messages are `google.protobuf.Struct` (a real protobuf type, no generated stubs needed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest

from lumigo_opentelemetry.config import Config
from tests.helpers.data_tracing import instrumented, one, receiver, tracing

__all__ = ["receiver"]

SERVICE = "demo.Shop"


def _struct(**fields: Any) -> Any:
    from google.protobuf.struct_pb2 import Struct

    message = Struct()
    message.update(fields)
    return message


def _handlers() -> Any:
    import grpc
    from google.protobuf.struct_pb2 import Struct

    def buy(request: Any, _context: Any) -> Any:
        return _struct(item=request["item"], receipt_secret="r-42")

    def watch(request: Any, _context: Any) -> Iterator[Any]:
        for step in range(int(request["steps"])):
            yield _struct(step=step)

    def upload(requests: Iterator[Any], _context: Any) -> Any:
        return _struct(parts=len(list(requests)))

    def chat(requests: Iterator[Any], _context: Any) -> Iterator[Any]:
        for request in requests:
            yield _struct(echo=request["say"])

    options = {
        "request_deserializer": Struct.FromString,
        "response_serializer": Struct.SerializeToString,
    }
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Buy": grpc.unary_unary_rpc_method_handler(buy, **options),
            "Watch": grpc.unary_stream_rpc_method_handler(watch, **options),
            "Upload": grpc.stream_unary_rpc_method_handler(upload, **options),
            "Chat": grpc.stream_stream_rpc_method_handler(chat, **options),
        },
    )


class Shop:
    """A server and a client channel made after instrumentation, as an app makes them."""

    def __init__(self) -> None:
        import grpc
        from google.protobuf.struct_pb2 import Struct

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((_handlers(),))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        options = {
            "request_serializer": Struct.SerializeToString,
            "response_deserializer": Struct.FromString,
        }
        self.buy = self.channel.unary_unary(f"/{SERVICE}/Buy", **options)
        self.watch = self.channel.unary_stream(f"/{SERVICE}/Watch", **options)
        self.upload = self.channel.stream_unary(f"/{SERVICE}/Upload", **options)
        self.chat = self.channel.stream_stream(f"/{SERVICE}/Chat", **options)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)


@pytest.fixture
def shop() -> Iterator[Shop]:
    with instrumented("grpc"):
        made = Shop()
        yield made
        made.close()


def _pair(spans: list[Any], method: str) -> tuple[Any, Any]:
    name = f"/{SERVICE}/{method}"
    client = next(s for s in spans if s.name == name and s.kind == "CLIENT")
    server = next(s for s in spans if s.name == name and s.kind == "SERVER")
    assert server.parent_span_id == client.span_id and server.trace_id == client.trace_id
    assert client.attributes["rpc.system"] == "grpc"
    assert client.attributes["rpc.method"] == method
    return client, server


def _payload(span: Any, key: str) -> list[Any]:
    """The recorded messages (joined by `,`) as a JSON list."""
    return list(json.loads(f"[{span.attributes[key]}]"))


def test_unary_call_spans_carry_masked_payloads(shop: Shop, receiver: Any) -> None:
    with tracing().tracer.start_as_current_span("request"):
        reply = shop.buy(_struct(item="book", card_key="4111"))
    assert dict(reply) == {"item": "book", "receipt_secret": "r-42"}
    spans = receiver.wait_for_spans(3)
    client, server = _pair(spans, "Buy")
    assert client.parent_span_id == one(spans, "request").span_id
    for span in (client, server):
        assert _payload(span, "rpc.request.payload") == [{"item": "book", "card_key": "****"}]
        assert _payload(span, "rpc.response.payload") == [
            {"item": "book", "receipt_secret": "****"}
        ]
    assert "4111" not in str([s.attributes for s in spans])


def test_streaming_calls_record_each_message(shop: Shop, receiver: Any) -> None:
    watched = [dict(m) for m in shop.watch(_struct(steps=3))]
    assert watched == [{"step": 0.0}, {"step": 1.0}, {"step": 2.0}]
    uploaded = shop.upload(iter([_struct(part=1), _struct(part=2)]))
    assert dict(uploaded) == {"parts": 2.0}
    chatted = [dict(m) for m in shop.chat(iter([_struct(say="hi"), _struct(say="bye")]))]
    assert chatted == [{"echo": "hi"}, {"echo": "bye"}]
    spans = receiver.wait_for_spans(6)
    for span in _pair(spans, "Watch"):
        assert _payload(span, "rpc.request.payload") == [{"steps": 3}]
        assert _payload(span, "rpc.response.payload") == [{"step": 0}, {"step": 1}, {"step": 2}]
    for span in _pair(spans, "Upload"):
        assert _payload(span, "rpc.request.payload") == [{"part": 1}, {"part": 2}]
        assert _payload(span, "rpc.response.payload") == [{"parts": 2}]
    for span in _pair(spans, "Chat"):
        assert _payload(span, "rpc.request.payload") == [{"say": "hi"}, {"say": "bye"}]
        assert _payload(span, "rpc.response.payload") == [{"echo": "hi"}, {"echo": "bye"}]


def test_the_last_message_is_recorded_when_the_status_arrives_first(
    shop: Shop, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's status can arrive while the app is still taking the last message in
    (here: each recording takes 0.3 s, as on a loaded machine): the client span ends when
    the app's iteration does, with every message it read."""
    from lumigo_opentelemetry.instrumentations import _grpc_payloads

    record = _grpc_payloads._Recorder.add

    def slow(self: Any, message: Any) -> None:
        time.sleep(0.3)
        record(self, message)

    monkeypatch.setattr(_grpc_payloads._Recorder, "add", slow)
    chatted = [dict(m) for m in shop.chat(iter([_struct(say="hi"), _struct(say="bye")]))]
    assert chatted == [{"echo": "hi"}, {"echo": "bye"}]
    for span in _pair(receiver.wait_for_spans(2), "Chat"):
        assert _payload(span, "rpc.response.payload") == [{"echo": "hi"}, {"echo": "bye"}]


def test_a_cancelled_stream_ends_its_span_with_what_was_read(shop: Shop, receiver: Any) -> None:
    call = shop.chat(iter([_struct(say="hi"), _struct(say="bye")]))
    assert dict(next(call)) == {"echo": "hi"}
    call.cancel()
    client = receiver.wait_for(
        lambda spans: any(s.name.endswith("/Chat") and s.kind == "CLIENT" for s in spans)
    )
    span = next(s for s in client if s.name.endswith("/Chat") and s.kind == "CLIENT")
    assert _payload(span, "rpc.response.payload") == [{"echo": "hi"}]
    assert span.status == "ERROR"


def test_payloads_off_with_the_setting(receiver: Any) -> None:
    config = Config.from_environ({"LUMIGO_INSTRUMENT_GRPC_PAYLOADS": "false"})
    with instrumented("grpc", config):
        shop = Shop()
        try:
            assert dict(shop.buy(_struct(item="pen"))) == {"item": "pen", "receipt_secret": "r-42"}
            assert len(list(shop.watch(_struct(steps=2)))) == 2
        finally:
            shop.close()
    spans = receiver.wait_for_spans(4)
    for span in (*_pair(spans, "Buy"), *_pair(spans, "Watch")):
        assert not any(key.startswith("rpc.request") for key in span.attributes)
        assert "rpc.response.payload" not in span.attributes


def test_a_failing_call_is_an_error_span_and_still_raises(shop: Shop, receiver: Any) -> None:
    import grpc

    missing = shop.channel.unary_unary(f"/{SERVICE}/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as raised:
        missing(b"")
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    span = receiver.wait_for_spans(1, where=lambda s: s.kind == "CLIENT")[0]
    assert span.status == "ERROR"
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]
