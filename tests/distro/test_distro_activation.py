"""Activation paths, switch-off, unsupported Python, token/no token, debug, flushing."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.app_venv import app_venv
from tests.helpers.distro_apps import (
    APPS,
    DISTRO_SRC,
    PYTHON,
    TOKEN,
    clean_env,
    distro_lines,
    last_json,
    run_app,
    traced_env,
)
from tests.helpers.need import pyenv_python

# Long enough that only force_flush() or the exit flush can deliver spans.
NO_TIMER = {"OTEL_BSP_SCHEDULE_DELAY": "600000"}


def test_autowrapt_activation_exports_every_span_at_exit_with_the_token(
    otlp_receiver: OtlpReceiver,
) -> None:
    result = run_app("emit_spans.py", traced_env(otlp_receiver, **NO_TIMER), {"spans": 4})

    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["provider"] == "TracerProvider"
    spans = otlp_receiver.wait_for_spans(4)
    assert sorted(s.name for s in spans) == ["span-0", "span-1", "span-2", "span-3"]
    assert {s.service for s in spans} == {"distro-test-app"}
    requests = otlp_receiver.requests()
    assert requests
    for request in requests:
        assert request.headers["authorization"] == f"LumigoToken {TOKEN}"
        assert request.headers["content-type"] == "application/x-protobuf"


def test_import_activation_without_autowrapt(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver, **NO_TIMER)
    del env["AUTOWRAPT_BOOTSTRAP"]

    result = run_app("emit_spans.py", env, {"spans": 2, "import_distro": True})

    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["provider"] == "TracerProvider"
    assert sorted(s.name for s in otlp_receiver.wait_for_spans(2)) == ["span-0", "span-1"]


def test_without_activation_nothing_is_traced(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver)
    del env["AUTOWRAPT_BOOTSTRAP"]

    result = run_app("emit_spans.py", env, {"spans": 2})

    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["provider"] == "ProxyTracerProvider"
    assert not report["distro_loaded"]
    assert otlp_receiver.requests() == []


def test_both_activation_paths_initialise_once(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver, LUMIGO_DEBUG="true", **NO_TIMER)

    result = run_app("emit_spans.py", env, {"spans": 5, "import_distro": True, "flush": True})

    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["flushed"] is True
    assert len([line for line in result.stderr.splitlines() if "initialised" in line]) == 1
    otlp_receiver.wait_for_spans(5)
    # exit flush has run too (the process is gone): each span arrived exactly once
    per_span = Counter(s.span_id for s in otlp_receiver.spans())
    assert len(per_span) == 5
    assert set(per_span.values()) == {1}


def test_switch_off_installs_nothing_and_starts_no_thread(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver, LUMIGO_SWITCH_OFF="true")

    result = run_app("emit_spans.py", env, {"spans": 3, "flush": True})

    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["provider"] == "ProxyTracerProvider"
    assert report["threads"] == ["MainThread"]
    assert report["sdk_loaded"] is False
    assert report["flushed"] is True  # the public API stays safe to call
    assert distro_lines(result.stderr) == []  # silent
    assert otlp_receiver.requests() == []


def test_unsupported_python_gets_one_warning_line_and_nothing_else(tmp_path) -> None:
    python38 = pyenv_python("3.8")
    code = (
        "import sys, threading\n"
        "import lumigo_opentelemetry\n"
        "print(lumigo_opentelemetry.tracer_provider, lumigo_opentelemetry.init(),"
        " [t.name for t in threading.enumerate()],"
        " sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'wrapt'))))\n"
    )
    env = clean_env(PYTHONPATH=str(DISTRO_SRC), LUMIGO_TRACER_TOKEN=TOKEN, LUMIGO_DEBUG="true")

    result = subprocess.run(
        [python38, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None None ['MainThread'] []"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "Python 3.8 is not supported" in lines[0]
    assert "WARNING" in lines[0]


def test_no_token_means_no_exporter_and_one_info_line(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver)
    del env["LUMIGO_TRACER_TOKEN"]

    result = run_app("emit_spans.py", env, {"spans": 2, "flush": True})

    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["provider"] == "TracerProvider"
    assert not any(name.startswith("OtelBatch") for name in report["threads"])
    info = distro_lines(result.stderr, "INFO")
    assert len(info) == 1
    assert "LUMIGO_TRACER_TOKEN is not set" in info[0]
    assert otlp_receiver.requests() == []


def test_token_starts_the_batch_processor(otlp_receiver: OtlpReceiver) -> None:
    result = run_app("emit_spans.py", traced_env(otlp_receiver), {"spans": 1})

    assert result.returncode == 0, result.stderr
    assert any(name.startswith("OtelBatch") for name in last_json(result.stdout)["threads"])
    assert distro_lines(result.stderr) == []  # quiet by default


def test_debug_logs_to_stderr_only_when_asked(otlp_receiver: OtlpReceiver) -> None:
    quiet = run_app("emit_spans.py", traced_env(otlp_receiver), {"spans": 1})
    loud = run_app("emit_spans.py", traced_env(otlp_receiver, LUMIGO_DEBUG="true"), {"spans": 1})

    assert quiet.returncode == loud.returncode == 0
    assert distro_lines(quiet.stderr, "DEBUG") == []
    debug = distro_lines(loud.stderr, "DEBUG")
    assert any(otlp_receiver.url in line for line in debug)
    assert any("service.name=distro-test-app" in line for line in debug)
    assert "lumigo-opentelemetry" not in loud.stdout


def test_force_flush_delivers_every_finished_span_before_returning(
    otlp_receiver: OtlpReceiver,
) -> None:
    env = traced_env(otlp_receiver, **NO_TIMER)
    proc = subprocess.Popen(
        [PYTHON, str(APPS / "emit_spans.py"), '{"spans": 25, "flush": true, "wait_stdin": true}'],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        report = last_json(proc.stdout.readline())
        # force_flush() has returned and the app is still running: all spans are there now
        assert report["flushed"] is True
        assert len(otlp_receiver.spans()) == 25
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert len(otlp_receiver.spans()) == 25  # the exit flush sent nothing twice


def test_python_39_with_its_newest_compatible_opentelemetry(otlp_receiver: OtlpReceiver) -> None:
    venv = app_venv([], python="3.9")  # the distro resolved for 3.9 (cached between runs)
    options = {
        "spans": 2,
        "attributes": {"lumigo.execution_tags.ids": [1, 2]},
        "tuple_keys": ["lumigo.execution_tags.ids"],
    }
    env = traced_env(otlp_receiver, **NO_TIMER)

    result = subprocess.run(
        [str(venv / "bin" / "python"), str(APPS / "emit_spans.py"), json.dumps(options)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["provider"] == "TracerProvider"
    spans = otlp_receiver.wait_for_spans(2)
    assert {s.resource["process.runtime.version"][:4] for s in spans} == {"3.9."}
    assert all(s.attributes["lumigo.execution_tags.ids"] == [1, 2] for s in spans)
    assert otlp_receiver.requests()[0].headers["authorization"] == f"LumigoToken {TOKEN}"
