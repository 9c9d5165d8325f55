"""Flask under a real gunicorn, injected by environment only; spans checked at the receiver.

Runs against the oldest and newest Flask rows of tests/helpers/versions.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.app_venv import AppProcess, app_venv, run_app, untraced
from tests.helpers.app_venv import request as http_request
from tests.helpers.versions import rows
from tests.helpers.web_apps import (
    MASKED,
    PAYLOAD_KEYS,
    WEB,
    call,
    server_span,
    status_code,
    traceparent,
)

pytestmark = pytest.mark.slow


def gunicorn(module: str = "flask_app:app") -> list[str]:
    # one worker with threads (gthread): a streamed response and another request at once
    where = ["-b", "127.0.0.1:{port}", "-w", "1", "--threads", "4", "--chdir", str(WEB)]
    return ["gunicorn", *where, module]


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


@pytest.fixture(scope="module", params=rows("flask"), ids=lambda row: row[0])
def flask_app(
    request: pytest.FixtureRequest, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    _label, requirements = request.param
    venv = app_venv([*requirements, "gunicorn>=22"])
    logs = tmp_path_factory.mktemp("flask")
    with run_app(venv, gunicorn(), receiver_url=receiver.url, log_dir=logs) as app:
        yield app


def test_server_span_with_headers_and_route(flask_app: AppProcess, receiver: OtlpReceiver) -> None:
    test_id, resp = call(
        flask_app, "GET", "/hello?password=hunter2&q=1", headers={"X-Api-Key": "k-123"}
    )
    assert resp.status_code == 200 and resp.text == "hello"
    span = server_span(receiver, test_id)
    assert span.name == "GET /hello"
    assert span.service == "test-app"
    assert status_code(span) == 200
    headers = json.loads(span.attributes["http.request.headers"])
    assert headers["x-test-id"] == test_id
    assert headers["x-api-key"] == MASKED
    assert json.loads(span.attributes["http.response.headers"])["content-type"].startswith(
        "text/html"
    )
    assert span.attributes["http.response.body"] == "hello"
    assert "http.request.body" not in span.attributes
    # secret query parameters are masked in the URL attributes
    assert "hunter2" not in str(span.attributes)
    assert f"/hello?password={MASKED}&q=1" in span.attributes.values()


def test_json_bodies_masked_and_app_gets_its_body(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    test_id, resp = call(flask_app, "POST", "/login", json={"user": "ann", "password": "hunter2"})
    assert resp.json() == {"user": "ann", "token_secret": "s3cr3t-token", "ok": True}
    span = server_span(receiver, test_id)
    assert span.name == "POST /login"
    assert json.loads(span.attributes["http.request.body"]) == {"user": "ann", "password": MASKED}
    response_body = json.loads(span.attributes["http.response.body"])
    assert response_body["token_secret"] == MASKED and response_body["user"] == "ann"
    assert "hunter2" not in str(span.attributes) and "s3cr3t" not in str(span.attributes)


def test_form_bodies_masked(flask_app: AppProcess, receiver: OtlpReceiver) -> None:
    test_id, resp = call(flask_app, "POST", "/form", data={"user": "ann", "password": "hunter2"})
    assert resp.json() == {"fields": ["password", "user"], "user": "ann"}
    body = server_span(receiver, test_id).attributes["http.request.body"]
    assert body == f"user=ann&password={MASKED}"

    test_id, resp = call(
        flask_app, "POST", "/form", data={"user": "bo"}, files={"api_key": ("k.txt", b"K-99")}
    )
    assert resp.json() == {"fields": ["user"], "user": "bo"}
    body = server_span(receiver, test_id).attributes["http.request.body"]
    assert 'name="user"' in body and "K-99" not in body


def test_body_read_as_a_stream_is_recorded_and_intact(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    body = "".join(f"line {i}\n" for i in range(50))
    test_id, resp = call(
        flask_app, "POST", "/count", content=body.encode(), headers={"Content-Type": "text/plain"}
    )
    assert resp.json() == {"lines": 50, "bytes": len(body)}
    span = server_span(receiver, test_id)
    assert span.attributes["http.request.body"] == body


def test_unread_body_is_not_read_by_the_capture(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    test_id, resp = call(flask_app, "POST", "/ignore", content=b"never read by the app")
    assert resp.text == "ignored"
    assert "http.request.body" not in server_span(receiver, test_id).attributes


def test_huge_and_binary_bodies(flask_app: AppProcess, receiver: OtlpReceiver) -> None:
    big = b"0123456789" * 50_000  # 500 kB
    test_id, resp = call(
        flask_app, "POST", "/echo", content=big, headers={"Content-Type": "text/plain"}
    )
    assert resp.content == big
    span = server_span(receiver, test_id)
    assert span.attributes["http.request.body"] == big[:2048].decode()
    assert span.attributes["http.response.body"] == big[:2048].decode()

    test_id, resp = call(flask_app, "GET", "/binary")
    assert resp.content == bytes(range(256)) * 4
    assert server_span(receiver, test_id).attributes["http.response.body"] == (
        "<binary body: 1024 bytes>"
    )

    test_id, resp = call(flask_app, "GET", "/big")
    assert len(resp.text) == 100_000
    assert server_span(receiver, test_id).attributes["http.response.body"] == "x" * 2048


def test_streamed_response_streams_and_is_not_captured(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    test_id, resp = call(flask_app, "GET", "/stream")
    assert resp.text == "chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;"
    span = server_span(receiver, test_id)
    assert "http.response.body" not in span.attributes
    assert status_code(span) == 200


def test_streamed_response_is_not_buffered(flask_app: AppProcess, receiver: OtlpReceiver) -> None:
    key, test_id = uuid.uuid4().hex, uuid.uuid4().hex
    url = f"{flask_app.url}/stream/{key}"
    with (
        untraced(),
        httpx.Client(trust_env=False, timeout=30) as client,
        client.stream("GET", url, headers={"x-test-id": test_id}) as resp,
    ):
        chunks = resp.iter_raw()
        # the app yields its last chunk only after this release: getting the first
        # chunk before it proves nothing held the response back
        assert next(chunks) == b"first;"
        assert http_request(flask_app, "POST", f"/release/{key}").text == "released"
        assert b"".join(chunks) == b"last;"
    assert status_code(server_span(receiver, test_id)) == 200


def test_odd_headers_do_not_break_requests(flask_app: AppProcess, receiver: OtlpReceiver) -> None:
    odd = {
        "X-Latin": "caf\xe9".encode("latin-1"),
        "X-Json": '{"password": "p"}',
        "X-Empty": "",
        "X-Long": "v" * 8000,
    }
    test_id, resp = call(flask_app, "GET", "/headers", headers=odd)
    assert resp.status_code == 200
    assert resp.json()["x-long"] == "v" * 8000
    span = server_span(receiver, test_id)
    assert len(span.attributes["http.request.headers"]) == 2048


def test_error_is_a_server_span_with_status_500(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    test_id, resp = call(flask_app, "GET", "/fail")
    assert resp.status_code == 500
    span = server_span(receiver, test_id)
    assert status_code(span) == 500
    assert span.status == "ERROR"


def test_incoming_traceparent_continues_the_trace(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    header, trace_id, parent_id = traceparent()
    test_id, resp = call(flask_app, "GET", "/hello", headers={"traceparent": header})
    assert resp.status_code == 200
    span = server_span(receiver, test_id)
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent_id)


def test_outgoing_call_in_a_request_carries_the_trace(
    flask_app: AppProcess, receiver: OtlpReceiver
) -> None:
    test_id, resp = call(flask_app, "GET", "/call")
    assert resp.text == "called: hello"
    outer = server_span(receiver, test_id)
    in_trace = receiver.wait_for_spans(3, where=lambda s: s.trace_id == outer.trace_id)
    client = next(s for s in in_trace if s.kind == "CLIENT")
    inner = next(s for s in in_trace if s.kind == "SERVER" and s.span_id != outer.span_id)
    assert client.parent_span_id == outer.span_id
    assert inner.parent_span_id == client.span_id
    assert inner.name == "GET /hello" and inner.attributes["http.response.body"] == "hello"


def test_capture_fault_drops_only_the_attribute(receiver: OtlpReceiver, tmp_path: Path) -> None:
    venv = app_venv([*rows("flask", ("newest",))[0][1], "gunicorn>=22"])
    env = {"LUMIGO_TEST_FAULT": "body", "LUMIGO_DEBUG": "true"}
    with run_app(venv, gunicorn(), receiver_url=receiver.url, log_dir=tmp_path, env=env) as app:
        test_id, resp = call(app, "POST", "/login", json={"user": "bob", "password": "x"})
        assert resp.json()["user"] == "bob"
        span = server_span(receiver, test_id)
        output = app.output()
    assert "http.request.headers" in span.attributes
    assert "http.request.body" not in span.attributes
    assert "http.response.body" not in span.attributes
    assert "capturing http.request.body failed; attribute dropped" in output
    assert "injected capture fault" in output


def test_every_capture_step_failing_leaves_requests_and_spans_intact(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    venv = app_venv([*rows("flask", ("newest",))[0][1], "gunicorn>=22"])
    env = {"LUMIGO_TEST_FAULT": "all"}
    with run_app(venv, gunicorn(), receiver_url=receiver.url, log_dir=tmp_path, env=env) as app:
        header, trace_id, _ = traceparent()
        resp = http_request(
            app,
            "POST",
            "/echo?password=hunter2",
            content=b"x" * 100_000,
            headers={"traceparent": header, "content-type": "text/plain"},
        )
        assert resp.content == b"x" * 100_000
        span = receiver.wait_for_spans(1, where=lambda s: s.trace_id == trace_id)[0]
    assert span.kind == "SERVER" and status_code(span) == 200
    assert not PAYLOAD_KEYS & set(span.attributes)
    # URL masking failed too: the query strings are dropped rather than sent in clear
    assert "hunter2" not in str(span.attributes)


def test_python_39_app_is_traced_with_payloads(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """The distro and its Flask capture keep working on the oldest supported Python."""
    venv = app_venv([*rows("flask", ("newest",))[0][1], "gunicorn>=22"], python="3.9")
    with run_app(venv, gunicorn(), receiver_url=receiver.url, log_dir=tmp_path) as app:
        test_id, resp = call(app, "POST", "/login", json={"user": "old", "password": "p"})
        assert resp.json()["user"] == "old"
        span = server_span(receiver, test_id)
    assert span.resource["process.runtime.version"].startswith("3.9.")
    assert json.loads(span.attributes["http.request.body"]) == {"user": "old", "password": MASKED}
