"""The instrumentation registry: lazy hooks, the disabled list, the version gate, and
failures that stay inside the distro. Each case runs in a fresh interpreter."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.app_venv import TEST_TOKEN, app_venv, run_app
from tests.helpers.app_venv import request as http_request
from tests.helpers.web_apps import WEB

PROBE = WEB / "registry_probe.py"
LIBRARIES = ("flask", "fastapi", "botocore", "pymongo", "pymysql")


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rec:
        yield rec


def probe(steps: list[str], receiver: OtlpReceiver, **env: str) -> tuple[dict[str, Any], str]:
    """Run the probe in this test venv's interpreter with a clean, injected-like env."""
    base = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LUMIGO_TRACER_TOKEN": TEST_TOKEN,
        "LUMIGO_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "registry-probe",
    }
    proc = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(steps)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_importing_the_distro_loads_no_library_and_no_instrumentation(
    receiver: OtlpReceiver,
) -> None:
    out, _ = probe(["import_distro", "loaded", "flask_request", "loaded", "flush"], receiver)
    before, after = out["loaded"]
    assert before == []
    # importing flask activates exactly the flask instrumentation, nothing else; the lean
    # path uses contrib's WSGI helpers but never imports contrib's Flask instrumentor
    # (not even for the version gate, which reads its distribution's metadata)
    assert after == [
        "flask",
        "lumigo_opentelemetry.instrumentations.flask",
        "opentelemetry.instrumentation.wsgi",
    ]
    # the lean server-span path leaves the app's class alone; the span below proves it is traced
    assert out["flask"] == {"class": "Flask", "body": "probe ok"}
    spans = receiver.wait_for_spans(
        1, where=lambda s: s.service == "registry-probe" and s.kind == "SERVER"
    )
    assert spans[0].name == "GET /"
    assert json.loads(spans[0].attributes["http.request.headers"])["x-probe"] == "1"


def test_importing_fastapi_and_building_an_app_defers_contrib_to_the_first_request(
    receiver: OtlpReceiver,
) -> None:
    """Like Flask's hook, FastAPI's imports neither contrib's instrumentor (nor, through it,
    `packaging`) nor wrapt when the app imports FastAPI and builds its app; they load on
    the app's first ASGI call, and that request is traced with its payloads."""
    out, _ = probe(
        ["import_distro", "fastapi_request", "flush"],
        receiver,
        OTEL_SERVICE_NAME="registry-probe-fastapi",
    )
    assert out["fastapi"]["body"] == '{"probe":"ok"}'
    assert out["fastapi"]["class"] == "_InstrumentedFastAPI"
    assert out["fastapi"]["loaded_before_request"] == []
    assert "opentelemetry.instrumentation.fastapi" in out["fastapi"]["loaded_after_request"]
    [span] = receiver.wait_for_spans(
        1, where=lambda s: s.service == "registry-probe-fastapi" and s.kind == "SERVER"
    )
    assert (span.name, span.scope) == ("GET /", "opentelemetry.instrumentation.fastapi")
    assert json.loads(span.attributes["http.request.headers"])["x-probe"] == "1"


def test_autowrapt_bootstrap_is_lazy_too(receiver: OtlpReceiver) -> None:
    out, _ = probe(["loaded"], receiver, AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry")
    assert out["loaded"] == [[]]


@pytest.mark.parametrize("disabled", ["flask", "FLASK, pymongo", "*"])
def test_disabled_instrumentations_are_left_alone(receiver: OtlpReceiver, disabled: str) -> None:
    out, _ = probe(
        ["import_distro", "flask_request", "fastapi_class", "loaded"],
        receiver,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled,
    )
    assert out["flask"] == {"class": "Flask", "body": "probe ok"}
    assert "opentelemetry.instrumentation.flask" not in out["loaded"][0]
    expected_fastapi = "FastAPI" if disabled == "*" else "_InstrumentedFastAPI"
    assert out["fastapi_class"] == expected_fastapi


def test_semconv_opt_in_traces_through_the_contrib_instrumentor(receiver: OtlpReceiver) -> None:
    # the provider waits for the first tracer there too: contrib asks for it per app
    out, _ = probe(
        ["import_distro", "flask_request", "loaded", "flush"],
        receiver,
        OTEL_SEMCONV_STABILITY_OPT_IN="http",
        OTEL_SERVICE_NAME="registry-probe-semconv",
    )
    assert out["flask"] == {"class": "_InstrumentedFlask", "body": "probe ok"}
    assert "opentelemetry.instrumentation.flask" in out["loaded"][0]
    [span] = receiver.wait_for_spans(
        1, where=lambda s: s.service == "registry-probe-semconv" and s.kind == "SERVER"
    )
    assert span.attributes["http.request.method"] == "GET"  # the stable conventions
    assert json.loads(span.attributes["http.request.headers"])["x-probe"] == "1"


def test_a_failing_instrumentation_leaves_the_app_working(receiver: OtlpReceiver) -> None:
    out, stderr = probe(["import_distro", "break_flask", "flask_request"], receiver)
    assert out["flask"]["body"] == "probe ok"
    assert "flask is not instrumented: its instrumentation failed" in stderr
    assert "injected instrumentation failure" in stderr


def test_out_of_range_fastapi_is_left_alone_with_one_info_line(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    # fastapi 0.90 is real and installable, but outside `fastapi ~= 0.92` declared upstream
    venv = app_venv(["fastapi==0.90.1", "uvicorn==0.20.0", "pydantic<2"])
    argv = ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--app-dir", str(WEB)]
    with run_app(
        venv,
        [*argv, "fastapi_app:app"],
        receiver_url=receiver.url,
        log_dir=tmp_path,
        service_name="old-fastapi",
    ) as app:
        resp = http_request(app, "POST", "/login", json={"user": "ann", "password": "p"})
        assert resp.json() == {"user": "ann", "token_secret": "s3cr3t-token", "ok": True}
        output = app.stop()  # graceful: anything recorded is flushed before exit
    gate_lines = [line for line in output.splitlines() if "fastapi is not instrumented" in line]
    assert len(gate_lines) == 1, output
    assert "INFO" in gate_lines[0] and "fastapi ~= 0.92" in gate_lines[0]
    assert "0.90.1" in gate_lines[0]
    assert [s for s in receiver.spans() if s.service == "old-fastapi"] == []


def test_every_module_follows_the_registry_contract() -> None:
    from lumigo_opentelemetry.instrumentations import HOOK_MODULES, KNOWN, module_name

    assert set(LIBRARIES) <= set(KNOWN)
    for name in KNOWN:
        module = importlib.import_module(module_name(name))
        assert name == module.NAME
        assert HOOK_MODULES[name] == module.HOOK_MODULE
        assert callable(module.instrumentor) and callable(module.instrument)
