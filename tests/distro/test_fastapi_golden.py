"""Golden test: our lean FastAPI server spans against opentelemetry-instrumentation-fastapi.

The same requests (a real uvicorn server, a real HTTP client) go once through the
distro's lean ASGI server-span path and once through contrib's `OpenTelemetryMiddleware`
plus the distro's payload capture middleware; span names, kinds, attributes (payloads
included), events, status, parentage and instrumentation scope must be identical. Runs
in this repo's environment (the newest FastAPI) and in app venvs of the oldest and
newest tested FastAPI rows.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.helpers.app_venv import app_venv
from tests.helpers.distro_apps import free_port
from tests.helpers.versions import rows
from tests.helpers.web_apps import MASKED, run_golden


def _run(python: str, mode: str, port: int) -> dict[str, Any]:
    return run_golden(
        python,
        "fastapi_golden.py",
        mode,
        str(port),
        OTEL_PYTHON_FASTAPI_EXCLUDED_URLS="healthz",
        PYTHONHASHSEED="0",
        # a response-header site setting: each path must mask response headers by it
        LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS='["content-type"]',
    )


def _compare(python: str) -> None:
    port = free_port()
    lean, contrib = _run(python, "lean", port), _run(python, "contrib", port)
    assert (lean["lean"], contrib["lean"]) == (True, False)  # each path was the one used
    assert lean["responses"] == contrib["responses"]
    assert [s["name"] for s in lean["spans"]] == [s["name"] for s in contrib["spans"]]
    for ours, reference in zip(lean["spans"], contrib["spans"]):
        assert ours == reference
    spans = {(s["name"], s["kind"]): s for s in lean["spans"]}
    # what the comparison covered: propagation, exclusion, nesting, mounting, errors,
    # payloads, suppression, a websocket scope (traced by contrib's middleware either way)
    assert len(lean["spans"]) == 22  # 20 requests - /healthz + 2 INTERNAL + 1 websocket
    propagated = [s for s in lean["spans"] if s["parent"] and s["parent"].startswith("remote:")]
    assert [s["parent"] for s in propagated] == [
        "remote:0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:True"
    ]
    assert [s["parent"] for s in lean["spans"] if s["name"] == "GET /inner"] == ["span:GET /nested"]
    assert spans[("GET /leaf/{name}", "INTERNAL")]["parent"] == "span:GET /sub"
    failed = spans[("GET /fail", "SERVER")]
    assert failed["status"][0] == "ERROR"
    assert [e[0] for e in failed["events"]] == ["exception"]
    assert failed["attributes"]["http.status_code"] == 500
    assert spans[("GET /unavailable", "SERVER")]["status"] == ["ERROR", None]
    # the app's 500 handler fails: Starlette still answers (contrib's bare error wrapper,
    # whose place the lean path takes), on a connection kept open, not the server
    handler_failed = next(r for r in lean["responses"] if r[0] == "/handler-fails")
    assert handler_failed[1:3] == [500, "Internal Server Error"]
    assert ("connection", "close") not in [tuple(h) for h in handler_failed[3]]
    assert spans[("GET /handler-fails", "SERVER")]["status"][0] == "ERROR"
    hello = next(s for s in lean["spans"] if s["name"] == "GET /hello" and not s["parent"])
    assert hello["attributes"]["http.url"].endswith(f"/hello?password={MASKED}&q=1")
    assert json.loads(hello["attributes"]["http.request.headers"])["x-api-key"] == MASKED
    assert json.loads(hello["attributes"]["http.response.headers"])["content-type"] == MASKED
    logins = [s["attributes"] for s in lean["spans"] if s["name"] == "POST /login"]
    assert [json.loads(a["http.request.body"]).get("password") for a in logins] == [
        MASKED,
        MASKED,
        None,
        None,
    ]
    assert [json.loads(a["http.response.body"])["user"] for a in logins] == [
        "ann",
        "ann",
        "bob",
        "bob",
    ]
    hellos = [s for s in lean["spans"] if "/hello?" in s["attributes"].get("http.url", "")]
    assert len(hellos) == 2
    assert hellos[0]["attributes"] == hellos[1]["attributes"]
    assert spans[("GET /stream", "SERVER")]["attributes"]["http.response.body"] == (
        "chunk-0;chunk-1;chunk-2;"
    )
    suppressed = spans[("GET /suppressed", "SERVER")]["attributes"]
    assert "inner.local" not in suppressed["http.request.headers"]
    assert lean["responses"][-1] == ["websocket", ["websocket.close"]]
    assert (lean["spans"][-1]["kind"], lean["spans"][-1]["attributes"]["http.scheme"]) == (
        "SERVER",
        "ws",
    )


def test_lean_fastapi_spans_equal_contrib_here() -> None:
    _compare(sys.executable)


@pytest.mark.slow
@pytest.mark.parametrize("row", rows("fastapi"), ids=lambda row: row[0])
def test_lean_fastapi_spans_equal_contrib_across_versions(row: tuple[str, list[str]]) -> None:
    _label, requirements = row
    venv = app_venv(list(requirements))
    _compare(str(venv / "bin" / "python"))
