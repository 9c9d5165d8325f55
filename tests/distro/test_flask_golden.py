"""Golden test: our lean Flask server spans against opentelemetry-instrumentation-flask.

The same requests (a real werkzeug server, a real HTTP client) go once through the
distro's lean server-span path and once through its contrib-instrumentor path; span
names, kinds, attributes (payload capture included), events, status, parentage and
instrumentation scope must be identical. Runs in this repo's environment (the newest
Flask) and in app venvs of the oldest and newest tested Flask rows.
"""

from __future__ import annotations

import json
import os
import subprocess
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
        "flask_golden.py",
        mode,
        str(port),
        OTEL_PYTHON_FLASK_EXCLUDED_URLS="healthz",
        PYTHONHASHSEED="0",  # e.g. the order of an `Allow` header's methods
        # a response-header site setting: each path must mask response headers by it
        LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS='["content-type"]',
    )


def _compare(python: str) -> None:
    port = free_port()
    lean, contrib = _run(python, "lean", port), _run(python, "contrib", port)
    assert lean["responses"] == contrib["responses"]
    assert [s["name"] for s in lean["spans"]] == [s["name"] for s in contrib["spans"]]
    for ours, reference in zip(lean["spans"], contrib["spans"]):
        assert ours == reference
    spans = {(s["name"], s["kind"]): s for s in lean["spans"]}
    # what the comparison covered: propagation, exclusion, nesting, errors, payloads
    assert len(lean["spans"]) == 13  # 12 requests, /healthz excluded, 2 nested spans
    propagated = [s for s in lean["spans"] if s["parent"] and s["parent"].startswith("remote:")]
    assert [s["parent"] for s in propagated] == [
        "remote:0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:True"
    ]
    # an app called inside a request: an INTERNAL child (instrumentation suppression
    # does not stop it, with the contrib instrumentor either)
    assert [s["parent"] for s in lean["spans"] if s["name"] == "GET /inner"] == [
        "span:GET /nested",
        "span:GET /suppressed",
    ]
    assert {s["kind"] for s in lean["spans"] if s["name"] == "GET /inner"} == {"INTERNAL"}
    failed = spans[("GET /fail", "SERVER")]
    assert failed["status"] == ["ERROR", "ValueError: boom"]
    assert [e[0] for e in failed["events"]] == ["exception"]
    assert spans[("GET /unavailable", "SERVER")]["status"] == ["ERROR", None]
    hello = next(s for s in lean["spans"] if s["name"] == "GET /hello" and not s["parent"])
    assert hello["attributes"]["http.target"] == f"/hello?password={MASKED}&q=1"
    assert json.loads(hello["attributes"]["http.request.headers"])["x-api-key"] == MASKED
    response_headers = json.loads(hello["attributes"]["http.response.headers"])
    assert response_headers["content-type"] == MASKED
    assert "http.response.body" not in spans[("GET /stream", "SERVER")]["attributes"]


def test_lean_flask_spans_equal_contrib_here() -> None:
    _compare(sys.executable)


@pytest.mark.slow
@pytest.mark.parametrize("row", rows("flask"), ids=lambda row: row[0])
def test_lean_flask_spans_equal_contrib_across_versions(row: tuple[str, list[str]]) -> None:
    _label, requirements = row
    venv = app_venv(list(requirements))
    _compare(str(venv / "bin" / "python"))


def test_semconv_opt_in_uses_the_contrib_instrumentor() -> None:
    """The lean path reads OTEL_SEMCONV_STABILITY_OPT_IN itself: it must take the
    default path exactly when contrib's own reading gives the default HTTP mode."""
    code = (
        "from lumigo_opentelemetry.instrumentations.flask import lean_path_applies;"
        "from opentelemetry.instrumentation._semconv import ("
        "_OpenTelemetrySemanticConventionStability as S, _OpenTelemetryStabilitySignalType as T,"
        " _StabilityMode as M);"
        "S._initialize();"
        "mode = S._get_opentelemetry_stability_opt_in_mode(T.HTTP);"
        "print(lean_path_applies(), mode is M.DEFAULT)"
    )
    values = {
        "": "True",
        "http": "False",
        "http/dup": "False",
        " http/dup , database": "False",
        "database,http": "False",
        "database": "True",
        "gen_ai_latest_experimental": "True",
        "http/foo,HTTP": "True",
        ",": "True",
    }
    for value, expected in values.items():
        env = {**os.environ, "LUMIGO_SWITCH_OFF": "true", "OTEL_SEMCONV_STABILITY_OPT_IN": value}
        env.pop("AUTOWRAPT_BOOTSTRAP", None)
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == [expected, expected], (value, done.stderr)


def test_request_attribute_memo_gives_fresh_copies_and_follows_the_environ() -> None:
    from opentelemetry.instrumentation.wsgi import collect_request_attributes

    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import payloads
    from lumigo_opentelemetry.instrumentations._wsgi_request import memoized as memoized_

    config = Config()

    def mask(attributes: dict[str, Any]) -> dict[str, Any]:
        masked = dict(attributes)
        masked.update(payloads.masked_url_attributes(masked, config))
        return masked

    memoized = memoized_(collect_request_attributes, mask)

    def collect(environ: dict[str, Any]) -> dict[str, Any]:
        return memoized(environ, False)[0]

    environ = {
        "REQUEST_METHOD": "GET",
        "SERVER_NAME": "h",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "PATH_INFO": "/a",
        "QUERY_STRING": "x=1",
        "REMOTE_ADDR": "10.0.0.1",
        "REMOTE_PORT": "5000",
        "HTTP_USER_AGENT": "ua",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    first = collect(dict(environ))
    assert first == collect_request_attributes(environ)
    first["http.route"] = "/changed"  # the caller's copy, not the memo's
    assert collect(dict(environ)) == collect_request_attributes(environ)
    other = {**environ, "PATH_INFO": "/b", "REMOTE_PORT": "5001"}
    assert collect(other) == collect_request_attributes(other)
    assert collect(other)["http.url"].endswith("/b?x=1")
    # a server span's copy: URL secrets masked, the memo's own copy untouched
    secret = {**environ, "QUERY_STRING": "password=hunter2"}
    for _ in range(2):
        masked = memoized(dict(secret), True)[0]
        assert masked == mask(collect_request_attributes(secret))
        assert "hunter2" not in repr(masked) and masked["http.url"].endswith("password=****")
        masked["http.url"] = "changed"
    assert collect(secret)["http.url"].endswith("password=hunter2")
