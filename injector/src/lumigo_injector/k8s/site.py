"""Where the pod is inside an object, and what its metadata says.

A Pod is its own pod; a workload (Deployment, CronJob, ...) holds a pod template at the path
`spec.workloads` gives for its kind. Pure, like every module of the mutation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lumigo_injector.spec import names as c
from lumigo_injector.spec.plain import as_map
from lumigo_injector.spec.workloads import POD_TEMPLATE_KINDS


@dataclass
class PodSite:
    """The pod (template) inside an object: the dict holding `metadata` and `spec`."""

    kind: str
    holder: dict[str, Any]
    outer_meta: Mapping[str, Any]


def locate(obj: dict[str, Any]) -> PodSite | str:
    """The pod site of `obj`, or the reason why there is none."""
    kind = obj.get("kind")
    if kind is None and isinstance(as_map(obj.get("spec")).get("containers"), list):
        kind = "Pod"
    if not isinstance(kind, str) or kind not in POD_TEMPLATE_KINDS:
        return f"kind {kind!r} has no pod template"
    holder: Any = obj
    for key in POD_TEMPLATE_KINDS[kind]:
        holder = holder.get(key) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or not isinstance(holder.get("spec"), dict):
        return f"{kind} has no pod spec"
    if not isinstance(holder["spec"].get("containers"), list):
        return f"{kind} has no containers"
    return PodSite(kind, holder, as_map(obj.get("metadata")))


def effective_annotations(site: PodSite) -> dict[str, Any]:
    """Pod annotations; for a workload, its own annotations overlaid by the template's."""
    pod = dict(as_map(as_map(site.holder.get("metadata")).get("annotations")))
    if site.kind == "Pod":
        return pod
    merged = dict(as_map(site.outer_meta.get("annotations")))
    merged.update(pod)
    return merged


def is_injected(pod_meta: Mapping[str, Any]) -> bool:
    """Whether this pod (template) metadata carries our `lumigo.io/injected` mark."""
    return c.ANNOTATION_INJECTED in as_map(as_map(pod_meta).get("annotations"))
