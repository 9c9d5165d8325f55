"""botocore inside a Flask request: an unmodified service, env-injected, real WSGI server.

The AWS calls a request handler makes are children of its SERVER span, which continues
the caller's `traceparent`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.app_venv import app_venv, run_app
from tests.helpers.app_venv import request as http_request
from tests.helpers.data_apps import APPS
from tests.helpers.moto_server import MotoServer, moto_server
from tests.helpers.versions import rows

__all__ = ["moto_server"]

pytestmark = pytest.mark.slow

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def test_aws_calls_in_a_flask_request_are_children_of_the_server_span(
    moto_server: MotoServer, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    requirements = [*rows("flask", ("newest",))[0][1], *rows("botocore", ("newest",))[0][1]]
    venv = app_venv(requirements)
    argv = ["python", str(APPS / "flask_aws_app.py"), "{port}"]
    with run_app(
        venv,
        argv,
        receiver_url=otlp_receiver.url,
        log_dir=tmp_path,
        env=moto_server.env(),
        service_name="orders",
    ) as app:
        response = http_request(
            app,
            "POST",
            "/orders/o-42",
            content=json.dumps({"sku": "A-1", "password": "hunter2"}),
            headers={
                "content-type": "application/json",
                "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
            },
        )
        assert response.status_code == 200, app.output()
        assert response.json()["order"] == "o-42"
        spans = otlp_receiver.wait_for_spans(5, where=lambda s: s.trace_id == TRACE_ID, timeout=30)

    server = [s for s in spans if s.kind == "SERVER"]
    assert len(server) == 1
    assert server[0].parent_span_id == CALLER_SPAN
    aws = {s.name: s for s in spans if s.kind == "CLIENT"}
    assert set(aws) == {"S3.CreateBucket", "SQS.CreateQueue", "S3.PutObject", "SQS.SendMessage"}
    assert {s.parent_span_id for s in aws.values()} == {server[0].span_id}
    put = aws["S3.PutObject"]
    assert json.loads(put.attributes["http.request.body"])["password"] == "****"
    assert aws["SQS.SendMessage"].service == "orders"
