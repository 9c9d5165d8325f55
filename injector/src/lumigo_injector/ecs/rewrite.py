"""Rewrite an Amazon ECS task definition so its Python containers load the Lumigo layer.

Pure: plain dicts in, plain dicts out, no AWS calls (those live in `ecs.aws`). The input is
either the `RegisterTaskDefinition` request shape or a `DescribeTaskDefinition` response; the
output is always the `RegisterTaskDefinition` request shape, checked against botocore's own
ECS service model.

What `inject` adds, mirroring the Kubernetes mutation:

- a task-storage volume `lumigo-otel` (a bind mount without a host path, so it works on Fargate)
  and a non-essential container `lumigo-otel-init` that copies the layer into it and exits;
- in each chosen app container: the volume mounted read-only, `dependsOn` the init container
  with condition `SUCCESS`, `PYTHONPATH` and `AUTOWRAPT_BOOTSTRAP` merged with existing values,
  `OTEL_SERVICE_NAME` (the family, unless set), `LUMIGO_ENDPOINT` (when given) and the token
  `LUMIGO_TRACER_TOKEN` through `secrets` (never a plain value).

Two docker labels on each injected container record the layer version (`lumigo.io/injected`)
and, as JSON, the variables we added and the original values of those we changed
(`lumigo.io/injection-state`), so `uninject` gives back exactly the original. The init container
carries `lumigo.io/injected` too. A container named `lumigo-otel-init` or a volume named
`lumigo-otel` in a task definition that carries none of our labels is the user's: `inject`
refuses it (a clash, never a silent replacement) and `uninject` leaves it alone.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lumigo_injector.spec.env import (
    EXTENDED_VARIABLES,
    MERGES,
    UNMERGES,
    last_index,
    mount_conflict,
)
from lumigo_injector.spec.limits import InputError, loads_json
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

# Wrapper keys of a DescribeTaskDefinition response (boto3 adds ResponseMetadata).
_RESPONSE_KEYS = frozenset({"taskDefinition", "tags", "ResponseMetadata"})

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

_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d+"
_PARTITION = r"aws(?:-[a-z]+)*"
_SECRETS_MANAGER_ARN = re.compile(
    rf"^arn:{_PARTITION}:secretsmanager:{_REGION}:\d{{12}}:secret:[A-Za-z0-9/_+=.@-]+"
    r"(?::[^:\s]*){0,3}$"
)
_SSM_PARAMETER_ARN = re.compile(
    rf"^arn:{_PARTITION}:ssm:{_REGION}:\d{{12}}:parameter/[A-Za-z0-9/_.-]+$"
)


class TaskDefinitionError(ValueError):
    """A task definition (or an option) that cannot be used; the message says why."""


@dataclass(frozen=True)
class EcsSettings:
    """Options of one rewrite."""

    init_image: str = DEFAULT_INIT_IMAGE
    token_secret_arn: str | None = None
    endpoint: str | None = None
    containers: tuple[str, ...] | None = None  # None: every app container
    layer_version: str = DEFAULT_LAYER_VERSION


@dataclass(frozen=True)
class EcsResult:
    """The rewritten task definition and what happened to each container."""

    task_definition: dict[str, Any]
    injected: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (container name, reason)
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- service model


@functools.cache
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ecs")


def register_input_shape() -> Any:
    """botocore's shape of the RegisterTaskDefinition request."""
    return _service_model().operation_model("RegisterTaskDefinition").input_shape


@functools.cache
def read_only_fields() -> frozenset[str]:
    """Fields DescribeTaskDefinition returns that RegisterTaskDefinition does not accept."""
    described = set(_service_model().shape_for("TaskDefinition").members)
    return frozenset(described - set(register_input_shape().members))


def model_errors(task_definition: Mapping[str, Any]) -> str:
    """botocore's parameter-validation report for a request, or '' when it is valid."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(dict(task_definition), register_input_shape())
    return str(report.generate_report()) if report.has_errors() else ""


# --------------------------------------------------------------------------- input


def parse_task_definition(text: str, source: str = "input") -> dict[str, Any]:
    """Parse JSON text into a normalised, validated RegisterTaskDefinition request."""
    try:
        doc = loads_json(text)
    except json.JSONDecodeError as exc:
        raise TaskDefinitionError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except InputError as exc:
        raise TaskDefinitionError(f"{source}: {exc}") from None
    td = normalise(doc)
    validate(td)
    return td


def normalise(doc: Any) -> dict[str, Any]:
    """Bring either input shape to the RegisterTaskDefinition request shape.

    Unwraps a DescribeTaskDefinition response (keeping its `tags`), drops read-only fields
    (`taskDefinitionArn`, `revision`, `status`, ...) and drops null values and empty lists or
    objects at the task and container level, which ECS treats as absent anyway.
    """
    if not isinstance(doc, Mapping):
        raise TaskDefinitionError("a task definition must be a JSON object")
    tags: Any = None
    if isinstance(doc.get("taskDefinition"), Mapping):
        extra = sorted(set(doc) - _RESPONSE_KEYS)
        if extra:
            raise TaskDefinitionError(
                f"unknown field(s) next to 'taskDefinition': {', '.join(extra)}"
            )
        tags = doc.get("tags")
        doc = doc["taskDefinition"]
    ro = read_only_fields()
    td = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ro}
    if tags:
        td["tags"] = copy.deepcopy(tags)
    td = _drop_empty(td, _members("RegisterTaskDefinitionRequest"))
    containers = td.get("containerDefinitions")
    if isinstance(containers, list):
        known = _members("ContainerDefinition")
        td["containerDefinitions"] = [
            _drop_empty(c, known) if isinstance(c, Mapping) else c for c in containers
        ]
    return td


@functools.cache
def _members(shape: str) -> frozenset[str]:
    return frozenset(_service_model().shape_for(shape).members)


def normalise_container(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container definition without null values and empty lists or objects."""
    return _drop_empty(container, _members("ContainerDefinition"))


