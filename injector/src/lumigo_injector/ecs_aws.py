"""The few ECS API calls the `ecs` command makes; the rewrite itself lives in `ecs`.

boto3 finds credentials, region and endpoint the standard way (environment, shared config,
instance or task role; `AWS_ENDPOINT_URL_ECS` / `AWS_ENDPOINT_URL` for a local emulator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lumigo_injector import ecs


class AwsError(RuntimeError):
    """An AWS call failed for a reason outside the task definition (credentials, API)."""


@dataclass(frozen=True)
class ServiceTaskDefinition:
    """A service and the task definition it runs, normalised to the register shape."""

    cluster: str
    service: str
    arn: str
    task_definition: dict[str, Any]


def client(region: str | None = None) -> Any:
    """An ECS client from the standard credential chain."""
    import boto3
    from botocore.exceptions import NoRegionError

    try:
        return boto3.client("ecs", region_name=region)
    except NoRegionError:
        raise ecs.TaskDefinitionError(
            "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, or pass --region"
        ) from None


def describe(ecs_client: Any, cluster: str, service: str) -> ServiceTaskDefinition:
    """The task definition a service currently runs (with its tags)."""
    resp = _call(ecs_client.describe_services, cluster=cluster, services=[service])
    services = [s for s in resp.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        raise ecs.TaskDefinitionError(f"no active service {service!r} in cluster {cluster!r}")
    svc = services[0]
    controller = (svc.get("deploymentController") or {}).get("type", "ECS")
    if controller != "ECS":
        raise ecs.TaskDefinitionError(
            f"service {service!r} uses the {controller} deployment controller; update it "
            "through that controller (use `lumigo-injector ecs -f` to get the task definition)"
        )
    arn = svc.get("taskDefinition")
    if not arn:
        raise ecs.TaskDefinitionError(f"service {service!r} has no task definition")
    described = _call(ecs_client.describe_task_definition, taskDefinition=arn, include=["TAGS"])
    described.pop("ResponseMetadata", None)
    return ServiceTaskDefinition(cluster, service, arn, ecs.normalise(described))


def register(ecs_client: Any, task_definition: dict[str, Any]) -> str:
    """Register a task definition revision and return its ARN."""
    resp = _call(ecs_client.register_task_definition, **task_definition)
    return str(resp["taskDefinition"]["taskDefinitionArn"])


def point_service(ecs_client: Any, cluster: str, service: str, arn: str) -> None:
    """Make a service deploy the given task definition revision."""
    _call(ecs_client.update_service, cluster=cluster, service=service, taskDefinition=arn)


_NOT_FOUND = frozenset(
    {"ClusterNotFoundException", "ServiceNotFoundException", "ServiceNotActiveException"}
)


def _call(method: Any, **kwargs: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return dict(method(**kwargs))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _NOT_FOUND or code == "InvalidParameterException":
            raise ecs.TaskDefinitionError(str(exc)) from None
        raise AwsError(str(exc)) from None
    except NoCredentialsError:
        raise AwsError(
            "no AWS credentials found (environment, shared config/profile, or instance/task role)"
        ) from None
    except BotoCoreError as exc:
        raise AwsError(str(exc)) from None
