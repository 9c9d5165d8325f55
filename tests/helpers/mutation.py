"""Shared helpers for the mutation, naming and `inject -f` tests."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "manifests"
INVALID_FIXTURES = FIXTURES / "invalid"
WORKLOAD_KINDS = frozenset(
    {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
)


@cache
def k8s_versions() -> tuple[str, ...]:
    """The oldest Kubernetes version we promise (1.28) and the newest the validator knows."""
    return ("1.28", kubernetes_validate.latest_version())


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


def assert_valid(obj: Mapping[str, Any]) -> None:
    """Valid against the Kubernetes schema (strict) for every version we test, and sane.

    Also checks what the schema cannot: unique container and volume names, mounts that refer
    to existing volumes, no two mounts at one path.
    """
    for version in k8s_versions():
        try:
            kubernetes_validate.validate(dict(obj), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            message = f"invalid for Kubernetes {version} at {path}: {exc.message}"
            raise AssertionError(message) from None
    if obj.get("kind") not in WORKLOAD_KINDS:
        return
    spec = pod_spec(obj)
    containers = list(spec.get("initContainers") or []) + list(spec["containers"])
    names = [c["name"] for c in containers]
    assert len(names) == len(set(names)), f"duplicate container names: {names}"
    volumes = [v["name"] for v in spec.get("volumes") or []]
    assert len(volumes) == len(set(volumes)), f"duplicate volumes: {volumes}"
    for c in containers:
        paths = [m["mountPath"] for m in c.get("volumeMounts") or []]
        assert len(paths) == len(set(paths)), f"{c['name']}: duplicate mount paths {paths}"
        for mount in c.get("volumeMounts") or []:
            assert mount["name"] in volumes, f"{c['name']}: mount of unknown volume {mount}"


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_env(
    env: list[Mapping[str, Any]], pod_fields: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, str]:
    """The environment a container would see, computed the way the kubelet does it.

    Entries are resolved in order; `$(NAME)` expands to an earlier-defined variable (unknown
    references stay as written), `$$` is a literal `$`. `fieldRef` values come from
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
        raw = entry.get("value", "")

        def substitute(match: re.Match[str], known: dict[str, str] = result) -> str:
            if match.group(0) == "$$":
                return "$"
            ref = match.group(1)
            return known[ref] if ref in known else match.group(0)

        result[name] = _REFERENCE.sub(substitute, raw)
    return result


def parse_attributes(value: str) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES as the OpenTelemetry SDK reads it (a later duplicate wins)."""
    attributes: dict[str, str] = {}
    for part in value.split(","):
        if "=" in part:
            key, val = part.split("=", 1)
            attributes[key.strip()] = val.strip()
    return attributes
