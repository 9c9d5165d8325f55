"""Shared pieces of the Flask/FastAPI instrumentation tests: requests tagged with a
test id, finding the server span of one request at the receiver, and running a golden app."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.helpers.app_venv import AppProcess
from tests.helpers.app_venv import request as http_request
from tests.helpers.distro_apps import clean_env

WEB = Path(__file__).resolve().parents[1] / "fixtures" / "apps" / "web"
#: not imported from the distro: importing lumigo_opentelemetry activates it in pytest
MASKED = "****"
PAYLOAD_KEYS = frozenset(
    {"http.request.headers", "http.request.body", "http.response.headers", "http.response.body"}
)


def run_golden(python: str, script: str, *args: str, **env: str) -> dict[str, Any]:
    """Run the golden app `script` (in `WEB`, its working directory) under `python` with
    the distro switched off (the app installs each span path itself) and `env` added;
    its last stdout line, as JSON."""
    done = subprocess.run(
        [python, str(WEB / script), *args],
        env=clean_env(LUMIGO_SWITCH_OFF="true", **env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(WEB),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def call(app: AppProcess, method: str, path: str, **kwargs: Any) -> tuple[str, httpx.Response]:
    """Send one request carrying a unique `x-test-id` header; returns (id, response)."""
    test_id = uuid.uuid4().hex
    headers = {"x-test-id": test_id, **kwargs.pop("headers", {})}
    return test_id, http_request(app, method, path, headers=headers, **kwargs)


def server_span(receiver: OtlpReceiver, test_id: str) -> ReceivedSpan:
    """The one server span whose captured request headers carry `test_id`."""

    def mine(span: ReceivedSpan) -> bool:
        return span.kind == "SERVER" and test_id in span.attributes.get("http.request.headers", "")

    spans = receiver.wait_for_spans(1, where=mine)
    assert len(spans) == 1, spans
    return spans[0]


def status_code(span: ReceivedSpan) -> int:
    attrs = span.attributes
    return int(attrs.get("http.response.status_code", attrs.get("http.status_code", 0)))


def traceparent() -> tuple[str, str, str]:
    """(header value, trace id, parent span id) of a fresh sampled caller context."""
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id
