"""Which containers of a task definition to inject: app containers, not known sidecars.

Pure. Without `--containers`, every container is chosen except FireLens log routers, the
task's proxy and well-known sidecar or server images; a chosen container that cannot take the
layer (a mount over it, or a PYTHONPATH from a secret) is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lumigo_injector.ecs.taskdef import TaskDefinitionError, containers_of, image_registry
from lumigo_injector.spec.env import EXTENDED_VARIABLES, mount_conflict
from lumigo_injector.spec.names import INIT_CONTAINER_NAME

# Images of well-known sidecars that are never Python apps (matched on the repository path).
_SIDECAR_IMAGES = (
    "envoy",
    "fluent-bit",
    "fluentd",
    "aws-otel-collector",
    "opentelemetry-collector",
    "xray-daemon",
    "cloudwatch-agent",
    "datadog/agent",
)
# Official images of servers that are not Python apps (matched on the image's last path part).
_SERVER_IMAGES = frozenset(
    {
        "redis", "valkey", "memcached", "nginx", "httpd", "haproxy", "traefik", "postgres",
        "mysql", "mariadb", "mongo", "rabbitmq", "elasticsearch", "opensearch", "busybox",
    }
)  # fmt: skip


def select_containers(
    td: Mapping[str, Any], names: Sequence[str] | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """Choose the app containers to inject: `names`, or every container but known sidecars."""
    containers = [c for c in containers_of(td) if c["name"] != INIT_CONTAINER_NAME]
    if names is not None:
        known = {c["name"] for c in containers}
        unknown = [n for n in names if n not in known]
        if INIT_CONTAINER_NAME in names:
            raise TaskDefinitionError(f"'{INIT_CONTAINER_NAME}' is the injector's own container")
        if unknown:
            raise TaskDefinitionError(
                f"no container named {', '.join(map(repr, unknown))} "
                f"(containers: {', '.join(sorted(known))})"
            )
        wanted = set(names)
        selected = [c["name"] for c in containers if c["name"] in wanted]
        skipped = [
            (c["name"], "not named in --containers") for c in containers if c["name"] not in wanted
        ]
    else:
        selected, skipped = [], []
        for c in containers:
            reason = sidecar_reason(td, c)
            if reason:
                skipped.append((c["name"], f"{reason}; name it in --containers to inject it"))
            else:
                selected.append(c["name"])
    blocked = {c["name"]: r for c in containers if c["name"] in selected and (r := blocker(c))}
    if names is not None and blocked:
        raise TaskDefinitionError(
            "; ".join(f"container '{n}' cannot be injected: {r}" for n, r in blocked.items())
        )
    skipped += [(n, f"cannot be injected: {r}") for n, r in blocked.items()]
    selected = [n for n in selected if n not in blocked]
    if not selected:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped)
        raise TaskDefinitionError(f"no app container to inject ({reasons})")
    return selected, skipped


def blocker(container: Mapping[str, Any]) -> str:
    """Why an app container cannot be injected ('' when it can)."""
    for mount in container.get("mountPoints", []):
        conflict = mount_conflict(str(mount.get("containerPath", "")))
        if conflict:
            return conflict
    for secret in container.get("secrets", []):
        if secret.get("name") in EXTENDED_VARIABLES:
            return f"its {secret['name']} comes from a secret and cannot be extended"
    return ""


def sidecar_reason(td: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """Why a container is a sidecar rather than a Python app ('' when it looks like an app)."""
    if container.get("firelensConfiguration"):
        return "FireLens log router"
    if (td.get("proxyConfiguration") or {}).get("containerName") == container["name"]:
        return "the task's proxy (proxyConfiguration)"
    repository = str(container["image"]).split("@")[0].lower()
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    host, _, path = repository.partition("/")
    if path and image_registry(repository) == host:
        repository = path
    for marker in _SIDECAR_IMAGES:
        if marker in repository:
            return f"a known sidecar image ({marker})"
    last = repository.rsplit("/", 1)[-1]
    if last in _SERVER_IMAGES:
        return f"a known non-Python server image ({last})"
    return ""
