"""pymongo instrumentation in-process: a real MongoClient over a socket to the wire server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pymongo
import pytest
from pymongo.errors import OperationFailure

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.instrumentations import pymongo as pymongo_instrumentation
from lumigo_opentelemetry.masking import Site
from tests.helpers.data_tracing import CONFIG, instrumented, one, receiver, tracing
from tests.helpers.mongo_server import MongoWireServer

__all__ = ["receiver"]


@pytest.fixture(scope="module")
def mongo() -> Iterator[MongoWireServer]:
    with instrumented("pymongo"), MongoWireServer() as server:
        yield server


@pytest.fixture
def client(mongo: MongoWireServer) -> Iterator[pymongo.MongoClient]:  # type: ignore[type-arg]
    client: pymongo.MongoClient = pymongo.MongoClient(  # type: ignore[type-arg]
        mongo.uri, serverSelectionTimeoutMS=5000
    )
    yield client
    client.close()


def test_commands_are_client_spans_with_the_masked_command(
    client: pymongo.MongoClient,
    receiver: OtlpReceiver,  # type: ignore[type-arg]
) -> None:
    users = client.shop.users
    with tracing().tracer.start_as_current_span("signup"):
        users.insert_one({"name": "Ada", "password": "hunter2", "plan": "pro"})
        found = users.find_one({"name": "Ada"})
    assert found is not None and found["password"] == "hunter2"  # the app sees real data

    spans = receiver.wait_for_spans(3)
    insert = one(spans, "shop.insert")
    find = one(spans, "shop.find")
    signup = one(spans, "signup")
    assert insert.kind == "CLIENT" and find.kind == "CLIENT"
    assert insert.attributes["db.system"] == "mongodb"
    assert insert.attributes["db.name"] == "shop"
    assert insert.attributes["db.mongodb.collection"] == "users"
    assert insert.attributes["net.peer.name"] == "127.0.0.1"
    assert {insert.parent_span_id, find.parent_span_id} == {signup.span_id}

    assert insert.attributes["db.statement"] == "insert"  # upstream: the command name
    statement = json.loads(insert.attributes["db.request.body"])
    assert statement["insert"] == "users"
    assert statement["documents"][0]["name"] == "Ada"
    assert statement["documents"][0]["password"] == "****"
    assert "lsid" not in statement
    assert json.loads(find.attributes["db.request.body"])["filter"] == {"name": "Ada"}
    reply = json.loads(find.attributes["db.response.body"])
    assert reply["cursor"]["firstBatch"][0]["password"] == "****"
    assert "hunter2" not in json.dumps([s.attributes for s in spans])


def test_a_failed_command_is_an_error_span_and_still_raises(
    client: pymongo.MongoClient,
    receiver: OtlpReceiver,  # type: ignore[type-arg]
) -> None:
    with pytest.raises(OperationFailure, match="no such command"):
        client.shop.command("frobnicate", 1)
    span = receiver.wait_for_spans(1, where=lambda s: s.name == "shop.frobnicate")[0]
    assert span.status == "ERROR"
    assert json.loads(span.attributes["db.response.body"])["codeName"] == "CommandNotFound"


def test_huge_commands_are_truncated(
    client: pymongo.MongoClient,
    receiver: OtlpReceiver,  # type: ignore[type-arg]
) -> None:
    client.shop.logs.insert_one({"line": "y" * 20_000})
    span = receiver.wait_for_spans(1, where=lambda s: s.name == "shop.insert")[0]
    assert len(span.attributes["db.request.body"]) == 2048
    assert span.attributes["db.request.body"].startswith('{"insert": "logs"')


def test_a_failing_capture_drops_only_that_attribute(
    client: pymongo.MongoClient,  # type: ignore[type-arg]
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> str:
        raise RuntimeError("capture bug")

    monkeypatch.setattr(pymongo_instrumentation, "document_text", broken)
    result = client.shop.orders.insert_one({"sku": "A-1"})
    assert client.shop.orders.find_one({"_id": result.inserted_id})["sku"] == "A-1"

    spans = receiver.wait_for_spans(2, where=lambda s: s.name.startswith("shop."))
    insert = one(spans, "shop.insert")
    assert insert.attributes["db.statement"] == "insert"  # upstream's bare command name
    assert "db.request.body" not in insert.attributes
    assert "db.response.body" not in insert.attributes


def test_big_batches_are_trimmed_before_serialising_with_the_same_result() -> None:
    from bson import json_util

    reply = {
        "cursor": {
            "firstBatch": [{"i": i, "password": "p", "note": "n" * 50} for i in range(5000)],
            "id": 0,
            "ns": "shop.users",
        },
        "ok": 1.0,
        "big": "z" * 100_000,
    }
    full = CONFIG.masking.apply(
        Site.DB,
        reply,
        encode=lambda doc: json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS),
    )
    text = pymongo_instrumentation.document_text(reply, CONFIG)
    assert text == full[: CONFIG.attribute_length_limit]
    assert '"password": "****"' in text and '"p"' not in text
