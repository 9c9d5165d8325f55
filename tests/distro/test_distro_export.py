"""Export details: attribute limits, execution tags, the span dump, the dependency report."""

from __future__ import annotations

import json
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.dependencies import THREAD_NAME
from tests.helpers.distro_apps import (
    APPS,
    PYTHON,
    TOKEN,
    HangingServer,
    distro_lines,
    last_json,
    run_app,
    traced_env,
)

LONG = "x" * 5000


@pytest.mark.parametrize(
    ("limits", "expected", "warns"),
    [
        ({}, 2048, 0),
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "300"}, 300, 0),
        (
            {
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "40",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "300",
            },
            40,
            0,
        ),
        ({"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "lots"}, 2048, 1),
        (
            {
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "-1",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "77",
            },
            77,
            1,
        ),
    ],
)
def test_attribute_value_length_limit(
    otlp_receiver: OtlpReceiver, limits: dict[str, str], expected: int, warns: int
) -> None:
    options = {"spans": 1, "attributes": {"long": LONG, "list": [LONG, "short"]}, "flush": True}

    result = run_app("emit_spans.py", traced_env(otlp_receiver, **limits), options)

    assert result.returncode == 0, result.stderr
    span = otlp_receiver.wait_for_spans(1)[0]
    assert span.attributes["long"] == "x" * expected
    assert span.attributes["list"] == ["x" * expected, "short"]
    assert len(distro_lines(result.stderr, "WARNING")) == warns


def test_execution_tags_arrive_intact_from_any_span(otlp_receiver: OtlpReceiver) -> None:
    tags = {
        "lumigo.execution_tags.customer": "acme",
        "lumigo.execution_tags.count": 42,
        "lumigo.execution_tags.ratio": 0.25,
        "lumigo.execution_tags.vip": True,
        "lumigo.execution_tags.regions": ["eu", "us"],
        "lumigo.execution_tags.sizes": [1, 2, 3],
    }
    child_tags = {"lumigo.execution_tags.stage": "checkout", "lumigo.execution_tags.ids": [7, 8]}
    options = {
        "spans": 1,
        "attributes": tags,
        "child_attributes": child_tags,
        "tuple_keys": ["lumigo.execution_tags.sizes", "lumigo.execution_tags.ids"],
        "flush": True,
    }

    result = run_app("emit_spans.py", traced_env(otlp_receiver), options)

    assert result.returncode == 0, result.stderr
    spans = {s.name: s for s in otlp_receiver.wait_for_spans(2)}
    root, child = spans["span-0"], spans["child-0"]
    assert child.parent_span_id == root.span_id
    for key, value in tags.items():
        assert root.attributes[key] == value
        assert type(root.attributes[key]) is type(value)
    for key, value in child_tags.items():
        assert child.attributes[key] == value


