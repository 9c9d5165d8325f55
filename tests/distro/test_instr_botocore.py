"""botocore instrumentation in-process: boto3 against moto in server mode, spans at OTLP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations import botocore as botocore_instrumentation
from lumigo_opentelemetry.instrumentations import payloads
from tests.helpers.data_tracing import CONFIG, instrumented, one, receiver, tracing
from tests.helpers.moto_server import MotoServer, moto_server

__all__ = ["moto_server", "receiver"]


@pytest.fixture(scope="module", autouse=True)
def _botocore() -> Iterator[None]:
    with instrumented("botocore"):
        yield


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_s3_calls_are_client_spans_with_headers_and_streams_left_intact(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    s3 = moto_server.client("s3")
    bucket = _name("bucket")
    with tracing().tracer.start_as_current_span("handler") as parent:
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k.txt", Body=b"hello from the app")
        got = s3.get_object(Bucket=bucket, Key="k.txt")["Body"].read()
    assert got == b"hello from the app"

    spans = receiver.wait_for_spans(4)
    get = one(spans, "S3.GetObject")
    put = one(spans, "S3.PutObject")
    handler = one(spans, "handler")
    assert get.kind == "CLIENT" and put.kind == "CLIENT"
    assert get.attributes["rpc.system"] == "aws-api"
    assert get.attributes["rpc.service"] == "S3"
    assert {get.parent_span_id, put.parent_span_id} == {handler.span_id}
    assert get.trace_id == format(parent.get_span_context().trace_id, "032x")

    assert put.attributes["http.request.body"] == "hello from the app"
    request_headers = json.loads(put.attributes["http.request.headers"])
    assert request_headers["authorization"] == "****"
    assert "testing" not in put.attributes["http.request.headers"]
    assert "etag" in json.loads(put.attributes["http.response.headers"])
    # the streamed download body is not read by the capture: the app got all of it above
    assert "http.response.body" not in get.attributes
    assert "content-length" in json.loads(get.attributes["http.response.headers"])


def test_an_upload_from_a_file_is_not_read_by_the_capture(
    moto_server: MotoServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    s3 = moto_server.client("s3")
    bucket = _name("files")
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "report.csv"
    source.write_bytes(b"id,total\n1,42\n" * 1000)
    with source.open("rb") as stream:
        s3.put_object(Bucket=bucket, Key="report.csv", Body=stream)
    assert s3.get_object(Bucket=bucket, Key="report.csv")["Body"].read() == source.read_bytes()

    put = receiver.wait_for_spans(1, where=lambda s: s.name == "S3.PutObject")[0]
    # upstream's body: the API parameters, the stream named, never read ("Key" matches the
    # default masking rule ".*key.*", as it does upstream)
    assert json.loads(put.attributes["http.request.body"]) == {
        "Bucket": bucket,
        "Key": "****",
        "Body": "<stream>",
    }
    assert json.loads(put.attributes["http.request.headers"])["content-length"] == str(
        source.stat().st_size
    )


def test_a_binary_upload_is_recorded_as_a_placeholder(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    s3 = moto_server.client("s3")
    bucket = _name("blobs")
    s3.create_bucket(Bucket=bucket)
    blob = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="blob.bin", Body=blob)
    assert s3.get_object(Bucket=bucket, Key="blob.bin")["Body"].read() == blob

    put = receiver.wait_for_spans(1, where=lambda s: s.name == "S3.PutObject")[0]
    assert put.attributes["http.request.body"] == "<binary body: 1024 bytes>"


def test_dynamodb_bodies_are_captured_with_secrets_masked(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    ddb = moto_server.client("dynamodb")
    table = _name("users")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {"id": {"S": "u1"}, "name": {"S": "Ada"}, "password": {"S": "hunter2"}}
    ddb.put_item(TableName=table, Item=item)
    fetched = ddb.get_item(TableName=table, Key={"id": {"S": "u1"}})["Item"]
    assert fetched == item  # the app sees the real data

    spans = receiver.wait_for_spans(1, where=lambda s: s.name == "DynamoDB.GetItem")
    put = one(receiver.spans(), "DynamoDB.PutItem")
    get = spans[0]
    put_body = json.loads(put.attributes["http.request.body"])
    assert put_body["TableName"] == table
    assert put_body["Item"]["name"] == {"S": "Ada"}
    assert put_body["Item"]["password"] == "****"
    got_body = json.loads(get.attributes["http.response.body"])
    assert got_body["Item"]["name"] == {"S": "Ada"}
    assert got_body["Item"]["password"] == "****"
    assert "hunter2" not in json.dumps([s.attributes for s in receiver.spans()])
    assert get.attributes["aws.dynamodb.table_names"] == [table]


def test_failed_call_keeps_the_error_for_the_app_and_the_span(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    s3 = moto_server.client("s3")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=_name("missing"), Key="nope")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"

    span = receiver.wait_for_spans(1, where=lambda s: s.name == "S3.GetObject")[0]
    assert span.status == "ERROR"
    assert span.attributes["http.status_code"] == 404
    assert "http.response.headers" in span.attributes


def test_huge_bodies_are_truncated_to_the_attribute_limit(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    sqs = moto_server.client("sqs")
    url = sqs.create_queue(QueueName=_name("big"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * 50_000)

    span = receiver.wait_for_spans(1, where=lambda s: s.name == "SQS.SendMessage")[0]
    body = span.attributes["http.request.body"]  # upstream's: the message body alone
    assert body == "x" * Config.from_environ({}).attribute_length_limit


def test_a_failing_capture_drops_only_that_attribute(
    moto_server: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError("capture bug")

    monkeypatch.setattr(payloads, "body_attribute", broken)
    sqs = moto_server.client("sqs")
    url = sqs.create_queue(QueueName=_name("guard"))["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="still delivered")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert sent["MessageId"] == got["Messages"][0]["MessageId"]
    assert got["Messages"][0]["Body"] == "still delivered"

    span = receiver.wait_for_spans(1, where=lambda s: s.name == "SQS.SendMessage")[0]
    assert "http.request.body" not in span.attributes
    assert "http.request.headers" in span.attributes
    assert span.status != "ERROR"


def test_custom_masking_rules_apply_to_aws_bodies(
    moto_server: MotoServer, receiver: OtlpReceiver
) -> None:
    custom = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '[".*ssn.*"]'})
    botocore_instrumentation.instrument(custom, tracing().provider)  # refreshes the config
    try:
        ddb = moto_server.client("dynamodb")
        table = _name("people")
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName=table, Item={"id": {"S": "p1"}, "ssn": {"S": "123-45-6789"}})
    finally:
        botocore_instrumentation.instrument(CONFIG, tracing().provider)

    span = receiver.wait_for_spans(1, where=lambda s: s.name == "DynamoDB.PutItem")[0]
    body = json.loads(span.attributes["http.request.body"])
    assert body["Item"]["ssn"] == "****"
    assert body["Item"]["id"] == {"S": "p1"}
