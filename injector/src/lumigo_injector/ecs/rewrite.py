"""Rewrite an Amazon ECS task definition so its Python containers load the Lumigo layer.

Pure: plain dicts in, plain dicts out, no AWS calls (those live in `ecs.aws`). Input and
output are `RegisterTaskDefinition` requests; `taskdef` parses, normalises and validates them
against botocore's own ECS service model.

What `inject` adds, by the rules of `spec/` that the Kubernetes mutation follows too:

- a task-storage volume `lumigo-otel` (a bind mount without a host path, so it works on Fargate)
  and a non-essential container `lumigo-otel-init` that copies the layer into it and exits;
- in each chosen app container: the volume mounted read-only, `dependsOn` the init container
  with condition `SUCCESS`, `PYTHONPATH` and `AUTOWRAPT_BOOTSTRAP` merged with existing values,
  `OTEL_SERVICE_NAME` (the family, unless set), `LUMIGO_ENDPOINT` (when given),
  `LUMIGO_CONTAINER_NAME` (the container's name) and `LUMIGO_ENABLE_LOGS=true` (with
  `enable_logs`), each unless set, and the token `LUMIGO_TRACER_TOKEN` through `secrets` (never
  a plain value).

Two docker labels on each injected container record the layer version (`lumigo.io/injected`)
and, as JSON, the variables we added and the original values of those we changed
(`lumigo.io/injection-state`), so `uninject` gives back exactly the original. The init container
carries `lumigo.io/injected` too. A container named `lumigo-otel-init` or a volume named
`lumigo-otel` in a task definition that carries none of our labels is the user's: `inject`
refuses it (a clash, never a silent replacement) and `uninject` leaves it alone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lumigo_injector.ecs.containers import select_containers
from lumigo_injector.ecs.taskdef import (
    TaskDefinitionError,
    containers_of,
    image_registry,
    model_errors,
    normalise,
    normalise_container,
    validate,
    validate_secret_arn,
    volumes_of,
)
from lumigo_injector.spec.env import (
    MERGES,
    UNMERGES,
    container_variables,
    last_index,
)
from lumigo_injector.spec.names import (
    ANNOTATION_INJECTED,
    ANNOTATION_INJECTION_STATE,
    DEFAULT_INIT_IMAGE,
    DEFAULT_LAYER_VERSION,
    ENV_AUTOWRAPT_BOOTSTRAP,
    ENV_ENDPOINT,
    ENV_PYTHONPATH,
    ENV_SERVICE_NAME,
    ENV_TRACER_TOKEN,
    INIT_CONTAINER_NAME,
    MOUNT_PATH,
    VOLUME_NAME,
)

# The two docker labels on an injected container carry the annotation keys of Kubernetes:
# `lumigo.io/injected` (the layer version) and `lumigo.io/injection-state` (JSON record of the
# variables we added and the original values of those we changed).

MAX_CONTAINERS = 10  # ECS limit of container definitions per task definition
INIT_MEMORY_RESERVATION_MIB = 64  # only set when the task has no task-level memory (EC2)


@dataclass(frozen=True)
class EcsSettings:
    """Options of one rewrite."""

    init_image: str = DEFAULT_INIT_IMAGE
    token_secret_arn: str | None = None
    endpoint: str | None = None
    containers: tuple[str, ...] | None = None  # None: every app container
    layer_version: str = DEFAULT_LAYER_VERSION
    enable_logs: bool = False  # LUMIGO_ENABLE_LOGS=true in the injected containers


@dataclass(frozen=True)
class EcsResult:
    """The rewritten task definition and what happened to each container."""

    task_definition: dict[str, Any]
    injected: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (container name, reason)
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- inject


def is_injected(td: Mapping[str, Any]) -> bool:
    """True when a container carries our `lumigo.io/injected` label (we injected this task)."""
    return any(
        isinstance(c.get("dockerLabels"), Mapping) and ANNOTATION_INJECTED in c["dockerLabels"]
        for c in containers_of(td)
    )


def clashes(td: Mapping[str, Any]) -> list[str]:
    """The user's objects that carry one of our names (none when we injected the task)."""
    if is_injected(td):
        return []
    found = [f"a container named {INIT_CONTAINER_NAME!r}" for c in containers_of(td)
             if c.get("name") == INIT_CONTAINER_NAME]  # fmt: skip
    found += [f"a volume named {VOLUME_NAME!r}" for v in volumes_of(td)
              if v.get("name") == VOLUME_NAME]  # fmt: skip
    return found


