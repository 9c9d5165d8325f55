"""An injected task definition, played out the way ECS runs it, traces a real Flask app.

ECS is simulated with what it actually does for our containers: run `lumigo-otel-init` with
the layer image's entrypoint (`copy-layer.sh`) and the task definition's `command`, mount the
volume read-only into the app, give the app exactly its `environment` plus its `secrets`
resolved, and start it only after the init container succeeded. The container path
`/lumigo-otel` is mapped to a temporary directory.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_injector.ecs.rewrite import EcsSettings, inject
from lumigo_injector.spec import names as constants
from tests.helpers.ecs import TOKEN_ARN, container
from tests.helpers.layer_apps import (
    layer_for_tests,
    make_read_only,
    make_venv,
    make_writable,
    plain_env,
    running_app,
    write_flask_app,
)

pytestmark = pytest.mark.slow

TEST_TOKEN = "t_ecs0123456789abcdef"
FAMILY = "orders-api"


def task_definition(endpoint: str) -> dict[str, Any]:
    td = {
        "family": FAMILY,
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {
                "name": "api",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders-api:1",
                "essential": True,
                "environment": [{"name": "APP_MODE", "value": "prod"}],
            }
        ],
    }
    return inject(td, EcsSettings(token_secret_arn=TOKEN_ARN, endpoint=endpoint)).task_definition


def on_host(value: str, volume: Path) -> str:
    """A value with the container's mount path mapped to the host directory."""
    return value.replace(constants.MOUNT_PATH, str(volume))


def run_init_container(td: dict[str, Any], layer: Path, volume: Path) -> None:
    """What ECS runs for `lumigo-otel-init`: the image's entrypoint with our command."""
    init = container(td, constants.INIT_CONTAINER_NAME)
    assert init["mountPoints"][0]["containerPath"] == constants.MOUNT_PATH
    volume.mkdir()
    args = [on_host(arg, volume) for arg in init["command"]]
    done = subprocess.run(
        ["sh", str(layer / "copy-layer.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr  # the condition the app's dependsOn waits for


def container_env(td: dict[str, Any], name: str, volume: Path) -> dict[str, str]:
    """The app container's environment: `environment` plus `secrets` resolved by ECS."""
    app = container(td, name)
    resolved = {TOKEN_ARN: TEST_TOKEN}  # what the execution role reads from Secrets Manager
    env = {e["name"]: on_host(e["value"], volume) for e in app["environment"]}
    env.update({s["name"]: resolved[s["valueFrom"]] for s in app.get("secrets", [])})
    return env


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "lumigo-otel"
    yield path
    if path.exists():
        make_writable(path)


def test_injected_task_definition_traces_a_flask_app(
    tmp_path: Path, volume: Path, otlp_receiver: OtlpReceiver
) -> None:
    layer = layer_for_tests()
    venv = make_venv("3.12", ["flask"])
    td = task_definition(otlp_receiver.url)

    run_init_container(td, layer, volume)
    app_container = container(td, "api")
    assert {"containerName": constants.INIT_CONTAINER_NAME, "condition": "SUCCESS"} in (
        app_container["dependsOn"]
    )
    mount = next(m for m in app_container["mountPoints"] if m["sourceVolume"] == "lumigo-otel")
    assert mount["readOnly"] is True
    make_read_only(volume)

    env = container_env(td, "api", volume)
    assert env["LUMIGO_TRACER_TOKEN"] == TEST_TOKEN
    script = write_flask_app(tmp_path / "app")
    with running_app(venv, script, plain_env(**env, OTEL_BSP_SCHEDULE_DELAY="50")) as app:
        assert app.get_json("/hello/ecs") == {"hello": "ecs", "python": "3.12"}
        facts = app.get_json("/facts")
        spans = otlp_receiver.wait_for_spans(
            where=lambda s: s.kind == "SERVER" and "/hello" in s.name, timeout=30
        )
    out = app.output
    assert out is not None and out.returncode == 0, out
    assert facts["sitecustomize"].startswith(str(volume))
    assert facts["modules"]["lumigo_opentelemetry"].startswith(str(volume))
    assert spans[0].service == FAMILY  # OTEL_SERVICE_NAME from the family
    auth = {r.headers.get("authorization") for r in otlp_receiver.requests()}
    assert auth == {f"LumigoToken {TEST_TOKEN}"}
