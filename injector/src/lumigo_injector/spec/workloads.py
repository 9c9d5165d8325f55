"""The Kubernetes kinds the injector knows: one table, read by every part that needs a kind.

For each kind: where it keeps its pod template, its API group/version/resource (for the
operator's watches), the OpenTelemetry resource attribute naming it, and whether the operator
copies its `lumigo.io/inject` annotation onto its template. A new kind is one row here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkloadKind:
    """One kind of object that is, or holds, a pod template."""

    kind: str
    #: Keys leading from the object to its pod template; () when the object is the pod.
    template_path: tuple[str, ...]
    group: str
    version: str
    resource: str
    #: Resource attribute (semantic conventions) naming an object of this kind, if any.
    attribute: str | None
    #: Whether the operator propagates the workload's annotation onto its pod template.
    propagated: bool = False


_TEMPLATE = ("spec", "template")

KINDS: Mapping[str, WorkloadKind] = {
    k.kind: k
    for k in (
        WorkloadKind("Pod", (), "", "v1", "pods", None),
        WorkloadKind("Deployment", _TEMPLATE, "apps", "v1", "deployments",
                     "k8s.deployment.name", propagated=True),
        WorkloadKind("StatefulSet", _TEMPLATE, "apps", "v1", "statefulsets",
                     "k8s.statefulset.name", propagated=True),
        WorkloadKind("DaemonSet", _TEMPLATE, "apps", "v1", "daemonsets",
                     "k8s.daemonset.name", propagated=True),
        WorkloadKind("ReplicaSet", _TEMPLATE, "apps", "v1", "replicasets",
                     "k8s.replicaset.name"),
        WorkloadKind("ReplicationController", _TEMPLATE, "", "v1", "replicationcontrollers",
                     None),
        WorkloadKind("Job", _TEMPLATE, "batch", "v1", "jobs", "k8s.job.name"),
        WorkloadKind("CronJob", ("spec", "jobTemplate", "spec", "template"), "batch", "v1",
                     "cronjobs", "k8s.cronjob.name", propagated=True),
    )
}  # fmt: skip

#: Where each kind keeps its pod template (the Pod itself: ()).
POD_TEMPLATE_KINDS: Mapping[str, tuple[str, ...]] = {k: w.template_path for k, w in KINDS.items()}
#: The workloads whose `lumigo.io/inject` annotation the operator copies onto the template.
PROPAGATED_KINDS: tuple[WorkloadKind, ...] = tuple(w for w in KINDS.values() if w.propagated)
#: Resource attribute naming each workload kind.
WORKLOAD_ATTRIBUTES: Mapping[str, str] = {
    k: w.attribute for k, w in KINDS.items() if w.attribute is not None
}
#: Owner kinds whose name is a sensible service name (every workload but the Pod).
SERVICE_OWNER_KINDS = frozenset(k for k in KINDS if k != "Pod")
