"""LUMIGO_ENABLE_LOGS / LUMIGO_LOGS_ENDPOINT / LUMIGO_DEBUG_LOGDUMP: the `logging`
records of a real Flask app at a real OTLP/HTTP logs receiver, with the trace and span
ids of the request that logged them, bodies masked; nothing of it loaded when off."""

from __future__ import annotations

import json
from pathlib import Path

from lumigo_devtools.receiver import OtlpReceiver, ReceivedLog
from tests.distro.compat_apps import GET_HELLO, run_web
from tests.helpers.distro_apps import TOKEN

CHECKOUT = "checkout"


def is_checkout(record: ReceivedLog) -> bool:
    return CHECKOUT in str(record.body)


def test_log_records_carry_the_request_span_and_are_masked(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    logdump = tmp_path / "logs.jsonl"
    report = run_web(
        otlp_receiver,
        "flask",
        [["GET", "/tags", None, None]],
        LUMIGO_ENABLE_LOGS="true",
        LUMIGO_DEBUG_LOGDUMP=str(logdump),
    )
    assert report["api"]["logger_provider"] == "LoggerProvider"

    (record,) = otlp_receiver.wait_for_logs(1, where=is_checkout)
    server = otlp_receiver.wait_for_spans(1, where=lambda s: s.name == "GET /tags")[0]
    assert (record.trace_id, record.span_id) == (server.trace_id, server.span_id)
    assert json.loads(record.body) == {"event": CHECKOUT, "password": "****", "user": "ada"}
    assert record.severity_text == "WARN" and record.scope == "shop.orders"
    assert record.resource["service.name"] == "distro-test-app"
    # LUMIGO_LOGS_ENDPOINT unset: the logs go where the traces go, with the token
    requests = [r for r in otlp_receiver.requests() if r.path == "/v1/logs"]
    assert requests and all(r.headers["authorization"] == f"LumigoToken {TOKEN}" for r in requests)
    # the distro's own and the exporter's records never loop back into the export
    assert not any("lumigo-opentelemetry" in r.scope for r in otlp_receiver.logs())

    dumped = [json.loads(line) for line in logdump.read_text().splitlines()]
    (line,) = [d for d in dumped if CHECKOUT in d["body"]]
    assert json.loads(line["body"])["password"] == "****" and "hunter2" not in logdump.read_text()
    assert (line["trace_id"], line["span_id"]) == (server.trace_id, server.span_id)


def test_an_explicit_logs_endpoint_is_used(otlp_receiver: OtlpReceiver) -> None:
    with OtlpReceiver() as logs_receiver:
        run_web(
            otlp_receiver,
            "fastapi",
            [["GET", "/tags", None, None]],
            LUMIGO_ENABLE_LOGS="true",
            LUMIGO_LOGS_ENDPOINT=logs_receiver.base_url,  # a base URL gets /v1/logs
        )
        assert logs_receiver.wait_for_logs(1, where=is_checkout)
    assert otlp_receiver.logs() == []


def test_logs_are_off_by_default_and_cost_no_import(otlp_receiver: OtlpReceiver) -> None:
    report = run_web(
        otlp_receiver,
        "flask",
        [["GET", "/tags", None, None], GET_HELLO],
        OTEL_BSP_SCHEDULE_DELAY="600000",  # no span export before the app reports
    )
    assert report["loaded"] == []  # neither the SDK's logs nor any OTLP exporter
    assert report["api"]["logger_provider"] == "DisabledLoggerProvider"
    otlp_receiver.wait_for_spans(1, where=lambda s: s.name == "GET /tags")  # sent at exit
    assert otlp_receiver.logs() == []
    assert not [r for r in otlp_receiver.requests() if r.path.endswith("/v1/logs")]
