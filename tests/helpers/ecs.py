"""Shared by the ECS tests: the fixture corpus and botocore's own request validation."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ecs"
CORPUS = sorted(p.name for p in FIXTURES.glob("*.json"))

TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lumigo/token-AbCdEf"
SSM_TOKEN_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/lumigo/token"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@functools.cache
def _register_shape() -> Any:
    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def assert_valid_register_request(params: dict[str, Any]) -> None:
    """Fail unless botocore's ECS model accepts `params` as a RegisterTaskDefinition request."""
    report = ParamValidator().validate(params, _register_shape())
    assert not report.has_errors(), report.generate_report()


def container(td: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in td["containerDefinitions"] if c["name"] == name)


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("environment", [])}


def secrets(c: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["valueFrom"] for s in c.get("secrets", [])}


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `lumigo-injector ecs ...` as a real process, never reaching real AWS."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base["AWS_EC2_METADATA_DISABLED"] = "true"
    base["AWS_CONFIG_FILE"] = base["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return subprocess.run(
        [str(Path(sys.executable).parent / "lumigo-injector"), "ecs", *args],
        env={**base, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
