"""Never hurt the app: dead or hanging backends, bounded memory, bad settings, init errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import (
    APPS,
    PYTHON,
    GatedProxy,
    HangingServer,
    HttpApp,
    distro_lines,
    free_port,
    last_json,
    run_app,
    traced_env,
)

REQUESTS = 150
EXPORT_TIMEOUT = 1.0


def _run_requests(env: dict[str, str]) -> tuple[float, float]:
    """Start the HTTP app, time a checked request loop, stop it; (loop s, exit s)."""
    app = HttpApp(env)
    try:
        loop = app.request_loop(REQUESTS)
        exit_seconds = app.quit()
        assert app.proc.returncode == 0, app.stderr()
        return loop, exit_seconds
    finally:
        app.kill()


@pytest.mark.parametrize("backend", ["refused", "hanging"])
def test_dead_backend_blocks_neither_requests_nor_exit(backend: str) -> None:
    """Every request is answered and the app exits by itself while the backend is dead.

    How much a dead backend costs in time is a benchmark figure, not a test assertion."""
    settings = {
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(EXPORT_TIMEOUT),
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16",
    }
    if backend == "refused":
        env = traced_env(
            None, LUMIGO_ENDPOINT=f"http://127.0.0.1:{free_port()}/v1/traces", **settings
        )
        _run_requests(env)  # every answer checked, exit within quit()'s bound
    else:
        with HangingServer() as hanging:
            env = traced_env(None, LUMIGO_ENDPOINT=hanging.url(), **settings)
            app = HttpApp(env)
            try:
                app.get("/1")
                # the exporter is now stuck on the backend; the loop runs while it stays stuck
                assert hanging.accepted.wait(15)
                # the backend never answers: requests that waited on export would time out
                app.request_loop(REQUESTS)
                app.quit()  # the exit waits for one export timeout at most, never forever
                assert app.proc.returncode == 0, app.stderr()
            finally:
                app.kill()


def test_queue_limit_bounds_memory_while_backend_is_stuck(otlp_receiver: OtlpReceiver) -> None:
    with GatedProxy(otlp_receiver) as proxy:
        env = traced_env(
            None,
            LUMIGO_ENDPOINT=proxy.url,
            OTEL_BSP_MAX_QUEUE_SIZE="50",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10",
            OTEL_BSP_SCHEDULE_DELAY="10",
            OTEL_EXPORTER_OTLP_TIMEOUT="30",
        )
        proc = subprocess.Popen(
            [PYTHON, str(APPS / "emit_spans.py"), '{"spans": 2000, "wait_stdin": true}'],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            last_json(proc.stdout.readline())  # all 2000 spans ended
            assert proxy.held.wait(10)  # the first batch is stuck at the backend
            proxy.gate.set()
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    names = {s.name for s in otlp_receiver.spans()}
    # one stuck batch (10) plus at most a full queue (50); the rest was dropped, not buffered
    assert 10 < len(names) <= 60, sorted(names)
    assert "span-1999" in names  # the newest spans are kept and flushed at exit


BAD_SETTINGS = {
    "OTEL_BSP_MAX_QUEUE_SIZE": "lots",
    "OTEL_BSP_SCHEDULE_DELAY": "-5",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0",
    "OTEL_BSP_EXPORT_TIMEOUT": "soon",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "never",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "big",
    "LUMIGO_DEBUG": "maybe",
    "LUMIGO_SWITCH_OFF": "dunno",
    "LUMIGO_REPORT_DEPENDENCIES": "perhaps",
}


def test_bad_settings_warn_once_each_and_fall_back_to_defaults(
    otlp_receiver: OtlpReceiver,
) -> None:
    env = traced_env(otlp_receiver, **BAD_SETTINGS)

    result = run_app("emit_spans.py", env, {"spans": 3, "attributes": {"a": "z" * 3000}})

    assert result.returncode == 0, result.stderr
    spans = otlp_receiver.wait_for_spans(3)  # still traced: LUMIGO_SWITCH_OFF fell back to off
    assert {len(s.attributes["a"]) for s in spans} == {2048}
    warnings = distro_lines(result.stderr, "WARNING")
    assert len(warnings) == len(BAD_SETTINGS)
    for name in BAD_SETTINGS:
        assert sum(name in line for line in warnings) == 1, name
    assert distro_lines(result.stderr, "DEBUG") == []  # LUMIGO_DEBUG fell back to false


def test_init_failure_never_reaches_the_app(otlp_receiver: OtlpReceiver) -> None:
    # a value the SDK itself rejects while the distro builds the tracer provider
    env = traced_env(otlp_receiver, OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="abc")

    result = run_app("emit_spans.py", env, {"spans": 2, "import_distro": True, "flush": True})

    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["flushed"] is True
    assert report["provider"] == "ProxyTracerProvider"
    warnings = distro_lines(result.stderr, "WARNING")
    assert len(warnings) == 1 and "tracing is off" in warnings[0]
    assert "Traceback" not in result.stderr


def test_exporter_rejections_do_not_reach_the_app(tmp_path: Path) -> None:
    # a backend answering 404 to every export: the app runs and exits normally
    from tests.helpers.distro_apps import json_server

    with json_server({}) as base:
        env = traced_env(None, LUMIGO_ENDPOINT=f"{base}/v1/traces")
        result = run_app("emit_spans.py", env, {"spans": 5, "flush": True})

    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["flushed"] is True
    assert "Traceback" not in result.stderr
