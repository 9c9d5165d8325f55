"""Shared helpers for the mutation, naming and `inject -f` tests."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from packaging.version import Version
from referencing import Registry, Resource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "manifests"
INVALID_FIXTURES = FIXTURES / "invalid"
WORKLOAD_KINDS = frozenset(
    {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
)


#: Image volumes (KEP-4639) are on by default from 1.35; the newest schema we check is 1.37.
IMAGE_VOLUME_VERSIONS = ("1.35", "1.37")


@cache
def k8s_versions() -> tuple[str, ...]:
    """The oldest Kubernetes version we promise (1.28), the chart's minimum (1.30) and the
    newest the validator knows."""
    return ("1.28", "1.30", kubernetes_validate.latest_version())


def has_image_volume(obj: Mapping[str, Any]) -> bool:
    """Whether the pod (template) inside `obj` has an image volume."""
    if obj.get("kind") not in WORKLOAD_KINDS:
        return False
    return any("image" in (v or {}) for v in pod_spec(obj).get("volumes") or [])


def versions_for(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The Kubernetes versions a manifest must be valid for: image-volume pods need 1.35+."""
    return IMAGE_VOLUME_VERSIONS if has_image_volume(obj) else k8s_versions()


def schema_error(obj: Mapping[str, Any], version: str) -> str | None:
    """The best-matching strict schema error of `obj` for Kubernetes `version`, or None."""
    validator = _validator(version, obj["kind"], obj["apiVersion"])
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(obj)))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path)
    return f"invalid for Kubernetes {version} at {path}: {error.message}"


def corpus_files() -> list[Path]:
    """The valid manifests of the corpus."""
    return sorted(p for p in FIXTURES.iterdir() if p.suffix in (".yaml", ".json"))


def load_file(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def workloads(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every document with a pod (template), Lists flattened."""
    for doc in documents:
        if doc.get("kind") == "List":
            yield from workloads(doc["items"])
        elif doc.get("kind") in WORKLOAD_KINDS:
            yield doc


def pod_template(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The dict holding `metadata` and `spec` of the pod inside `obj`."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj  # type: ignore[return-value]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]  # type: ignore[no-any-return]
    return obj["spec"]["template"]  # type: ignore[no-any-return]


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return pod_template(obj)["spec"]  # type: ignore[no-any-return]


def container(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    for candidate in pod_spec(obj)["containers"]:
        if candidate["name"] == name:
            return candidate  # type: ignore[no-any-return]
    raise AssertionError(f"no container {name!r}")


def env_of(obj: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    return list(container(obj, name).get("env", []))


@cache
def _validator(version: str, kind: str, api_version: str) -> Any:
    """A compiled strict validator from kubernetes-validate's schemas (its `validate` re-reads
    the large definitions file on every call, too slow for property tests)."""
    from kubernetes_validate import utils

    resolved = [v for v in utils.all_versions() if Version(v) <= Version(version)][-1]
    directory = f"kubernetes-json-schema/v{resolved}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = utils.schema_contents(f"{directory}/{kind.lower()}-{group_version}.json", version)
    definitions = utils.schema_contents(f"{directory}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def assert_valid(obj: Mapping[str, Any]) -> None:
    """Valid against the Kubernetes schema (strict) for every version it targets, and sane.

    Pods with an image volume are checked against 1.35 and 1.37, others against 1.28, 1.30
    and the newest (`versions_for`). Also checks what the schema cannot: unique container
    and volume names, mounts that refer to existing volumes, no two mounts at one path.
    """
    for version in versions_for(obj):
        error = schema_error(obj, version)
        if error is not None:
            raise AssertionError(error)
    if obj.get("kind") not in WORKLOAD_KINDS:
        return
    spec = pod_spec(obj)
    containers = list(spec.get("initContainers") or []) + list(spec["containers"])
    names = [c["name"] for c in containers]
    assert len(names) == len(set(names)), f"duplicate container names: {names}"
    volumes = [v["name"] for v in spec.get("volumes") or []]
    claims = obj["spec"].get("volumeClaimTemplates") if obj["kind"] == "StatefulSet" else None
    volumes += [claim["metadata"]["name"] for claim in claims or []]
    assert len(volumes) == len(set(volumes)), f"duplicate volumes: {volumes}"
    for c in containers:
        paths = [m["mountPath"] for m in c.get("volumeMounts") or []]
        assert len(paths) == len(set(paths)), f"{c['name']}: duplicate mount paths {paths}"
        for mount in c.get("volumeMounts") or []:
            assert mount["name"] in volumes, f"{c['name']}: mount of unknown volume {mount}"


def kubelet_expand(value: str, known: Mapping[str, str]) -> str:
    """Expand `$(NAME)` references exactly like the kubelet (its forked `expansion` package).

    `$$` is a literal `$`; `$(` scans to the next `)` and the text in between is the name,
    whatever it contains; an unknown name is written back as `$(name)`; `$(` without a `)`
    stays as written.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(value):
        if value[cursor] == "$" and cursor + 1 < len(value):
            out.append(value[checkpoint:cursor])
            rest = value[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(known.get(name, f"$({name})"))
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + value[checkpoint:]


def expand_env(
    env: list[Mapping[str, Any]], pod_fields: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, str]:
    """The environment a container would see, computed the way the kubelet does it.

    Entries are resolved in order, each expanded against the variables defined before it
    (`kubelet_expand`); a later duplicate overrides. `fieldRef` values come from
    `pod_fields` (e.g. {"metadata.name": "web-abc"}), `secretKeyRef` values from `secrets`
    ("name/key" -> value; a missing optional secret leaves the variable unset).
    """
    result: dict[str, str] = {}
    for entry in env:
        name = entry["name"]
        if "valueFrom" in entry:
            source = entry["valueFrom"]
            if "fieldRef" in source:
                result[name] = pod_fields[source["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = secrets.get(f"{ref['name']}/{ref['key']}")
                if value is None:
                    assert ref.get("optional") is True, f"{name}: required secret missing"
                    continue
                result[name] = value
            else:
                result[name] = f"<{name} from {next(iter(source))}>"
            continue
        result[name] = kubelet_expand(entry.get("value") or "", result)
    return result


def parse_attributes(value: str) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES as the OpenTelemetry SDK reads it (a later duplicate wins)."""
    attributes: dict[str, str] = {}
    for part in value.split(","):
        if "=" in part:
            key, val = part.split("=", 1)
            attributes[key.strip()] = val.strip()
    return attributes
