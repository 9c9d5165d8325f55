"""FastAPI under a real uvicorn, injected by environment only; spans checked at the receiver.

Runs against the oldest (no native telemetry) and newest (native telemetry in
`fastapi/telemetry/`) FastAPI rows of tests/helpers/versions.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.helpers import need
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


def uvicorn() -> list[str]:
    where = ["--host", "127.0.0.1", "--port", "{port}", "--app-dir", str(WEB)]
    return ["uvicorn", *where, "fastapi_app:app"]


def venv_for(requirements: list[str]) -> Path:
    return app_venv(list(requirements))


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def second_receiver() -> Iterator[OtlpReceiver]:
    """Where FastAPI's own auto-configured exporter would send spans, if it were on."""
    with OtlpReceiver() as rec:
        yield rec


# FastAPI's native telemetry would add its own exporter to this endpoint
# if the distro did not switch its auto_configure off
def native_export_env(second: OtlpReceiver) -> dict[str, str]:
    return {
        "FASTAPI_OTEL_AUTO_CONFIGURE": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": second.base_url,
    }


@pytest.fixture(scope="module", params=rows("fastapi"), ids=lambda row: row[0])
def fastapi_app(
    request: pytest.FixtureRequest,
    receiver: OtlpReceiver,
    second_receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AppProcess]:
    _label, requirements = request.param
    venv = venv_for(requirements)
    logs = tmp_path_factory.mktemp("fastapi")
    env = native_export_env(second_receiver)
    with run_app(venv, uvicorn(), receiver_url=receiver.url, log_dir=logs, env=env) as app:
        yield app


def spans_of_trace(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan]:
    return [s for s in receiver.spans() if s.trace_id == trace_id]


def test_one_server_span_one_export_path_and_trace_continued(
    fastapi_app: AppProcess, receiver: OtlpReceiver, second_receiver: OtlpReceiver
) -> None:
    header, trace_id, parent_id = traceparent()
    test_id, resp = call(
        fastapi_app, "GET", "/hello?api_key=k-123&q=1", headers={"traceparent": header}
    )
    assert resp.json() == {"hello": "world"}
    span = server_span(receiver, test_id)
    assert span.name == "GET /hello"
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent_id)
    assert status_code(span) == 200
    assert json.loads(span.attributes["http.response.body"]) == {"hello": "world"}
    assert json.loads(span.attributes["http.response.headers"])["content-type"] == (
        "application/json"
    )
    assert "k-123" not in str(span.attributes)
    urls = [v for v in span.attributes.values() if isinstance(v, str) and "/hello?" in v]
    assert urls and all(v.endswith(f"/hello?api_key={MASKED}&q=1") for v in urls)

    # a later request's span arrives after anything else the first one produced
    later_id, _ = call(fastapi_app, "GET", "/sync")
    assert server_span(receiver, later_id).attributes["http.response.body"] == "sync"
    in_trace = spans_of_trace(receiver, trace_id)
    assert [s.kind for s in in_trace] == ["SERVER"], [(s.name, s.scope) for s in in_trace]
    assert in_trace[0].scope == "opentelemetry.instrumentation.fastapi"
    assert second_receiver.spans() == []


def test_json_bodies_masked_and_app_gets_its_body(
    fastapi_app: AppProcess, receiver: OtlpReceiver
) -> None:
    test_id, resp = call(fastapi_app, "POST", "/login", json={"user": "ann", "password": "hunter2"})
    assert resp.json() == {"user": "ann", "token_secret": "s3cr3t-token", "ok": True}
    span = server_span(receiver, test_id)
    assert span.name == "POST /login"
    assert json.loads(span.attributes["http.request.body"]) == {"user": "ann", "password": MASKED}
    assert json.loads(span.attributes["http.response.body"])["token_secret"] == MASKED
    assert "hunter2" not in str(span.attributes) and "s3cr3t" not in str(span.attributes)
    headers = json.loads(span.attributes["http.request.headers"])
    assert headers["x-test-id"] == test_id and headers["content-type"] == "application/json"


def test_chunked_upload_reaches_the_app_whole(
    fastapi_app: AppProcess, receiver: OtlpReceiver
) -> None:
    parts = [f"part-{i:03d};".encode() * 100 for i in range(20)]  # 20 chunks, 18 kB

    def upload() -> Iterator[bytes]:
        yield from parts

    test_id, resp = call(
        fastapi_app, "POST", "/count", content=upload(), headers={"content-type": "text/plain"}
    )
    assert resp.json() == {"bytes": sum(len(p) for p in parts)}
    span = server_span(receiver, test_id)
    assert span.attributes["http.request.body"] == b"".join(parts)[:2048].decode()