def test_span_dump_is_safe_with_concurrent_processes(tmp_path: Path) -> None:
    dump = tmp_path / "spans.jsonl"
    env = traced_env(
        None, LUMIGO_DEBUG_SPANDUMP=str(dump), OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT="20000"
    )
    del env["LUMIGO_TRACER_TOKEN"]  # the dump works without a token
    per_process, processes = 150, 4
    options = json.dumps({"spans": per_process, "attributes": {"payload": "y" * 9000}})
    procs = [
        subprocess.Popen(
            [PYTHON, str(APPS / "emit_spans.py"), options],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    lines = dump.read_bytes().split(b"\n")
    assert lines[-1] == b""
    docs = [json.loads(line) for line in lines[:-1]]  # every line is one whole JSON object
    assert len(docs) == per_process * processes
    assert len({d["context"]["span_id"] for d in docs}) == per_process * processes
    assert all(d["attributes"]["payload"] == "y" * 9000 for d in docs)
    assert {d["resource"]["attributes"]["service.name"] for d in docs} == {"distro-test-app"}


def test_unwritable_span_dump_warns_once_and_export_goes_on(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    env = traced_env(otlp_receiver, LUMIGO_DEBUG_SPANDUMP=str(tmp_path / "missing" / "d.jsonl"))

    result = run_app("emit_spans.py", env, {"spans": 3, "flush": True})

    assert result.returncode == 0, result.stderr
    assert len(otlp_receiver.wait_for_spans(3)) == 3
    warnings = distro_lines(result.stderr, "WARNING")
    assert len(warnings) == 1 and "span dump" in warnings[0]


def _dependency_env(receiver_base: str, **extra: str) -> dict[str, str]:
    """Default endpoint (so the report is due) with the internal override pointing here."""
    env = traced_env(
        None,
        LUMIGO_DEPENDENCIES_ENDPOINT=f"{receiver_base}/v1/dependencies",
        OTEL_BSP_SCHEDULE_DELAY="600000",  # nothing is exported to the (unreachable) default
        **extra,
    )
    return env


def test_dependency_report_is_sent_once(otlp_receiver: OtlpReceiver) -> None:
    env = _dependency_env(otlp_receiver.base_url)

    result = run_app("report_threads.py", env, argv=["wait-report"])

    assert result.returncode == 0, result.stderr
    assert THREAD_NAME in last_json(result.stdout)["threads_at_start"]
    reports = otlp_receiver.wait_for_dependencies()
    # the app has exited: every report it sent has been answered, so a second one would be here
    assert len(otlp_receiver.dependencies()) == 1
    report = reports[0]
    assert report["resourceAttributes"]["service.name"] == "distro-test-app"
    assert report["resourceAttributes"]["telemetry.sdk.language"] == "python"
    packages = {p["name"].lower(): p["version"] for p in report["dependencies"]}
    assert packages["opentelemetry-sdk"] == version("opentelemetry-sdk")
    assert packages["lumigo_opentelemetry"] == version("lumigo_opentelemetry")
    (request,) = [r for r in otlp_receiver.requests() if r.path.endswith("/v1/dependencies")]
    assert request.headers["authorization"] == f"LumigoToken {TOKEN}"
    assert otlp_receiver.spans() == []


@pytest.mark.parametrize(
    "extra",
    [
        {"LUMIGO_REPORT_DEPENDENCIES": "false"},
        {"LUMIGO_ENDPOINT": "http://127.0.0.1:9/v1/traces"},  # not the default endpoint
        {"LUMIGO_TRACER_TOKEN": ""},
    ],
    ids=["disabled", "custom-endpoint", "no-token"],
)
def test_no_dependency_report_unless_due(
    otlp_receiver: OtlpReceiver, extra: dict[str, str]
) -> None:
    env = _dependency_env(otlp_receiver.base_url, **extra)

    result = run_app("report_threads.py", env, argv=["wait-report"])

    assert result.returncode == 0, result.stderr
    assert THREAD_NAME not in last_json(result.stdout)["threads_at_start"]
    assert otlp_receiver.dependencies() == []


def _run_until_exit(env: dict[str, str], marker: Path) -> tuple[dict[str, Any], str]:
    """Run the app until it prints "exiting" (once `marker` exists), then let it exit by
    itself; a process still running 30 s later fails the test (it hangs)."""
    proc = subprocess.Popen(
        [PYTHON, str(APPS / "report_threads.py"), f"linger-until={marker}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        report = last_json(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "exiting"
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return report, err


def test_hanging_dependency_endpoint_delays_neither_start_nor_exit(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The report endpoint accepts and never answers, and the report's own timeout is an
    hour: an exit that waited for the report would hang. (What exit costs with a hanging
    endpoint at the default timeout is a benchmark figure: benchmarks/exit_costs.py.)"""
    with HangingServer(marker=tmp_path / "connected") as hanging:
        env = _dependency_env(f"http://127.0.0.1:{hanging.port}", LUMIGO_CONNECTION_TIMEOUT="3600")
        report, _ = _run_until_exit(env, tmp_path / "connected")
        assert hanging.accepted.is_set()  # the report was in flight when the app exited

    # main started while the report was still pending (the server never answers)
    assert THREAD_NAME in report["threads_at_start"]


def test_forked_workers_export_and_dump_each_span_once(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    dump = tmp_path / "spans.jsonl"
    env = traced_env(otlp_receiver, LUMIGO_DEBUG_SPANDUMP=str(dump), OTEL_BSP_SCHEDULE_DELAY="5")
    workers, per_worker = 3, 40
    expected = 2 + workers * per_worker

    result = run_app("fork_spans.py", env, argv=[str(workers), str(per_worker)])

    assert result.returncode == 0, result.stdout + result.stderr
    spans = otlp_receiver.wait_for_spans(expected)
    assert len(spans) == expected
    assert len({s.span_id for s in spans}) == expected
    assert {s.name for s in spans} >= {"parent-before", "parent-after", "worker-2-39"}
    dumped = [json.loads(line) for line in dump.read_text().splitlines()]
    assert sorted(d["name"] for d in dumped) == sorted(s.name for s in spans)
