"""`lumigo-injector ecs --cluster --service`: the live path against moto in server mode."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lumigo_injector.ecs.taskdef import normalise
from tests.helpers.ecs import (
    TOKEN_ARN,
    assert_valid_register_request,
    container,
    env,
    load,
    run_cli,
    secrets,
)
from tests.helpers.moto_server import MotoServer, moto_server

__all__ = ["moto_server"]


class Service:
    """A cluster, a task definition and a service running it, with unique names."""

    def __init__(self, server: MotoServer, fixture: str) -> None:
        self.server = server
        self.ecs = server.client("ecs")
        suffix = uuid.uuid4().hex[:8]
        self.cluster = f"cluster-{suffix}"
        self.service = f"svc-{suffix}"
        td = load(fixture)
        td["family"] = f"{td['family']}-{suffix}"
        self.family = td["family"]
        self.ecs.create_cluster(clusterName=self.cluster)
        self.first_arn = self.ecs.register_task_definition(**td)["taskDefinition"][
            "taskDefinitionArn"
        ]
        self.ecs.create_service(
            cluster=self.cluster,
            serviceName=self.service,
            taskDefinition=self.first_arn,
            desiredCount=1,
        )

    def run(self, *args: str, **env_: str) -> Any:
        return run_cli(
            "--cluster",
            self.cluster,
            "--service",
            self.service,
            *args,
            env={**self.server.env(), **env_},
        )

    def current_arn(self) -> str:
        svc = self.ecs.describe_services(cluster=self.cluster, services=[self.service])
        return str(svc["services"][0]["taskDefinition"])

    def revisions(self) -> list[str]:
        return list(self.ecs.list_task_definitions(familyPrefix=self.family)["taskDefinitionArns"])

    def described(self, arn: str) -> dict[str, Any]:
        return normalise(self.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]))


@pytest.mark.parametrize("fixture", ["fargate-awsvpc.json", "multi-container-firelens.json"])
def test_registers_injected_revision_and_points_the_service_at_it(
    moto_server: MotoServer, fixture: str
) -> None:
    svc = Service(moto_server, fixture)
    proc = svc.run("--token-secret-arn", TOKEN_ARN, "--endpoint", "https://otlp.example.com")
    assert proc.returncode == 0, proc.stderr
    new_arn = proc.stdout.strip()
    assert new_arn != svc.first_arn and new_arn.endswith(":2")
    assert svc.current_arn() == new_arn
    td = svc.described(new_arn)
    assert_valid_register_request(td)
    first = svc.described(svc.first_arn)
    assert "lumigo-otel-init" not in [c["name"] for c in first["containerDefinitions"]]
    assert td.get("tags") == first.get("tags")
    app_names = [
        c["name"] for c in first["containerDefinitions"] if "firelensConfiguration" not in c
    ]
    for name in app_names:
        c = container(td, name)
        assert env(c)["PYTHONPATH"] == "/lumigo-otel/bootstrap"
        assert env(c)["OTEL_SERVICE_NAME"] == svc.family
        assert env(c)["LUMIGO_ENDPOINT"] == "https://otlp.example.com"
        assert secrets(c)["LUMIGO_TRACER_TOKEN"] == TOKEN_ARN
        assert {"containerName": "lumigo-otel-init", "condition": "SUCCESS"} in c["dependsOn"]
    assert container(td, "lumigo-otel-init")["essential"] is False
    assert {"name": "lumigo-otel"} in td["volumes"]
    assert f"the token secret {TOKEN_ARN} does not exist" in proc.stderr  # not created here


def test_an_existing_token_secret_or_parameter_passes_the_check(moto_server: MotoServer) -> None:
    svc = Service(moto_server, "fargate-awsvpc.json")
    secret = moto_server.client("secretsmanager").create_secret(
        Name=f"lumigo/{svc.service}", SecretString="t_0123456789abcdef"
    )["ARN"]
    ssm = moto_server.client("ssm")
    ssm.put_parameter(Name=f"/lumigo/{svc.service}", Value="t_0123", Type="SecureString")
    parameter = f"arn:aws:ssm:{moto_server.region}:123456789012:parameter/lumigo/{svc.service}"
    for arn in (secret, parameter, parameter.replace(svc.service, "missing")):
        proc = svc.run("--token-secret-arn", arn, "--dry-run")
        assert proc.returncode == 0, proc.stderr
        assert f'+          "valueFrom": "{arn}"' in proc.stdout.splitlines()
        assert ("does not exist" in proc.stderr) is arn.endswith("missing"), proc.stderr
    assert svc.revisions() == [svc.first_arn]


def test_dry_run_prints_the_diff_and_registers_nothing(moto_server: MotoServer) -> None:
    svc = Service(moto_server, "fargate-awsvpc.json")
    proc = svc.run("--token-secret-arn", TOKEN_ARN, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"--- {svc.first_arn}"
    assert '+      "name": "lumigo-otel-init",' in lines
    assert svc.revisions() == [svc.first_arn]
    assert svc.current_arn() == svc.first_arn


def test_rerun_changes_nothing_and_uninject_restores_the_original(moto_server: MotoServer) -> None:
    svc = Service(moto_server, "existing-env-secrets.json")
    injected = svc.run("--token-secret-arn", TOKEN_ARN).stdout.strip()
    again = svc.run("--token-secret-arn", TOKEN_ARN)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == injected
    assert "needs no change; nothing registered" in again.stderr
    assert len(svc.revisions()) == 2

    restored = svc.run("--uninject")
    assert restored.returncode == 0, restored.stderr
    arn = restored.stdout.strip()
    assert arn.endswith(":3") and svc.current_arn() == arn
    assert svc.described(arn) == svc.described(svc.first_arn)


def test_errors_exit_2_and_register_nothing(moto_server: MotoServer) -> None:
    svc = Service(moto_server, "fargate-awsvpc.json")
    missing = run_cli("--cluster", svc.cluster, "--service", "nope", env=moto_server.env())
    assert missing.returncode == 2 and missing.stdout == ""
    assert "no active service 'nope'" in missing.stderr
    no_cluster = run_cli("--cluster", "nope", "--service", svc.service, env=moto_server.env())
    assert no_cluster.returncode == 2 and no_cluster.stdout == ""
    no_region = {k: v for k, v in moto_server.env().items() if k != "AWS_DEFAULT_REGION"}
    proc = run_cli("--cluster", svc.cluster, "--service", svc.service, env=no_region)
    assert proc.returncode == 2 and "no AWS region" in proc.stderr
    assert svc.revisions() == [svc.first_arn]
    assert svc.current_arn() == svc.first_arn
