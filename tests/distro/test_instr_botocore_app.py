"""botocore end to end: an unmodified boto3 app in its own venv, injected by env only.

Runs for the oldest and newest boto3 of the version matrix, against moto in server mode;
spans are checked at the OTLP receiver.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.helpers.data_apps import run_data_app, venv_for, venv_params
from tests.helpers.moto_server import MotoServer, moto_server
from tests.helpers.versions import rows

__all__ = ["moto_server"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=venv_params("botocore"))
def venv(request: pytest.FixtureRequest) -> Path:
    return venv_for(request.param)


def _by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def test_aws_app_is_traced_with_payloads_and_the_sqs_scope(
    venv: Path, moto_server: MotoServer, otlp_receiver: OtlpReceiver
) -> None:
    run = run_data_app(venv, "aws_app.py", otlp_receiver.url, "aws-app", moto_server.env())
    out = run.output
    # the app's own results are untouched
    assert out["downloaded"] == "payload from the app"
    assert out["item"]["password"] == {"S": "hunter2"}
    assert out["handled"] == ["job-1", "job-2"]
    assert out["messages"] == 2 and out["first"] in ("job-1", "job-2")
    assert out["listed"] == 3

    # lazy: nothing of boto3 or its instrumentation before the app imported it
    assert out["lazy"]["before_import"] == {"distro_active": True, "loaded": []}
    after = out["lazy"]["after_import"]["loaded"]
    assert "botocore" in after and "lumigo_opentelemetry.instrumentations.botocore" in after

    spans = otlp_receiver.wait_for_spans(13)
    assert {s.kind for s in spans} == {"CLIENT"}
    assert {s.service for s in spans} == {"aws-app"}
    assert len(_by_name(spans, "S3.PutObject")) == 3

    receive = _by_name(spans, "SQS.ReceiveMessage")[0]
    in_loop = [s for s in spans if s.parent_span_id == receive.span_id]
    assert [s.name for s in in_loop] == ["S3.PutObject", "S3.PutObject"]
    assert {s.trace_id for s in in_loop} == {receive.trace_id}
    outside = [s for s in spans if s not in in_loop]
    assert all(s.parent_span_id == "" for s in outside), "context leaked out of the loop"
    listed = _by_name(spans, "S3.ListObjectsV2")[0]
    assert listed.trace_id != receive.trace_id

    put_item = _by_name(spans, "DynamoDB.PutItem")[0]
    body = json.loads(put_item.attributes["http.request.body"])
    assert body["Item"]["password"] == "****" and body["Item"]["name"] == {"S": "Ada"}
    get_item = _by_name(spans, "DynamoDB.GetItem")[0]
    assert json.loads(get_item.attributes["http.response.body"])["Item"]["password"] == "****"
    headers = json.loads(put_item.attributes["http.request.headers"])
    assert headers["authorization"] == "****"
    assert headers["x-amz-security-token"] == "****"
    assert "hunter2" not in json.dumps([s.attributes for s in spans])

    send = _by_name(spans, "SQS.SendMessage")[0]
    assert "job-" in send.attributes["http.request.body"]
    assert send.attributes["rpc.service"] == "SQS"
    get_object = _by_name(spans, "S3.GetObject")[0]
    assert "http.response.body" not in get_object.attributes  # streamed: left to the app
    assert "http.response.headers" in get_object.attributes


def test_disabled_botocore_instrumentation_leaves_the_app_alone(
    moto_server: MotoServer, otlp_receiver: OtlpReceiver
) -> None:
    venv = venv_for(rows("botocore", ("newest",))[0][1])
    env = {**moto_server.env(), "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "botocore"}
    run = run_data_app(venv, "aws_app.py", otlp_receiver.url, "aws-app", env)
    assert run.output["handled"] == ["job-1", "job-2"]
    assert (
        "lumigo_opentelemetry.instrumentations.botocore"
        not in (run.output["lazy"]["after_import"]["loaded"])
    )
    assert [s for s in otlp_receiver.spans() if s.name.startswith(("S3.", "SQS."))] == []
