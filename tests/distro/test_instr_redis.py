"""redis-py in-process against the Redis at 127.0.0.1:6379 (sync and asyncio); spans at OTLP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lumigo_opentelemetry.config import Config
from tests.helpers.data_tracing import instrumented, one, receiver, tracing
from tests.helpers.need import tcp_service

__all__ = ["receiver"]


@pytest.fixture(autouse=True)
def _redis() -> Iterator[None]:
    tcp_service("127.0.0.1", 6379, "Redis")
    with instrumented("redis"):
        yield


def _key(name: str) -> str:
    return f"lumigo-test:{uuid.uuid4().hex[:8]}:{name}"


def test_commands_are_spans_with_masked_arguments_and_replies(receiver: Any) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    plain, secret, user = _key("colour"), _key("password"), _key("user")
    with tracing().tracer.start_as_current_span("request"):
        client.set(plain, "blue")
        client.set(secret, "hunter2")
        assert client.get(plain) == b"blue"
        assert client.get(secret) == b"hunter2"
        client.hset(user, mapping={"name": "ada", "api_key": "k-123"})
        assert client.hgetall(user) == {b"name": b"ada", b"api_key": b"k-123"}
        client.delete(plain, secret, user)
    spans = receiver.wait_for_spans(8)
    request = one(spans, "request")
    commands = [s for s in spans if s is not request]
    assert [s.attributes["db.statement"] for s in commands] == [
        f"SET {plain} blue",
        f"SET {secret} ****",
        f"GET {plain}",
        f"GET {secret}",
        f"HSET {user} name ada api_key ****",
        f"HGETALL {user}",
        f"DEL {plain} {secret} {user}",
    ]
    replies = [s.attributes.get("db.response.body") for s in commands]
    assert replies[2] == "blue" and replies[3] == "****"
    assert "'name': 'ada'" in replies[5] and "'api_key': '****'" in replies[5]
    for span in commands:
        assert span.kind == "CLIENT"
        assert span.parent_span_id == request.span_id
        assert span.attributes["db.system"] == "redis"
    assert "hunter2" not in str([s.attributes for s in spans])
    assert "k-123" not in str([s.attributes for s in spans])


def test_a_pipeline_is_one_span_without_its_values(receiver: Any) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    key = _key("token_secret")
    with tracing().tracer.start_as_current_span("request"):
        pipe = client.pipeline()
        pipe.set(key, "s3cr3t").get(key).delete(key)
        assert pipe.execute() == [True, b"s3cr3t", 1]
    spans = receiver.wait_for_spans(2)
    pipeline = next(s for s in spans if s.name != "request")
    assert pipeline.attributes["db.redis.pipeline_length"] == 3
    assert pipeline.attributes["db.statement"].split("\n") == ["SET ? ?", "GET ?", "DEL ?"]
    assert "s3cr3t" not in str(pipeline.attributes)


def test_asyncio_commands_and_pipelines_are_spans(receiver: Any) -> None:
    import redis.asyncio

    key = _key("city")

    async def work() -> list[Any]:
        client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
        try:
            with tracing().tracer.start_as_current_span("request"):
                await client.set(key, "Lyon")
                value = await client.get(key)
                async with client.pipeline() as pipe:
                    results = await pipe.get(key).delete(key).execute()
            return [value, results]
        finally:
            await client.aclose()

    assert asyncio.run(work()) == [b"Lyon", [b"Lyon", 1]]
    spans = receiver.wait_for_spans(4)
    request = one(spans, "request")
    statements = [s.attributes.get("db.statement") for s in spans if s is not request]
    assert statements[:2] == [f"SET {key} Lyon", f"GET {key}"]
    assert one(spans, "GET").attributes["db.response.body"] == "Lyon"
    assert all(s.trace_id == request.trace_id for s in spans)


def test_arguments_and_replies_are_bounded(receiver: Any) -> None:
    import redis

    from tests.helpers.data_tracing import instrumented as again

    client = redis.Redis(host="127.0.0.1", port=6379)
    key = _key("blob")
    with again("redis", Config.from_environ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "64"})):
        client.set(key, "x" * 10_000)
        assert len(client.get(key) or b"") == 10_000
        client.delete(key)
    spans = receiver.wait_for_spans(3)
    assert all(len(s.attributes["db.statement"]) <= 64 for s in spans)
    assert one(spans, "GET").attributes["db.response.body"] == "x" * 64