def check_no_clash(td: Mapping[str, Any]) -> None:
    """Raise TaskDefinitionError when the user's own objects use the injector's names."""
    found = clashes(td)
    if found:
        raise TaskDefinitionError(
            f"the task definition already has {' and '.join(found)}, not made by the injector "
            "(no lumigo.io/injected label); injecting would replace it: rename it first"
        )


def has_init_container(td: Mapping[str, Any]) -> bool:
    """True when the task definition carries our init container."""
    return any(c.get("name") == INIT_CONTAINER_NAME for c in containers_of(td))


def inject(td: Mapping[str, Any], settings: EcsSettings) -> EcsResult:
    """Return the injected copy of a task definition.

    Idempotent: an injected input is first uninjected, so re-injecting applies the current
    settings. Fields set on an existing `lumigo-otel-init` that we do not manage (by hand, or
    by ECS such as `cpu: 0`) are kept, so a described revision re-injects to itself.
    """
    td = normalise(td)
    validate(td)
    check_no_clash(td)
    previous_init = next((c for c in containers_of(td) if c.get("name") == INIT_CONTAINER_NAME), {})
    base = uninject(td)
    validate(base)
    if settings.token_secret_arn is not None:
        validate_secret_arn(settings.token_secret_arn)
    _check_supported(base)

    selected, skipped = select_containers(base, settings.containers)
    out = copy.deepcopy(base)
    warnings: list[str] = []
    for container in out["containerDefinitions"]:
        if container["name"] in selected:
            warnings.extend(_inject_container(container, out["family"], settings))
    init = {**normalise_container(previous_init), **_init_container(out, settings)}
    out["containerDefinitions"].insert(0, init)
    out["volumes"] = [*out.get("volumes", []), {"name": VOLUME_NAME}]
    warnings.extend(_task_warnings(out, selected, settings))
    report = model_errors(out)
    if report:  # a bug of ours, never the user's input (that was validated above)
        raise AssertionError(f"injected task definition fails the ECS model:\n{report}")
    return EcsResult(out, tuple(selected), tuple(skipped), tuple(warnings))


def _check_supported(td: Mapping[str, Any]) -> None:
    family = str((td.get("runtimePlatform") or {}).get("operatingSystemFamily", "LINUX"))
    if family.upper().startswith("WINDOWS"):
        raise TaskDefinitionError(
            f"operating system family {family} is not supported (the layer is Linux-only)"
        )
    if len(td["containerDefinitions"]) >= MAX_CONTAINERS:
        raise TaskDefinitionError(
            f"the task definition already has {MAX_CONTAINERS} containers, the ECS maximum; "
            f"there is no room for '{INIT_CONTAINER_NAME}'"
        )


def _init_container(td: Mapping[str, Any], settings: EcsSettings) -> dict[str, Any]:
    init: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": settings.init_image,
        "essential": False,
        # marks it as ours: a container of this name without the label is the user's
        "dockerLabels": {ANNOTATION_INJECTED: settings.layer_version},
        "command": [MOUNT_PATH],  # the entrypoint copies the layer into its first argument
        # ECS task storage starts as a root-owned 0755 directory (unlike a Kubernetes emptyDir),
        # so the copy runs as root; it writes nothing but the volume.
        "user": "0",
        "readonlyRootFilesystem": True,
        "mountPoints": [
            {"sourceVolume": VOLUME_NAME, "containerPath": MOUNT_PATH, "readOnly": False}
        ],
    }
    if not td.get("memory"):
        init["memoryReservation"] = INIT_MEMORY_RESERVATION_MIB
    log = _awslogs_configuration(td)
    if log is not None:
        init["logConfiguration"] = log
    return init


