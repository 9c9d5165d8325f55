"""Amazon ECS resource attributes from the task metadata endpoint v4.

`ECS_CONTAINER_METADATA_URI_V4` points at the container document; `<uri>/task` is the
task document. Both are fetched on a daemon thread with one overall deadline, so a slow,
hanging or broken endpoint costs at most `ECS_METADATA_TIMEOUT_SECONDS` and loses only
these attributes.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Mapping, Optional

from lumigo_opentelemetry._logging import logger

ENV_VAR = "ECS_CONTAINER_METADATA_URI_V4"
ECS_METADATA_TIMEOUT_SECONDS = 1.0
_MAX_DOCUMENT_BYTES = 1 << 20


def _fetch_json(url: str, timeout: float) -> Dict[str, Any]:
    from urllib.request import Request, urlopen

    request = Request(url, headers={"Accept": "application/json"})
    with urlopen(request, timeout=timeout) as response:
        doc = json.loads(response.read(_MAX_DOCUMENT_BYTES))
    if not isinstance(doc, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return doc


def _text(value: Any) -> Optional[str]:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _cluster_arn(cluster: Optional[str], task_arn: Optional[str]) -> Optional[str]:
    """The task document names the cluster by ARN (Fargate) or by short name (EC2)."""
    if not cluster or cluster.startswith("arn:"):
        return cluster
    if task_arn and task_arn.startswith("arn:") and ":task/" in task_arn:
        return f"{task_arn.split(':task/', 1)[0]}:cluster/{cluster}"
    return None


def attributes_from_documents(
    container: Mapping[str, Any], task: Mapping[str, Any]
) -> Dict[str, str]:
    """Pure mapping of the two metadata documents to semantic-convention attributes."""
    labels = container.get("Labels")
    labels = labels if isinstance(labels, dict) else {}
    task_arn = _text(task.get("TaskARN")) or _text(labels.get("com.amazonaws.ecs.task-arn"))
    cluster = _text(task.get("Cluster")) or _text(labels.get("com.amazonaws.ecs.cluster"))
    launch_type = _text(task.get("LaunchType"))
    candidates: Dict[str, Optional[str]] = {
        "cloud.provider": "aws",
        "cloud.platform": "aws_ecs",
        "container.name": _text(container.get("Name")),
        "container.id": _text(container.get("DockerId")),
        "aws.ecs.container.arn": _text(container.get("ContainerARN")),
        "aws.ecs.cluster.arn": _cluster_arn(cluster, task_arn),
        "aws.ecs.launchtype": launch_type.lower() if launch_type else None,
        "aws.ecs.task.arn": task_arn,
        "aws.ecs.task.family": _text(task.get("Family"))
        or _text(labels.get("com.amazonaws.ecs.task-definition-family")),
        "aws.ecs.task.revision": _text(task.get("Revision"))
        or _text(labels.get("com.amazonaws.ecs.task-definition-version")),
        "cloud.availability_zone": _text(task.get("AvailabilityZone")),
    }
    if task_arn and task_arn.startswith("arn:"):
        parts = task_arn.split(":")
        if len(parts) > 4:
            candidates["cloud.region"] = parts[3] or None
            candidates["cloud.account.id"] = parts[4] or None
    return {key: value for key, value in candidates.items() if value}


def _is_timeout(exc: BaseException) -> bool:
    """A socket timeout (bare, or wrapped by urllib): the endpoint did not answer."""
    import socket

    timeouts = (TimeoutError, socket.timeout)
    return isinstance(exc, timeouts) or isinstance(getattr(exc, "reason", None), timeouts)


def ecs_attributes(
    environ: Mapping[str, str], timeout: float = ECS_METADATA_TIMEOUT_SECONDS
) -> Dict[str, str]:
    """ECS attributes, or {} when not on ECS or the endpoint fails within `timeout`."""
    base = (environ.get(ENV_VAR) or "").strip().rstrip("/")
    if not base:
        return {}
    # imported on this thread: see dependencies.report_in_background
    import encodings.idna  # noqa: F401
    import urllib.request  # noqa: F401

    result: List[Dict[str, str]] = []
    errors: List[Exception] = []

    def fetch() -> None:
        try:
            container = _fetch_json(base, timeout)
            task = _fetch_json(f"{base}/task", timeout)
            result.append(attributes_from_documents(container, task))
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=fetch, name="lumigo-ecs-metadata", daemon=True)
    worker.start()
    worker.join(timeout)
    if result:
        return result[0]
    if errors and not _is_timeout(errors[0]):
        logger.warning("ECS metadata unavailable at %s: %s", base, errors[0])
    else:
        logger.warning("ECS metadata endpoint %s did not answer within %ss", base, timeout)
    return {}