def _drop_empty(obj: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Drop empty known fields; unknown ones stay, for validation to report."""
    return {k: v for k, v in obj.items() if k not in known or not _is_empty(v)}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict)) and not value)


def validate(td: Mapping[str, Any]) -> None:
    """Raise TaskDefinitionError unless `td` is a usable RegisterTaskDefinition request."""
    family = td.get("family")
    if not isinstance(family, str) or not family:
        raise TaskDefinitionError("the task definition has no 'family'")
    containers = td.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise TaskDefinitionError("the task definition has no containers ('containerDefinitions')")
    names: set[str] = set()
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            raise TaskDefinitionError(f"containerDefinitions[{index}] is not an object")
        name = container.get("name")
        if not isinstance(name, str) or not name:
            raise TaskDefinitionError(f"containerDefinitions[{index}] has no 'name'")
        if not isinstance(container.get("image"), str) or not container["image"]:
            raise TaskDefinitionError(f"container '{name}' has no 'image'")
        if name in names:
            raise TaskDefinitionError(f"container name '{name}' is used twice")
        names.add(name)
    report = model_errors(td)
    if report:
        raise TaskDefinitionError(f"not a valid RegisterTaskDefinition request:\n{report}")


def validate_secret_arn(arn: str) -> str:
    """Return `arn` if it names a Secrets Manager secret or an SSM parameter."""
    if _SECRETS_MANAGER_ARN.match(arn) or _SSM_PARAMETER_ARN.match(arn):
        return arn
    raise TaskDefinitionError(
        "--token-secret-arn must be a Secrets Manager secret ARN "
        "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) or an SSM parameter ARN "
        f"(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME), got {arn!r}"
    )


def image_registry(image: str) -> str:
    """The registry host of an image reference (`docker.io` when none is named)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


# --------------------------------------------------------------------------- inject


def is_injected(td: Mapping[str, Any]) -> bool:
    """True when a container carries our `lumigo.io/injected` label (we injected this task)."""
    return any(
        isinstance(c.get("dockerLabels"), Mapping) and ANNOTATION_INJECTED in c["dockerLabels"]
        for c in _containers(td)
    )


def clashes(td: Mapping[str, Any]) -> list[str]:
    """The user's objects that carry one of our names (none when we injected the task)."""
    if is_injected(td):
        return []
    found = [f"a container named {INIT_CONTAINER_NAME!r}" for c in _containers(td)
             if c.get("name") == INIT_CONTAINER_NAME]  # fmt: skip
    found += [
        f"a volume named {VOLUME_NAME!r}" for v in _volumes(td) if v.get("name") == VOLUME_NAME
    ]
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
    return any(c.get("name") == INIT_CONTAINER_NAME for c in _containers(td))


def inject(td: Mapping[str, Any], settings: EcsSettings) -> EcsResult:
    """Return the injected copy of a task definition.

    Idempotent: an injected input is first uninjected, so re-injecting applies the current
    settings. Fields set on an existing `lumigo-otel-init` that we do not manage (by hand, or
    by ECS such as `cpu: 0`) are kept, so a described revision re-injects to itself.
    """
    td = normalise(td)
    validate(td)
    check_no_clash(td)
    previous_init = next((c for c in _containers(td) if c.get("name") == INIT_CONTAINER_NAME), {})
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


def select_containers(
    td: Mapping[str, Any], names: Sequence[str] | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """Choose the app containers to inject: `names`, or every container but known sidecars."""
    containers = [c for c in _containers(td) if c["name"] != INIT_CONTAINER_NAME]
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
    for container in _containers(td):
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
            return [
                f"container '{name}' already takes {ENV_TRACER_TOKEN} from {existing}; kept it"
            ]
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
    uses_secrets = any(c.get("secrets") for c in _containers(td))
    if uses_secrets and not td.get("executionRoleArn"):
        warnings.append(
            "the task definition has no executionRoleArn, so ECS cannot fetch its secrets "
            f"(such as {ENV_TRACER_TOKEN}); add an execution role that may read them"
        )
    init_registry = image_registry(settings.init_image)
    chosen = set(selected)
    seen: set[str] = set()
    for container in _containers(td):
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
    containers = [c for c in _containers(out) if c.get("name") != INIT_CONTAINER_NAME]
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
    return _drop_empty(out, _members("ContainerDefinition"))


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


# --------------------------------------------------------------------------- output


def render(td: Mapping[str, Any]) -> str:
    """The JSON text of a task definition, as written to stdout."""
    return json.dumps(td, indent=2) + "\n"


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], before_name: str, after_name: str
) -> str:
    """A unified diff of two task definitions' JSON ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            render(before).splitlines(keepends=True),
            render(after).splitlines(keepends=True),
            fromfile=before_name,
            tofile=after_name,
        )
    )


# --------------------------------------------------------------------------- helpers


def _containers(td: Mapping[str, Any]) -> list[dict[str, Any]]:
    containers = td.get("containerDefinitions")
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def _volumes(td: Mapping[str, Any]) -> list[dict[str, Any]]:
    volumes = td.get("volumes")
    return [v for v in volumes if isinstance(v, dict)] if isinstance(volumes, list) else []


def _value(env: Sequence[Mapping[str, Any]], name: str) -> str | None:
    i = last_index(env, name)
    return None if i is None else str(env[i].get("value", ""))


def _set(env: list[dict[str, Any]], name: str, value: str) -> None:
    i = last_index(env, name)
    assert i is not None
    env[i] = {**env[i], "value": value}
