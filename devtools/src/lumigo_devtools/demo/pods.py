"""Run a (mutated) workload's container as a local process, the way its pod would run.

Pure part: `plan_container()` turns a pod template plus local stand-ins (where each
volume lives on disk, which ports and service addresses to use, values for the
downward API and Secrets) into a `LocalProcess`: argv, env, cwd. Kubernetes rules
are kept: env entries in order, `$(VAR)` expanded from earlier entries, `valueFrom`
resolved from stand-ins, mount paths mapped to local directories.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class PlanError(ValueError):
    """The spec uses something the local run can't stand in for."""


@dataclass(frozen=True)
class StandIns:
    """Local replacements for what a cluster would provide."""

    mounts: Mapping[str, str]  # container mountPath -> local directory
    field_refs: Mapping[str, str]  # e.g. metadata.name -> "frontend-6d9f-x2x7q"
    secrets: Mapping[tuple[str, str], str]  # (secret name, key) -> value
    rewrites: Mapping[str, str] = field(default_factory=dict)  # "http://orders:8000" -> local
    overrides: Mapping[str, str] = field(default_factory=dict)  # env forced for the local run


@dataclass(frozen=True)
class LocalProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str | None


def _expand(value: str, env: Mapping[str, str]) -> str:
    # Kubernetes: $(VAR) expands from earlier entries; unknown references stay as written.
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def _map_paths(value: str, stand_ins: StandIns) -> str:
    for mount, local in sorted(stand_ins.mounts.items(), key=lambda kv: -len(kv[0])):
        value = re.sub(rf"(?<![\w/.-]){re.escape(mount)}(?=/|:|$|\s|\")", local, value)
    for old, new in stand_ins.rewrites.items():
        value = value.replace(old, new)
    return value


def _resolve(entry: Mapping[str, Any], env: Mapping[str, str], stand_ins: StandIns) -> str | None:
    if "valueFrom" not in entry:
        return _map_paths(_expand(str(entry.get("value", "")), env), stand_ins)
    source = entry["valueFrom"]
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        if path not in stand_ins.field_refs:
            raise PlanError(f"no local stand-in for fieldRef {path}")
        return stand_ins.field_refs[path]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        value = stand_ins.secrets.get((ref["name"], ref["key"]))
        if value is None and not ref.get("optional"):
            raise PlanError(f"no local stand-in for Secret {ref['name']}/{ref['key']}")
        return value
    raise PlanError(f"unsupported valueFrom {sorted(source)} in env {entry.get('name')}")


def plan_container(
    container: Mapping[str, Any], stand_ins: StandIns, base_env: Mapping[str, str]
) -> LocalProcess:
    """The local process for one container of a pod spec."""
    env: dict[str, str] = dict(base_env)
    for entry in container.get("env", []):
        value = _resolve(entry, env, stand_ins)
        if value is not None:
            env[entry["name"]] = value
    env.update(stand_ins.overrides)
    argv = [
        _map_paths(_expand(str(a), env), stand_ins)
        for a in [*container.get("command", []), *container.get("args", [])]
    ]
    if not argv:
        raise PlanError(f"container {container.get('name')} has no command (image default)")
    workdir = container.get("workingDir")
    return LocalProcess(
        name=str(container.get("name")),
        argv=argv,
        env=env,
        cwd=_map_paths(workdir, stand_ins) if workdir else None,
    )
