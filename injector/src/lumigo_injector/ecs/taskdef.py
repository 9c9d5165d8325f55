"""ECS task definitions as data: parse, normalise, validate, render and diff.

Pure: no AWS calls (`aws` makes them). The input is either the `RegisterTaskDefinition`
request shape or a `DescribeTaskDefinition` response; `normalise` brings both to the request
shape, and `validate` checks it against botocore's own ECS service model.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from lumigo_injector.spec.limits import InputError, loads_json

__all__ = [
    "TaskDefinitionError",
    "containers_of",
    "diff",
    "image_registry",
    "model_errors",
    "normalise",
    "normalise_container",
    "parse_task_definition",
    "read_only_fields",
    "register_input_shape",
    "render",
    "validate",
    "validate_secret_arn",
    "volumes_of",
]

# Wrapper keys of a DescribeTaskDefinition response (boto3 adds ResponseMetadata).
_RESPONSE_KEYS = frozenset({"taskDefinition", "tags", "ResponseMetadata"})

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
    except InputError as exc:  # nested beyond the bound, or a string that is not text
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


def containers_of(td: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The container definitions that are objects."""
    containers = td.get("containerDefinitions")
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def volumes_of(td: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The volumes that are objects."""
    volumes = td.get("volumes")
    return [v for v in volumes if isinstance(v, dict)] if isinstance(volumes, list) else []
