"""The tracers compared, each in its own venv with the same app packages."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lumigo_injector.layer.build import source_hash
from lumigo_injector.layer.cache import cache_root

ROOT = Path(__file__).resolve().parents[1]
APP_PACKAGES = ["flask>=3,<4", "gunicorn>=22", "fastapi", "uvicorn>=0.29", "pymysql>=1.1",
                "django>=4.2", "psycopg[binary]>=3.1"]  # fmt: skip
OTEL_INSTRUMENTATIONS = [
    "opentelemetry-instrumentation-flask",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-pymysql",
    "opentelemetry-instrumentation-django",
    "opentelemetry-instrumentation-psycopg",
    "opentelemetry-instrumentation-botocore",
    "opentelemetry-instrumentation-pymongo",
    "opentelemetry-instrumentation-requests",
]


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    extra: tuple[str, ...] = ()
    wrapper: tuple[str, ...] = ()  # argv prefix, e.g. ("opentelemetry-instrument",)
    env: dict[str, str] = field(default_factory=dict)
    uses_layer: bool = False
    venv_of: str | None = None  # share another contender's venv (the layer runs on the baseline)


def contenders() -> list[Contender]:
    token = {"LUMIGO_TRACER_TOKEN": "t_bench", "LUMIGO_REPORT_DEPENDENCIES": "false"}
    return [
        Contender("baseline", "untraced"),
        Contender(
            "ours",
            "ours (AUTOWRAPT_BOOTSTRAP, pip-installed)",
            extra=(str(ROOT / "distro"),),
            env={**token, "AUTOWRAPT_BOOTSTRAP": "lumigo_opentelemetry"},
        ),
        Contender(
            "ours-layer",
            "ours (layer on PYTHONPATH, as injected)",
            env={**token, "AUTOWRAPT_BOOTSTRAP": "lumigo_opentelemetry"},
            uses_layer=True,
            venv_of="baseline",
        ),
        Contender(
            "upstream",
            "lumigo_opentelemetry from PyPI",
            extra=("lumigo_opentelemetry",),
            env={**token, "AUTOWRAPT_BOOTSTRAP": "lumigo_opentelemetry"},
        ),
        Contender(
            "vanilla",
            "opentelemetry-instrument",
            extra=(
                "opentelemetry-distro",
                "opentelemetry-exporter-otlp-proto-http",
                *OTEL_INSTRUMENTATIONS,
            ),
            wrapper=("opentelemetry-instrument",),
            env={
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
            },
        ),
        Contender(
            "ddtrace",
            "ddtrace-run",
            extra=("ddtrace",),
            wrapper=("ddtrace-run",),
            env={
                "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
                "DD_REMOTE_CONFIGURATION_ENABLED": "false",
                "DD_TRACE_STARTUP_LOGS": "false",
                "DD_PROFILING_ENABLED": "false",
                "DD_DATA_STREAMS_ENABLED": "false",
            },
        ),
    ]


def exporter_env(contender: Contender, receiver_url: str, agent_url: str) -> dict[str, str]:
    """Where each contender sends its spans: all to the same local receiver (ddtrace: a sink)."""
    if contender.name == "vanilla":
        return {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver_url}
    if contender.name == "ddtrace":
        return {"DD_TRACE_AGENT_URL": agent_url}
    if contender.name == "baseline":
        return {}
    return {"LUMIGO_ENDPOINT": receiver_url}


def cache_dir() -> Path:
    return cache_root() / "bench"


def venv_for(contender: Contender) -> Path:
    """Build (once) and return the contender's venv."""
    requirements = [*APP_PACKAGES, *contender.extra]
    key_source = "\n".join([sys.version, *requirements])
    if contender.name == "ours":
        key_source += source_hash(ROOT / "distro")
    key = hashlib.sha256(key_source.encode()).hexdigest()[:12]
    venv = cache_dir() / "venvs" / f"{contender.name}-{key}"
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv") or "uv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *requirements],
        check=True,
        env=env,
    )
    (venv / ".complete").write_text("ok\n")
    return venv


def installed_versions(venv: Path, names: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *names], capture_output=True, text=True
    )
    import json

    return dict(json.loads(done.stdout or "{}"))