def _awslogs_configuration(td: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first app container's awslogs configuration, so init failures show up there too."""
    for container in containers_of(td):
        log = container.get("logConfiguration") or {}
        if log.get("logDriver") == "awslogs" and container["name"] != INIT_CONTAINER_NAME:
            return {"logDriver": "awslogs", "options": dict(log.get("options", {}))}
    return None


def _inject_container(container: dict[str, Any], family: str, settings: EcsSettings) -> list[str]:
    name = container["name"]
    warnings: list[str] = []
    container["mountPoints"] = [
        *container.get("mountPoints", []),
        {"sourceVolume": VOLUME_NAME, "containerPath": MOUNT_PATH, "readOnly": True},
    ]
    container["dependsOn"] = [
        *container.get("dependsOn", []),
        {"containerName": INIT_CONTAINER_NAME, "condition": "SUCCESS"},
    ]
    env: list[dict[str, Any]] = list(container.get("environment", []))
    secrets: list[dict[str, Any]] = list(container.get("secrets", []))
    record: dict[str, Any] = {"added": [], "changed": {}}

    for var, merge in MERGES.items():
        current = _value(env, var)
        if current is None:
            env.append({"name": var, "value": merge("")})
            record["added"].append(var)
        elif merge(current) != current:
            _set(env, var, merge(current))
            record["changed"][var] = current

    if _value(env, ENV_SERVICE_NAME) is None and last_index(secrets, ENV_SERVICE_NAME) is None:
        env.append({"name": ENV_SERVICE_NAME, "value": family})
        record["added"].append(ENV_SERVICE_NAME)

    if settings.endpoint is not None:
        current = _value(env, ENV_ENDPOINT)
        if current is None and last_index(secrets, ENV_ENDPOINT) is not None:
            warnings.append(f"container '{name}' takes {ENV_ENDPOINT} from a secret; kept it")
        elif current is None:
            env.append({"name": ENV_ENDPOINT, "value": settings.endpoint})
            record["added"].append(ENV_ENDPOINT)
        elif current != settings.endpoint:
            warnings.append(f"container '{name}' already sets {ENV_ENDPOINT}={current}; kept it")

    for var, value in container_variables(name, settings.enable_logs):
        if _value(env, var) is None and last_index(secrets, var) is None:
            env.append({"name": var, "value": value})
            record["added"].append(var)

    warnings.extend(_inject_token(name, env, secrets, settings, record["added"]))
    if container.get("environmentFiles"):
        warnings.append(
            f"container '{name}' reads environmentFiles: values set in 'environment' win over "
            f"them, so a {ENV_PYTHONPATH} or {ENV_AUTOWRAPT_BOOTSTRAP} set only in those files is "
            "replaced; move such a variable to 'environment' before injecting"
        )

    container["environment"] = env
    if secrets:
        container["secrets"] = secrets
    labels = dict(container.get("dockerLabels", {}))
    labels[ANNOTATION_INJECTED] = settings.layer_version
    labels[ANNOTATION_INJECTION_STATE] = json.dumps(record, separators=(",", ":"))
    container["dockerLabels"] = labels
    return warnings


def _inject_token(
    name: str,
    env: list[dict[str, Any]],
    secrets: list[dict[str, Any]],
    settings: EcsSettings,
    added: list[str],
) -> list[str]:
    plain = _value(env, ENV_TRACER_TOKEN) is not None
    index = last_index(secrets, ENV_TRACER_TOKEN)
    if plain:
        return [
            f"container '{name}' has {ENV_TRACER_TOKEN} as a plain environment value; "
            "move it to 'secrets' (for example with --token-secret-arn)"
        ]
    if index is not None:
        existing = secrets[index].get("valueFrom")
        if settings.token_secret_arn and existing != settings.token_secret_arn:
            return [f"container '{name}' already takes {ENV_TRACER_TOKEN} from {existing}; kept it"]
        return []
    if settings.token_secret_arn is None:
        return [
            f"container '{name}' gets no {ENV_TRACER_TOKEN}: pass --token-secret-arn, "
            "or spans are sent without a Lumigo token"
        ]
    secrets.append({"name": ENV_TRACER_TOKEN, "valueFrom": settings.token_secret_arn})
    added.append(ENV_TRACER_TOKEN)
    return []


def _task_warnings(
    td: Mapping[str, Any], selected: Iterable[str], settings: EcsSettings
) -> list[str]:
    warnings: list[str] = []
    uses_secrets = any(c.get("secrets") for c in containers_of(td))
    if uses_secrets and not td.get("executionRoleArn"):
        warnings.append(
            "the task definition has no executionRoleArn, so ECS cannot fetch its secrets "
            f"(such as {ENV_TRACER_TOKEN}); add an execution role that may read them"
        )
    init_registry = image_registry(settings.init_image)
    chosen = set(selected)
    seen: set[str] = set()
    for container in containers_of(td):
        if container["name"] not in chosen:
            continue
        registry = image_registry(str(container["image"]))
        if registry != init_registry and registry not in seen:
            seen.add(registry)
            warnings.append(
                f"the init image comes from {init_registry} but container "
                f"'{container['name']}' from {registry}: make sure the task can pull from "
                f"{init_registry} too (network route, VPC endpoints, registry credentials)"
            )
    return warnings


# --------------------------------------------------------------------------- uninject


def uninject(td: Mapping[str, Any]) -> dict[str, Any]:
    """Remove everything `inject` added; the inverse of `inject` on a normalised input.

    A task definition we did not inject comes back unchanged, whatever its objects are called.
    """
    out = normalise(td)
    if not is_injected(out):
        return out
    containers = [c for c in containers_of(out) if c.get("name") != INIT_CONTAINER_NAME]
    out["containerDefinitions"] = [_uninject_container(c) for c in containers]
    volumes = [v for v in out.get("volumes", []) if v.get("name") != VOLUME_NAME]
    out["volumes"] = volumes
    return normalise(out)


def _uninject_container(container: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(container)
    out["mountPoints"] = [
        m for m in out.get("mountPoints", []) if m.get("sourceVolume") != VOLUME_NAME
    ]
    out["dependsOn"] = [
        d for d in out.get("dependsOn", []) if d.get("containerName") != INIT_CONTAINER_NAME
    ]
    labels = dict(out.get("dockerLabels", {}))
    labels.pop(ANNOTATION_INJECTED, None)
    state = labels.pop(ANNOTATION_INJECTION_STATE, None)
    out["dockerLabels"] = labels
    env = list(out.get("environment", []))
    secrets = list(out.get("secrets", []))
    mounted = len(out["mountPoints"]) < len(container.get("mountPoints", []))
    record = _parse_state(state)
    if record is None and mounted:
        # Our mount without a readable record (hand-edited): undo only the unambiguous parts.
        for var in MERGES:
            current = _value(env, var)
            if current is not None:
                stripped = UNMERGES[var](current)
                if stripped is None:
                    env = [e for e in env if e.get("name") != var]
                else:
                    _set(env, var, stripped)
    for var in (record or {}).get("added", []):
        if var == ENV_TRACER_TOKEN:
            secrets = [s for s in secrets if s.get("name") != var]
        else:
            env = [e for e in env if e.get("name") != var]
    for var, original in (record or {}).get("changed", {}).items():
        current = _value(env, var)
        if current is not None and var in MERGES:
            if current == MERGES[var](original):
                _set(env, var, original)
            else:  # edited after injection: keep the edit, drop our part
                _set(env, var, UNMERGES[var](current) or "")
    out["environment"] = env
    out["secrets"] = secrets
    return normalise_container(out)


def _parse_state(label: str | None) -> dict[str, Any] | None:
    if label is None:
        return None
    try:
        record = json.loads(label)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    added = [v for v in record.get("added", []) if isinstance(v, str)]
    changed = record.get("changed", {})
    changed = (
        {k: v for k, v in changed.items() if isinstance(v, str)}
        if isinstance(changed, dict)
        else {}
    )
    return {"added": added, "changed": changed}


def _value(env: Sequence[Mapping[str, Any]], name: str) -> str | None:
    i = last_index(env, name)
    return None if i is None else str(env[i].get("value", ""))


def _set(env: list[dict[str, Any]], name: str, value: str) -> None:
    i = last_index(env, name)
    assert i is not None
    env[i] = {**env[i], "value": value}
