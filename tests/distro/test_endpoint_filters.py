"""LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX[_SERVER|_CLIENT] and OTEL_TRACES_SAMPLER, as
upstream's README documents them, on real Flask and FastAPI servers and `requests`
calls, checked at the OTLP receiver and in the span dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.distro.compat_apps import GET_HEALTH, GET_HELLO, dumped_spans, run_web


def server_targets(spans: list[ReceivedSpan]) -> list[str]:
    return sorted(str(s.attributes.get("http.target")) for s in spans if s.kind == "SERVER")


def client_urls(spans: list[ReceivedSpan]) -> list[str]:
    return sorted(str(s.attributes.get("http.url")) for s in spans if s.kind == "CLIENT")


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_a_server_filter_drops_the_health_check_only(
    framework: str, otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    dump = tmp_path / "spans.jsonl"
    report = run_web(
        otlp_receiver,
        framework,
        [GET_HEALTH, GET_HELLO, ["GET", "/health?probe=1", None, None]],
        LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_SERVER=r'["\\/health"]',
        LUMIGO_DEBUG_SPANDUMP=str(dump),
    )
    assert [c["body"] for c in report["calls"]] == ["ok", "hello", "ok"]  # the app still answers

    spans = otlp_receiver.wait_for_spans(1, where=lambda s: s.kind == "SERVER")
    assert server_targets(spans) == ["/hello"]
    # the server filter leaves client spans alone: the three calls are all traced
    assert len([s for s in otlp_receiver.spans() if s.kind == "CLIENT"]) == 3
    dumped = [s["attributes"].get("http.target") for s in dumped_spans(dump)]
    assert "/hello" in dumped and "/health" not in dumped


def test_a_client_filter_drops_matching_outgoing_calls_only(
    otlp_receiver: OtlpReceiver,
) -> None:
    report = run_web(
        otlp_receiver,
        "flask",
        [
            ["GET", "/call?url={base}/hello", None, None],
            ["GET", "/call?url={base}/health", None, None],
        ],
        LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_CLIENT=r'["^http:\\/\\/127\\.0\\.0\\.1:\\d+\\/health"]',
    )
    assert [json.loads(c["body"])["status"] for c in report["calls"]] == [200, 200]

    base = f"http://127.0.0.1:{report['port']}"
    spans = otlp_receiver.wait_for_spans(3, where=lambda s: s.kind == "SERVER")
    # the app's outgoing call to /health is not traced, the one to /hello is...
    assert client_urls(otlp_receiver.spans()) == [
        f"{base}/call?url={base}/health",
        f"{base}/call?url={base}/hello",
        f"{base}/hello",
    ]
    # ...and neither is what the dropped call reached: upstream's README says so
    assert server_targets(spans) == [
        f"/call?url={base}/health",
        f"/call?url={base}/hello",
        "/hello",
    ]


def test_the_global_filter_applies_to_server_and_client_spans(
    otlp_receiver: OtlpReceiver,
) -> None:
    run_web(
        otlp_receiver,
        "fastapi",
        [GET_HEALTH, GET_HELLO],
        LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX='["health"]',
    )
    otlp_receiver.wait_for_spans(2)
    spans = otlp_receiver.spans()
    assert server_targets(spans) == ["/hello"]
    assert [url.rsplit("/", 1)[-1] for url in client_urls(spans)] == ["hello"]


def test_a_dropped_server_span_drops_what_runs_under_it(otlp_receiver: OtlpReceiver) -> None:
    # upstream: "every subsequent invocation made by that component won't be traced either"
    run_web(
        otlp_receiver,
        "flask",
        [["GET", "/call?url={base}/hello", None, None]],
        LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_SERVER=r'["^\\/call"]',
    )
    # the app has exited, so everything it exported is here: only the test's own call is;
    # not the /call server span, not the request it made, not the /hello it reached
    (span,) = otlp_receiver.wait_for_spans(1)
    assert span.kind == "CLIENT" and "/call?url=" in span.attributes["http.url"]
    assert len(otlp_receiver.spans()) == 1


def test_a_bad_filter_warns_once_and_filters_nothing(otlp_receiver: OtlpReceiver) -> None:
    report = run_web(
        otlp_receiver,
        "flask",
        [GET_HEALTH],
        LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_SERVER="/health",
    )
    warnings = [line for line in report["stderr"].splitlines() if "FILTER_HTTP" in line]
    assert len(warnings) == 1 and "not a JSON list" in warnings[0]
    spans = otlp_receiver.wait_for_spans(1, where=lambda s: s.kind == "SERVER")
    assert server_targets(spans) == ["/health"]


@pytest.mark.parametrize(
    ("sampler", "arg", "expected_server_spans"),
    [("always_off", None, 0), ("traceidratio", "0", 0), ("parentbased_traceidratio", "1", 2)],
)
def test_otel_traces_sampler_is_honoured(
    sampler: str,
    arg: str | None,
    expected_server_spans: int,
    otlp_receiver: OtlpReceiver,
    tmp_path: Path,
) -> None:
    dump = tmp_path / "spans.jsonl"
    env = {"OTEL_TRACES_SAMPLER": sampler, "LUMIGO_DEBUG_SPANDUMP": str(dump)}
    if arg is not None:
        env["OTEL_TRACES_SAMPLER_ARG"] = arg
    run_web(otlp_receiver, "flask", [GET_HELLO, GET_HEALTH], **env)
    # the span dump is written synchronously: it is complete once the app exited
    servers = [s for s in dumped_spans(dump) if s["kind"] == "SpanKind.SERVER"]
    assert len(servers) == expected_server_spans
    if expected_server_spans:
        assert len(otlp_receiver.wait_for_spans(2, where=lambda s: s.kind == "SERVER")) == 2
    else:
        assert otlp_receiver.spans() == []
