"""ECS that never takes over: a user's container or volume that carries one of the injector's
names is a clash (exit 2, nothing written), `--uninject` never deletes a user's object,
input nested beyond the bound exits 2 in one line, and `AWS_REGION` picks the live region."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from typing import Any

from lumigo_injector.ecs.rewrite import normalise
from tests.helpers.ecs import TOKEN_ARN, container, load, run_cli
from tests.helpers.moto_server import MotoServer, moto_server

__all__ = ["moto_server"]

PROG = "lumigo-injector ecs"


def with_user_init_container() -> dict[str, Any]:
    td = load("fargate-awsvpc.json")
    td["containerDefinitions"].append(
        {
            "name": "lumigo-otel-init",
            "image": "corp/migrations:7",
            "essential": True,
            "command": ["migrate", "--all"],
        }
    )
    return td


def with_user_volume() -> dict[str, Any]:
    td = load("fargate-awsvpc.json")
    td["volumes"] = [{"name": "lumigo-otel", "host": {"sourcePath": "/srv/otel"}}]
    td["containerDefinitions"][0]["mountPoints"] = [
        {"sourceVolume": "lumigo-otel", "containerPath": "/srv/otel"}
    ]
    return td


def test_a_users_container_with_our_init_name_is_a_clash() -> None:
    proc = run_cli("-f", "-", "--token-secret-arn", TOKEN_ARN,
                   stdin=json.dumps(with_user_init_container()))  # fmt: skip
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "a container named 'lumigo-otel-init', not made by the injector" in proc.stderr
    assert "rename it" in proc.stderr


def test_a_users_volume_with_our_name_is_a_clash() -> None:
    proc = run_cli("-f", "-", stdin=json.dumps(with_user_volume()))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "a volume named 'lumigo-otel', not made by the injector" in proc.stderr


def test_uninject_never_deletes_a_users_objects() -> None:
    for td in (with_user_init_container(), with_user_volume()):
        proc = run_cli("-f", "-", "--uninject", stdin=json.dumps(td))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == normalise(td)


def test_our_init_container_is_marked_and_round_trips() -> None:
    original = load("fargate-awsvpc.json")
    injected = run_cli("-f", "-", "--token-secret-arn", TOKEN_ARN, stdin=json.dumps(original))
    assert injected.returncode == 0, injected.stderr
    td = json.loads(injected.stdout)
    assert "lumigo.io/injected" in container(td, "lumigo-otel-init")["dockerLabels"]
    again = run_cli("-f", "-", "--token-secret-arn", TOKEN_ARN, stdin=injected.stdout)
    assert again.returncode == 0 and json.loads(again.stdout) == td, again.stderr
    back = run_cli("-f", "-", "--uninject", stdin=injected.stdout)
    assert back.returncode == 0 and json.loads(back.stdout) == normalise(original), back.stderr


def test_nesting_beyond_the_bound_exits_2_in_one_line() -> None:
    for text in ("[" * 10_000 + "]" * 10_000, '{"family": ' * 10_000 + "1" + "}" * 10_000):
        proc = run_cli("-f", "-", stdin=text)
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr[-500:]
        assert proc.stderr == f"{PROG}: error: stdin: nested deeper than 128 levels\n"
    td = load("fargate-awsvpc.json")
    td["family"] = "web\udc80"
    proc = run_cli("-f", "-", stdin=json.dumps(td))
    assert (proc.returncode, proc.stdout) == (2, "") and "lone surrogate" in proc.stderr


def test_aws_region_selects_the_live_region(moto_server: MotoServer) -> None:
    """docs/ecs.md and the error message name AWS_REGION; it wins over AWS_DEFAULT_REGION."""
    server = dataclasses.replace(moto_server, region="eu-west-3")
    ecs = server.client("ecs")
    suffix = uuid.uuid4().hex[:8]
    cluster, service = f"paris-{suffix}", f"web-{suffix}"
    td = copy.deepcopy(load("fargate-awsvpc.json"))
    td["family"] = f"web-{suffix}"
    ecs.create_cluster(clusterName=cluster)
    arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=arn, desiredCount=1)
    base = {k: v for k, v in moto_server.env().items() if k != "AWS_DEFAULT_REGION"}
    for extra in ({"AWS_REGION": "eu-west-3"},
                  {"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-east-1"}):  # fmt: skip
        proc = run_cli("--cluster", cluster, "--service", service, "--dry-run",
                       env={**base, **extra})  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"--- {arn}\n"), proc.stdout[:200]
        assert ":eu-west-3:" in arn
    proc = run_cli("--cluster", cluster, "--service", service, "--dry-run",
                   env={**base, "AWS_DEFAULT_REGION": "us-east-1"})  # fmt: skip
    assert proc.returncode == 2, "the service lives in eu-west-3 only"
