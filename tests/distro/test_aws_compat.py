"""botocore spans as upstream sends them (aws.service, aws.region, http.method,
http.url, aws.resource.name, messageId, the API parameters as http.request.body) next to
the OTel names we send, and empty SQS polls filtered (LUMIGO_AUTO_FILTER_EMPTY_SQS):
boto3 against moto in server mode, checked at the OTLP receiver and in the span dump."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.distro.compat_apps import dumped_spans
from tests.helpers.distro_apps import last_json, run_app, traced_env
from tests.helpers.moto_server import MotoServer, moto_server  # noqa: F401  (fixture)


def run_aws(receiver: OtlpReceiver, moto: MotoServer, **env: str) -> dict[str, Any]:
    result = run_app("compat_aws.py", traced_env(receiver, **moto.env(), **env), None)
    assert result.returncode == 0, result.stderr
    return last_json(result.stdout)


def spans_named(receiver: OtlpReceiver, name: str, count: int = 1) -> list[ReceivedSpan]:
    return receiver.wait_for_spans(count, where=lambda s: s.name == name)


def test_aws_spans_carry_upstreams_attributes_and_the_otel_ones(
    otlp_receiver: OtlpReceiver,
    moto_server: MotoServer,  # noqa: F811
) -> None:
    out = run_aws(otlp_receiver, moto_server)
    (send,) = spans_named(otlp_receiver, "SQS.SendMessage")
    attrs = send.attributes
    # upstream's names
    assert attrs["aws.service"] == "sqs"
    assert attrs["aws.region"] == attrs["region"] == "us-east-1"
    assert attrs["http.method"] == "SendMessage"
    assert attrs["http.url"] == "https://sqs.us-east-1.amazonaws.com"
    assert attrs["aws.resource.name"] == out["busy"].rsplit("/", 1)[-1]
    assert attrs["messageId"] == out["sent_id"]
    # upstream's body for SQS: the message body, masked
    assert json.loads(attrs["http.request.body"]) == {"order": 7, "password": "****"}
    # and the OpenTelemetry names stay
    assert attrs["rpc.service"] == "SQS" and attrs["rpc.method"] == "SendMessage"
    assert attrs["cloud.region"] == "us-east-1"

    (put,) = spans_named(otlp_receiver, "DynamoDB.PutItem")
    assert put.attributes["aws.service"] == "dynamodb"
    assert put.attributes["aws.resource.name"] == out["table"]
    assert put.attributes["aws.dynamodb.method"] == "PutItem"
    body = json.loads(put.attributes["http.request.body"])
    assert body["TableName"] == out["table"]
    assert body["Item"]["password"] == "****"
    assert put.attributes["messageId"]  # the request id when AWS returns no message id

    (receive,) = spans_named(otlp_receiver, "SQS.ReceiveMessage")
    assert receive.attributes["messageId"] == out["received_ids"][0]
    # (the received message's JSON *text* inside the response body is the masking
    # helper's business: masking.py works on keys, not on JSON nested in strings)
    requests_sent = [s.attributes.get("http.request.body", "") for s in otlp_receiver.spans()]
    assert "hunter2" not in json.dumps(requests_sent)


@pytest.mark.parametrize("setting", [None, "true"])
def test_empty_sqs_polls_are_not_exported_by_default(
    setting: str | None,
    otlp_receiver: OtlpReceiver,
    moto_server: MotoServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    dump = tmp_path / "spans.jsonl"
    env = {"LUMIGO_DEBUG_SPANDUMP": str(dump)}
    if setting is not None:
        env["LUMIGO_AUTO_FILTER_EMPTY_SQS"] = setting
    out = run_aws(otlp_receiver, moto_server, **env)
    assert out["received_ids"] and not out["empty_has_messages"]

    # the app exited: every span it exported is here; only the poll that got a message
    (receive,) = spans_named(otlp_receiver, "SQS.ReceiveMessage")
    assert receive.attributes["aws.resource.name"] == out["busy"].rsplit("/", 1)[-1]
    assert len([s for s in otlp_receiver.spans() if s.name == "SQS.ReceiveMessage"]) == 1
    dumped = [s for s in dumped_spans(dump) if s["name"] == "SQS.ReceiveMessage"]
    assert len(dumped) == 1


def test_empty_sqs_polls_are_exported_when_the_filter_is_off(
    otlp_receiver: OtlpReceiver,
    moto_server: MotoServer,  # noqa: F811
) -> None:
    out = run_aws(otlp_receiver, moto_server, LUMIGO_AUTO_FILTER_EMPTY_SQS="false")
    polls = spans_named(otlp_receiver, "SQS.ReceiveMessage", 2)
    names = sorted(s.attributes["aws.resource.name"] for s in polls)
    assert names == sorted(u.rsplit("/", 1)[-1] for u in (out["busy"], out["idle"]))


def test_a_client_filter_on_the_aws_url_drops_those_calls(
    otlp_receiver: OtlpReceiver,
    moto_server: MotoServer,  # noqa: F811
) -> None:
    run_aws(
        otlp_receiver,
        moto_server,
        LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_CLIENT=r'["dynamodb\\.us-east-1"]',
    )
    spans_named(otlp_receiver, "SQS.SendMessage")
    names = {s.name for s in otlp_receiver.spans()}
    assert "SQS.CreateQueue" in names
    assert not any(name.startswith("DynamoDB.") for name in names)
