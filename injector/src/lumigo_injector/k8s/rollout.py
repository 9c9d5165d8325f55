"""Pure: the workload patches of the fleet's actions, and when a rollout has finished.

- `restart_patch`: what `kubectl rollout restart` does (a new `restartedAt` on the pod
  template), plus a `lumigo.io/restarted` record on the workload saying why and when.
- `pause_patch`: `lumigo.io/inject-paused: <reason>` plus the template change propagation
  makes for a paused workload (its template says `lumigo.io/inject: "false"`, the previous
  value recorded), so removing the pause restores the template exactly as removing the
  workload annotation does.
- `rollout_complete`: the workload reports every replica updated and available, and every
  pod it runs carries the restart stamp and is ready.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lumigo_injector.k8s import propagation
from lumigo_injector.k8s.fleet import ANNOTATION_RESTARTED_AT, PodFacts, parse_time
from lumigo_injector.spec import names as c
from lumigo_injector.spec.plain import annotations_of, as_map, plain_copy


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = plain_copy(value)
    return target


def restart_patch(kind: str, stamp: str, reason: str) -> dict[str, Any]:
    """A merge patch restarting the workload's pods (`stamp`: RFC 3339 time)."""
    template: dict[str, Any] = {"metadata": {"annotations": {ANNOTATION_RESTARTED_AT: stamp}}}
    for key in reversed(propagation.TEMPLATE_PATHS[kind]):
        template = {key: template}
    template["metadata"] = {"annotations": {c.ANNOTATION_RESTARTED: f"{reason} {stamp}"}}
    return template


def restart_stamp(workload: Mapping[str, Any]) -> str | None:
    """The `restartedAt` stamp of the fleet's last restart of this workload, from its record."""
    record = annotations_of(workload).get(c.ANNOTATION_RESTARTED)
    if not isinstance(record, str) or not record.strip():
        return None
    return record.split()[-1]


def last_restart(workload: Mapping[str, Any]) -> float | None:
    """When the fleet last restarted this workload (epoch seconds), from its record."""
    return parse_time(restart_stamp(workload))


def helped_by_restart(
    workload: Mapping[str, Any], pods: list[PodFacts], names: Iterable[str]
) -> list[str]:
    """Of the pods `names`, those a restart can still help: not started by our last restart.

    A pod that carries the stamp of our own last restart was admitted after it, so the webhook
    saw it and did not inject it (or injected another layer): restarting again would loop.
    """
    stamp = restart_stamp(workload)
    wanted = set(names)
    return sorted(
        p.name for p in pods if p.name in wanted and (stamp is None or p.restarted_at != stamp)
    )


def pause_patch(workload: Mapping[str, Any], kind: str, reason: str) -> dict[str, Any]:
    """A merge patch pausing injection of the workload, its template taken back."""
    patch: dict[str, Any] = {"metadata": {"annotations": {c.ANNOTATION_INJECT_PAUSED: reason}}}
    paused = _merge(plain_copy(workload), patch)
    change = propagation.plan(paused, kind)
    if change is not None:
        _merge(patch, change.patch)
    return patch


def _workload_available(workload: Mapping[str, Any], kind: str) -> bool:
    spec, status = as_map(workload.get("spec")), as_map(workload.get("status"))
    generation = as_map(workload.get("metadata")).get("generation")
    observed = status.get("observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return False
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        return bool(
            status.get("updatedNumberScheduled", 0) == desired
            and status.get("numberAvailable", 0) == desired
        )
    replicas = spec.get("replicas", 1)
    ready_key = "availableReplicas" if kind == "Deployment" else "readyReplicas"
    return bool(
        status.get("updatedReplicas", 0) == replicas
        and status.get(ready_key, 0) == replicas
        and status.get("replicas", replicas) == replicas
    )


def rollout_complete(
    workload: Mapping[str, Any], kind: str, pods: list[PodFacts], stamp: str
) -> bool:
    """Whether the restart stamped `stamp` has rolled out: all replicas new and available."""
    if not _workload_available(workload, kind):
        return False
    return bool(pods) and all(p.restarted_at == stamp and p.ready for p in pods)
