"""The masking settings on a real Flask app under gunicorn (threads), spans at OTLP:
per-site overrides replace the general rules at their site only, `all` masks every
value, and a catastrophic user pattern costs one attribute, never the request."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.helpers.app_venv import AppProcess, app_venv, run_app
from tests.helpers.versions import rows
from tests.helpers.web_apps import MASKED, WEB, call

pytestmark = pytest.mark.slow

EVIL_HEADER = "a" * 64 + "!"  # exponential for (a|aa)+$ with a backtracking engine
SETTINGS = {
    "LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS": '["(a|aa)+$"]',
    "LUMIGO_SECRET_MASKING_REGEX_HTTP_QUERY_PARAMS": '["q"]',
    "LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_BODIES": '["user"]',
    "LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT": "all",
    "APP_CALL_PASSWORD": "unused",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def app(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    # the `regex` extra (`lumigo_opentelemetry[regex]`) gives user patterns their time bound
    venv = app_venv([*rows("flask", which=("newest",))[0][1], "gunicorn>=22", "regex>=2022.1.18"])
    argv = ["gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "--threads", "8", "--chdir", str(WEB)]
    logs = tmp_path_factory.mktemp("masking-settings")
    with run_app(
        venv, [*argv, "masking_flask:app"], receiver_url=receiver.url, log_dir=logs, env=SETTINGS
    ) as process:
        yield process


def echo(app: AppProcess, receiver: OtlpReceiver, headers: dict[str, str]) -> ReceivedSpan:
    """POST /echo; its server span is found by an `id` query parameter (the request
    headers, where `call` puts the test id, may be masked as a whole here)."""
    body = {"user": "ann", "token": "body-token-kept"}
    query_id = uuid.uuid4().hex
    path = f"/echo?q=1&token=query-token-kept&id={query_id}"
    _test_id, resp = call(app, "POST", path, headers=headers, json=body)
    assert resp.status_code == 200 and resp.json()["echo"] == body

    def mine(span: ReceivedSpan) -> bool:
        return span.kind == "SERVER" and any(query_id in str(v) for v in span.attributes.values())

    spans = receiver.wait_for_spans(1, where=mine)
    assert len(spans) == 1
    return spans[0]


def test_per_site_settings_replace_the_general_rules_at_their_site(
    app: AppProcess, receiver: OtlpReceiver
) -> None:
    span = echo(app, receiver, {"X-Auth-Token": "header-token"})
    attributes = span.attributes
    # query: only `q` (the override), not the default `.*token.*`
    urls = [v for k, v in attributes.items() if k.startswith(("http.", "url.")) and "q=" in str(v)]
    assert urls and all(f"q={MASKED}&token=query-token-kept" in url for url in urls)
    # request body: only `user`
    assert json.loads(attributes["http.request.body"]) == {
        "user": MASKED,
        "token": "body-token-kept",
    }
    # response body and headers: the general (default) rules
    response_body = json.loads(attributes["http.response.body"])
    assert response_body["access_token"] == MASKED and response_body["echo"]["token"] == MASKED
    assert json.loads(attributes["http.response.headers"])["x-auth-token"] == MASKED
    # request headers: the override cannot unmask credential headers
    assert json.loads(attributes["http.request.headers"])["x-auth-token"] == MASKED
    # environment: `all`
    environ = json.loads(span.resource["process.environ"])
    assert environ and set(environ.values()) == {MASKED}


def test_a_catastrophic_pattern_costs_the_attribute_not_the_request(
    app: AppProcess, receiver: OtlpReceiver
) -> None:
    evil = {EVIL_HEADER: "x"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        # evil and ordinary requests at once: every one is answered (echo checks the body)
        futures = [pool.submit(echo, app, receiver, evil if i % 2 else {}) for i in range(6)]
        spans = [future.result(timeout=120) for future in futures]
    for i, span in enumerate(spans):
        headers = span.attributes["http.request.headers"]
        if i % 2:
            assert headers == MASKED  # failed closed: the whole attribute
        else:
            assert "x-test-id" in json.loads(headers)
        # the other attributes of the same span are rendered as usual
        assert json.loads(span.attributes["http.request.body"])["user"] == MASKED
        assert json.loads(span.attributes["http.response.headers"])["x-auth-token"] == MASKED
