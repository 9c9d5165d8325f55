"""Golden test: our lean Django server spans against opentelemetry-instrumentation-django.

The same requests (a real wsgiref server, a real HTTP client) go once through the
distro's Django instrumentation as shipped (its lean middleware) and once with contrib's
middleware doing the spans (the distro's hooks adding the payloads); span names, kinds,
attributes (payload capture included), events, status, parentage and instrumentation
scope must be identical. Runs in this repo's environment (the newest Django) and in app
venvs of the oldest and newest tested Django rows.
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

LEAN = "lumigo_opentelemetry.instrumentations._django_server.LeanMiddleware"
CONTRIB = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
ENV = {
    "OTEL_PYTHON_DJANGO_EXCLUDED_URLS": "healthz",
    # a site setting each for response bodies and headers: the Django payloads use them
    "LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_BODIES": '["item"]',
    "LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS": '["content-type"]',
}


def _run(python: str, mode: str, port: int) -> dict[str, Any]:
    return run_golden(python, "django_golden.py", mode, str(port), PYTHONHASHSEED="0", **ENV)


def _compare(python: str) -> None:
    port = free_port()
    lean, contrib = _run(python, "lean", port), _run(python, "contrib", port)
    assert lean["middleware"][0] == LEAN and contrib["middleware"][0] == CONTRIB
    assert lean["responses"] == contrib["responses"]
    assert [s["name"] for s in lean["spans"]] == [s["name"] for s in contrib["spans"]]
    for ours, reference in zip(lean["spans"], contrib["spans"]):
        assert ours == reference
    _covered(lean)


def _covered(lean: dict[str, Any]) -> None:
    """What the comparison covered: routes, propagation, exclusion, nesting, errors,
    payloads, a disallowed host, a changed URL conf."""
    spans = {(s["name"], s["kind"]): s for s in lean["spans"]}
    # 17 requests: /healthz excluded, the disallowed host has none, 2 nested spans
    assert len(lean["spans"]) == 17
    assert [r[1] for r in lean["responses"]][-3] == 400
    # the same path under another URL conf (override_settings), then the first again
    assert [s["name"] for s in lean["spans"]][-2:] == ["GET <str:word>", "GET hello"]
    assert {"GET ^reports/(?P<year>[0-9]{4})$", "GET", "HTTP", "DELETE hello"} <= {
        s["name"] for s in lean["spans"]
    }
    propagated = [s for s in lean["spans"] if s["parent"] and s["parent"].startswith("remote:")]
    assert [s["parent"] for s in propagated] == [
        "remote:0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:True"
    ]
    assert [s["parent"] for s in lean["spans"] if s["name"] == "GET inner"] == [
        "span:GET nested",
        "span:GET suppressed",
    ]
    assert {s["kind"] for s in lean["spans"] if s["name"] == "GET inner"} == {"INTERNAL"}
    failed = spans[("GET fail", "SERVER")]
    assert failed["status"] == ["ERROR", "ValueError: boom"]
    assert [e[0] for e in failed["events"]] == ["exception"]
    assert failed["attributes"]["http.status_code"] == 500
    assert spans[("GET unavailable", "SERVER")]["status"] == ["ERROR", None]
    assert "http.route" not in spans[("GET", "SERVER")]["attributes"]
    hello = next(s for s in lean["spans"] if s["name"] == "GET hello" and not s["parent"])
    attributes = hello["attributes"]
    assert attributes["http.route"] == "hello"
    assert attributes["http.url"].endswith(f"/hello?password={MASKED}&q=1")
    assert json.loads(attributes["http.request.headers"])["x-api-key"] == MASKED
    assert json.loads(attributes["http.response.headers"])["content-type"] == MASKED
    item = spans[("GET items/<int:item>", "SERVER")]["attributes"]
    # the response-bodies setting, not the request-bodies one (which masks password)
    assert json.loads(item["http.response.body"]) == {"item": MASKED, "token_secret": "s3cr3t"}
    login = spans[("POST login", "SERVER")]["attributes"]
    assert json.loads(login["http.request.body"]) == {"user": "ann", "password": MASKED}
    assert "http.response.body" not in spans[("GET stream", "SERVER")]["attributes"]


def test_lean_django_spans_equal_contrib_here() -> None:
    _compare(sys.executable)


@pytest.mark.slow
@pytest.mark.parametrize("row", rows("django"), ids=lambda row: row[0])
def test_lean_django_spans_equal_contrib_across_versions(row: tuple[str, list[str]]) -> None:
    _label, requirements = row
    venv = app_venv(list(requirements))
    _compare(str(venv / "bin" / "python"))


def test_request_headers_are_what_django_request_headers_gives() -> None:
    """The lean path reads the request headers from `request.META` itself: the same
    pairs, in the same order, as `dict(request.headers)` (empty values included)."""
    from django.http.request import HttpHeaders

    from lumigo_opentelemetry.instrumentations import payloads

    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/a",
        "SERVER_NAME": "h",
        "HTTP_HOST": "h:80",
        "HTTP_X_API_KEY": "k",
        "wsgi.input": object(),
    }
    metas = [
        base,
        {**base, "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": ""},  # wsgiref's GET
        {**base, "CONTENT_LENGTH": "3", "HTTP_X_EMPTY": ""},
        {"CONTENT_TYPE": "", **base, "SERVER_PORT": "80"},
    ]
    for meta in metas:
        for _ in range(2):  # the first call makes the memo's plan, the second uses it
            pairs = payloads.wsgi_request_headers(meta, keep_empty_content=True)
            expected = [(name.lower(), value) for name, value in HttpHeaders(meta).items()]
            assert pairs == expected, meta