def test_huge_binary_and_unread_bodies(fastapi_app: AppProcess, receiver: OtlpReceiver) -> None:
    big = b"0123456789" * 50_000
    test_id, resp = call(
        fastapi_app, "POST", "/echo", content=big, headers={"content-type": "text/plain"}
    )
    assert resp.content == big
    span = server_span(receiver, test_id)
    assert span.attributes["http.request.body"] == big[:2048].decode()
    assert span.attributes["http.response.body"] == big[:2048].decode()

    test_id, resp = call(fastapi_app, "GET", "/binary")
    assert resp.content == bytes(range(256)) * 4
    assert server_span(receiver, test_id).attributes["http.response.body"] == (
        "<binary body: 1024 bytes>"
    )

    test_id, resp = call(fastapi_app, "POST", "/ignore", content=b"never read by the app")
    assert resp.text == "ignored"
    assert "http.request.body" not in server_span(receiver, test_id).attributes


def test_streaming_response_still_streams(fastapi_app: AppProcess, receiver: OtlpReceiver) -> None:
    key = uuid.uuid4().hex
    test_id = uuid.uuid4().hex
    url = f"{fastapi_app.url}/stream/{key}"
    with (
        untraced(),
        httpx.Client(trust_env=False, timeout=30) as client,
        client.stream("GET", url, headers={"x-test-id": test_id}) as resp,
    ):
        chunks = resp.iter_raw()
        first = next(chunks)
        # the app produces its last chunk only after this release, so receiving the
        # first chunk here proves nothing buffered the response
        assert first == b"first;"
        assert http_request(fastapi_app, "POST", f"/release/{key}").status_code == 200
        rest = b"".join(chunks)
    assert rest == b"last;"
    span = server_span(receiver, test_id)
    assert span.attributes["http.response.body"] == "first;last;"


def test_odd_headers_and_errors(fastapi_app: AppProcess, receiver: OtlpReceiver) -> None:
    odd = {"X-Latin": "caf\xe9".encode("latin-1"), "X-Empty": "", "X-Long": "v" * 8000}
    test_id, resp = call(fastapi_app, "GET", "/hello", headers=odd)
    assert resp.json() == {"hello": "world"}
    assert len(server_span(receiver, test_id).attributes["http.request.headers"]) == 2048

    test_id, resp = call(fastapi_app, "GET", "/fail")
    assert resp.status_code == 500
    span = server_span(receiver, test_id)
    assert status_code(span) == 500 and span.status == "ERROR"


def test_capture_fault_drops_only_the_attribute(receiver: OtlpReceiver, tmp_path: Path) -> None:
    venv = venv_for(rows("fastapi", ("newest",))[0][1])
    env = {"LUMIGO_TEST_FAULT": "body", "LUMIGO_DEBUG": "true"}
    with run_app(venv, uvicorn(), receiver_url=receiver.url, log_dir=tmp_path, env=env) as app:
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
    venv = venv_for(rows("fastapi", ("newest",))[0][1])
    env = {"LUMIGO_TEST_FAULT": "all"}
    with run_app(venv, uvicorn(), receiver_url=receiver.url, log_dir=tmp_path, env=env) as app:
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


def test_without_the_distro_instrumentation_native_export_would_double(
    receiver: OtlpReceiver, second_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The control for the one-export-path test: with our FastAPI instrumentation off,
    the newest FastAPI's native telemetry adds its own exporter (the second path)."""
    requirements = rows("fastapi", ("newest",))[0][1]
    venv = venv_for(requirements)
    version = (venv / "lib").glob("python3.*/site-packages/fastapi/telemetry")
    if not any(version):
        need.missing("this FastAPI has no native telemetry")
    env = {**native_export_env(second_receiver), "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "fastapi"}
    with run_app(venv, uvicorn(), receiver_url=receiver.url, log_dir=tmp_path, env=env) as app:
        header, trace_id, _ = traceparent()
        resp = http_request(app, "GET", "/hello", headers={"traceparent": header})
        assert resp.json() == {"hello": "world"}
        native = second_receiver.wait_for_spans(
            1, where=lambda s: s.trace_id == trace_id and s.kind == "SERVER"
        )
    assert native[0].scope == "fastapi"
