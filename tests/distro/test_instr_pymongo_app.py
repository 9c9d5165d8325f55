"""pymongo end to end: an unmodified app in its own venv (pymongo 3.12 and 4.x), env-injected,
talking over a real socket to the wire-protocol server; spans checked at the OTLP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.data_apps import run_data_app, venv_for, venv_params
from tests.helpers.mongo_server import MongoWireServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mongo() -> Iterator[MongoWireServer]:
    with MongoWireServer() as server:
        yield server


@pytest.fixture(scope="module", params=venv_params("pymongo"))
def venv(request: pytest.FixtureRequest) -> Path:
    return venv_for(request.param)


def test_mongo_app_is_traced_with_masked_commands(
    venv: Path, mongo: MongoWireServer, otlp_receiver: OtlpReceiver
) -> None:
    run = run_data_app(
        venv, "mongo_app.py", otlp_receiver.url, "mongo-app", {"MONGO_URI": mongo.uri}
    )
    out = run.output
    assert out["found"] == {"name": "Ada", "password": "hunter2"}  # the app's data, intact
    assert out["lazy"]["before_import"] == {"distro_active": True, "loaded": []}
    after = out["lazy"]["after_import"]["loaded"]
    assert "pymongo" in after and "lumigo_opentelemetry.instrumentations.pymongo" in after

    spans = otlp_receiver.wait_for_spans(2, where=lambda s: s.name.startswith("shop."))
    by_name = {s.name: s for s in spans}
    insert, find = by_name["shop.insert"], by_name["shop.find"]
    for span in (insert, find):
        assert span.kind == "CLIENT"
        assert span.service == "mongo-app"
        assert span.attributes["db.system"] == "mongodb"
        assert span.attributes["db.name"] == "shop"
        assert span.attributes["net.peer.port"] == mongo.port
    assert insert.attributes["db.statement"] == "insert"  # upstream: the command name
    statement = json.loads(insert.attributes["db.request.body"])
    assert statement["insert"] == "users"
    assert statement["documents"][0]["password"] == "****"
    assert statement["documents"][0]["plan"] == "pro"
    assert json.loads(find.attributes["db.request.body"])["filter"] == {"name": "Ada"}
    assert "hunter2" not in json.dumps([s.attributes for s in otlp_receiver.spans()])
