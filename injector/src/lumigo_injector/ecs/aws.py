"""The few ECS API calls the `ecs` command makes; the rewrite itself lives in `ecs`.

boto3 finds credentials, region and endpoint the standard way (environment, shared config,
instance or task role; `AWS_ENDPOINT_URL_ECS` / `AWS_ENDPOINT_URL` for a local emulator).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lumigo_injector.ecs import taskdef


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
    """An ECS client from the standard credential chain.

    The region: `region` (--region), else AWS_REGION (as the AWS CLI and SDKs read it;
    botocore alone does not), else AWS_DEFAULT_REGION or the profile's region.
    """
    import boto3
    from botocore.exceptions import NoRegionError

    region = region or os.environ.get("AWS_REGION", "").strip() or None
    try:
        return boto3.client("ecs", region_name=region)
    except NoRegionError:
        raise taskdef.TaskDefinitionError(
            "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, or pass --region"
        ) from None


def describe(ecs_client: Any, cluster: str, service: str) -> ServiceTaskDefinition:
    """The task definition a service currently runs (with its tags)."""
    resp = _call(ecs_client.describe_services, cluster=cluster, services=[service])
    services = [s for s in resp.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        raise taskdef.TaskDefinitionError(f"no active service {service!r} in cluster {cluster!r}")
    svc = services[0]
    controller = (svc.get("deploymentController") or {}).get("type", "ECS")
    if controller != "ECS":
        raise taskdef.TaskDefinitionError(
            f"service {service!r} uses the {controller} deployment controller; update it "
            "through that controller (use `lumigo-injector ecs -f` to get the task definition)"
        )
    arn = svc.get("taskDefinition")
    if not arn:
        raise taskdef.TaskDefinitionError(f"service {service!r} has no task definition")
    described = _call(ecs_client.describe_task_definition, taskDefinition=arn, include=["TAGS"])
    described.pop("ResponseMetadata", None)
    return ServiceTaskDefinition(cluster, service, arn, taskdef.normalise(described))


def register(ecs_client: Any, task_definition: dict[str, Any]) -> str:
    """Register a task definition revision and return its ARN."""
    resp = _call(ecs_client.register_task_definition, **task_definition)
    return str(resp["taskDefinition"]["taskDefinitionArn"])


def point_service(ecs_client: Any, cluster: str, service: str, arn: str) -> None:
    """Make a service deploy the given task definition revision."""
    _call(ecs_client.update_service, cluster=cluster, service=service, taskDefinition=arn)


def secret_warning(arn: str) -> str | None:
    """Check that the token's secret or parameter exists (metadata only, never its value).

    ECS reads it when a task starts and the task fails to start when it cannot, so a typo
    is worth a warning before the new revision goes live.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parts = arn.split(":")
    service, region = parts[2], parts[3]
    try:
        if service == "secretsmanager":
            client = boto3.client("secretsmanager", region_name=region)
            client.describe_secret(SecretId=":".join(parts[:7]))
        else:
            name = arn.split(":parameter", 1)[1]
            name = name[1:] if name.count("/") == 1 else name
            client = boto3.client("ssm", region_name=region)
            found = client.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
            )
            if not found.get("Parameters"):
                return f"the token parameter {arn} does not exist; tasks would fail to start"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return f"the token secret {arn} does not exist; tasks would fail to start"
        return f"could not check the token secret {arn} ({code or exc})"
    except BotoCoreError as exc:
        return f"could not check the token secret {arn} ({exc})"
    return None


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
            raise taskdef.TaskDefinitionError(str(exc)) from None
        raise AwsError(str(exc)) from None
    except NoCredentialsError:
        raise AwsError(
            "no AWS credentials found (environment, shared config/profile, or instance/task role)"
        ) from None
    except BotoCoreError as exc:
        raise AwsError(str(exc)) from None
