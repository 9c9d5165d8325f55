"""The new instrumentations through the registry, in a fresh interpreter each: lazy (nothing
loaded before the app imports the library), switchable with
OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, and active once the library is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.helpers.app_venv import TEST_TOKEN

# library module to import -> (instrumentation name, an object the instrumentation wraps)
PROBE = r"""
import json, sys
import lumigo_opentelemetry
names = ("django", "psycopg2", "psycopg", "redis", "pika", "grpc", "httpx", "langchain_core")
def loaded():
    prefixes = tuple(names) + ("opentelemetry.instrumentation.",
                               "lumigo_opentelemetry.instrumentations.")
    skip = ("lumigo_opentelemetry.instrumentations._post_import",)
    return sorted(m for m in sys.modules if m.startswith(prefixes) and m not in skip
                  and m.split(".")[0] in names + ("opentelemetry", "lumigo_opentelemetry"))
before = loaded()
import django.core.handlers.base, psycopg2, psycopg, redis, pika, grpc, httpx, langchain_core
import langchain_core.callbacks
wrapped = {
    "django": hasattr(django.core.handlers.base.BaseHandler.load_middleware, "__wrapped__"),
    "psycopg2": hasattr(psycopg2.connect, "__wrapped__"),
    "psycopg": hasattr(psycopg.connect, "__wrapped__"),
    "redis": hasattr(redis.Redis.execute_command, "__wrapped__"),
    "pika": hasattr(pika.BlockingConnection.channel, "__wrapped__"),
    "grpc": hasattr(grpc.insecure_channel, "__wrapped__"),
    "httpx": hasattr(httpx.HTTPTransport.handle_request, "__wrapped__"),
    "langchain": hasattr(langchain_core.callbacks.BaseCallbackManager.__init__, "__wrapped__"),
}
print(json.dumps({"before": before, "wrapped": wrapped}))
"""
NAMES = ("django", "psycopg2", "psycopg", "redis", "pika", "grpc", "httpx", "langchain")


def _probe(**env: str) -> dict[str, Any]:
    base = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LUMIGO_TRACER_TOKEN": TEST_TOKEN,
        "LUMIGO_ENDPOINT": "http://127.0.0.1:9/v1/traces",
        "LUMIGO_REPORT_DEPENDENCIES": "false",
        "OTEL_SERVICE_NAME": "new-registry-probe",
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "not instrumented" not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_nothing_is_loaded_before_the_app_imports_and_all_are_active_after() -> None:
    out = _probe()
    assert out["before"] == []
    assert out["wrapped"] == dict.fromkeys(NAMES, True)


@pytest.mark.parametrize("disabled", ["redis", "GRPC, httpx,django"])
def test_disabled_instrumentations_are_left_alone(disabled: str) -> None:
    out = _probe(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
    off = {part.strip().lower() for part in disabled.split(",")}
    assert out["wrapped"] == {name: name not in off for name in NAMES}
