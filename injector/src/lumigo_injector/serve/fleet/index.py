"""The pods and fleet workloads the operator has seen, kept small, fed by kopf watch events.

Only what `k8s.fleet` reads is kept: names, owner references, the pod-template-hash label,
our annotations and `restartedAt`, creation/deletion times and the container states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lumigo_injector.k8s.fleet import ANNOTATION_RESTARTED_AT
from lumigo_injector.spec import names as c
from lumigo_injector.spec.naming import LABEL_POD_TEMPLATE_HASH
from lumigo_injector.spec.plain import as_list, as_map, plain_copy

_POD_ANNOTATIONS = (c.ANNOTATION_INJECT, c.ANNOTATION_INJECTED, ANNOTATION_RESTARTED_AT)
_META = ("name", "namespace", "creationTimestamp", "deletionTimestamp", "ownerReferences")

Key = tuple[str, str]  # (namespace, name)


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a pod the fleet reads."""
    meta = as_map(pod.get("metadata"))
    annotations = as_map(meta.get("annotations"))
    labels = as_map(meta.get("labels"))
    status = as_map(pod.get("status"))
    slim_meta: dict[str, Any] = {k: plain_copy(meta[k]) for k in _META if k in meta}
    slim_meta["annotations"] = {k: annotations[k] for k in _POD_ANNOTATIONS if k in annotations}
    if LABEL_POD_TEMPLATE_HASH in labels:
        slim_meta["labels"] = {LABEL_POD_TEMPLATE_HASH: labels[LABEL_POD_TEMPLATE_HASH]}

    def states(key: str) -> list[dict[str, Any]]:
        return [{"state": plain_copy(as_map(s).get("state"))} for s in as_list(status.get(key))]

    slim_status = {
        "phase": status.get("phase"),
        "conditions": [
            plain_copy(cond)
            for cond in as_list(status.get("conditions"))
            if as_map(cond).get("type") == "Ready"
        ],
        "containerStatuses": states("containerStatuses"),
        "initContainerStatuses": states("initContainerStatuses"),
    }
    return {"metadata": slim_meta, "status": slim_status}


class FleetIndex:
    """Current pods and workloads by namespace and name (call on the event loop)."""

    def __init__(self) -> None:
        self.pods: dict[Key, dict[str, Any]] = {}
        self.workloads: dict[str, dict[Key, dict[str, Any]]] = {}

    def pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = _key(body)
        if event_type == "DELETED":
            self.pods.pop(key, None)
        else:
            self.pods[key] = slim_pod(body)

    def workload_event(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        objects = self.workloads.setdefault(kind, {})
        key = _key(body)
        if event_type == "DELETED":
            objects.pop(key, None)
        else:
            objects[key] = plain_copy(body)

    def workload(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.workloads.get(kind, {}).get((namespace, name))

    def all_workloads(self) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, obj) for kind, objs in self.workloads.items() for obj in objs.values()]


def _key(body: Mapping[str, Any]) -> Key:
    meta = as_map(body.get("metadata"))
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
