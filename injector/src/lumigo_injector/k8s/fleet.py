"""Pure: what a workload's running pods say about injection (the facts behind `status`,
the metrics, catch-up, upgrades and crash-loop rollback).

Input is plain objects as the API returns them (workloads, pods, namespace annotations, our
Events); output is one `WorkloadReport` per workload that asks for injection (by its own
annotation, its template's or its namespace's) or is paused by a rollback. No I/O, no clock:
the caller passes `now` (epoch seconds), so the operator and `lumigo-injector status` decide
alike on the same objects.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lumigo_injector.k8s import propagation
from lumigo_injector.spec import names as c
from lumigo_injector.spec.inject import inject_value, wants_injection
from lumigo_injector.spec.naming import workload_chain
from lumigo_injector.spec.plain import annotations_of, as_list, as_map, text

#: Workloads whose pods the fleet checks, and that `kubectl rollout restart` can restart.
FLEET_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
#: Set on the pod template by `kubectl rollout restart` (and by catch-up and upgrades).
ANNOTATION_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
#: A Deployment's default `spec.progressDeadlineSeconds`; used for the other kinds too.
DEFAULT_PROGRESS_DEADLINE = 600.0
NO_ADMISSION = "no admission record (created while the webhook was unavailable?)"
OUR_EVENT_REASONS = ("LumigoInjectionFailed", "LumigoSkipped")

Key = tuple[str, str, str]  # (namespace, kind, name)


@dataclass(frozen=True)
class PodFacts:
    """One pod, as far as injection goes."""

    name: str
    asks: bool
    version: str | None  # the `lumigo.io/injected` layer version, None when not injected
    ready: bool
    crash_looping: bool
    age: float  # seconds since creation (0 when unknown)
    restarted_at: str | None


@dataclass
class WorkloadReport:
    """Injection facts of one workload's pods."""

    namespace: str
    kind: str
    name: str
    asks: bool
    paused: str | None = None
    pods: list[PodFacts] = field(default_factory=list)
    #: Pods that ask for injection and are not injected, with why.
    missed: dict[str, str] = field(default_factory=dict)
    #: Injected pods whose layer version is not the injector's.
    outdated: list[str] = field(default_factory=list)
    #: Why the workload should be rolled back (None: it should not).
    rollback: str | None = None

    @property
    def key(self) -> Key:
        return (self.namespace, self.kind, self.name)

    @property
    def injected(self) -> int:
        return sum(1 for pod in self.pods if pod.version is not None)

    @property
    def versions(self) -> dict[str, int]:
        counts = Counter(pod.version for pod in self.pods if pod.version is not None)
        return dict(sorted(counts.items()))

    def as_json(self) -> dict[str, Any]:
        """The JSON form used by `status -o json`."""
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "pods": len(self.pods),
            "injected": self.injected,
            "versions": self.versions,
            "notInjected": [{"pod": p, "reason": r} for p, r in sorted(self.missed.items())],
            "outdated": sorted(self.outdated),
            "crashLooping": sorted(p.name for p in self.pods if p.crash_looping),
            "paused": self.paused,
        }


def parse_time(value: Any) -> float | None:
    """An RFC 3339 timestamp (`2026-01-02T03:04:05Z`) as epoch seconds; None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def owner_of(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the fleet workload a pod belongs to, from its owner references."""
    chain = workload_chain("Pod", as_map(pod.get("metadata")))
    if chain and chain[-1].kind in FLEET_KINDS:
        return chain[-1].kind, chain[-1].name
    return None


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = as_map(pod.get("status"))
    found = as_list(status.get("initContainerStatuses")) + as_list(status.get("containerStatuses"))
    return [as_map(s) for s in found]


def crash_looping(pod: Mapping[str, Any]) -> bool:
    """Whether a container of the pod is in CrashLoopBackOff (or its init container fails)."""
    for status in _statuses(pod):
        waiting = as_map(as_map(status.get("state")).get("waiting"))
        if waiting.get("reason") in ("CrashLoopBackOff", "CreateContainerConfigError"):
            return True
    return False


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's Ready condition is True."""
    for condition in as_list(as_map(pod.get("status")).get("conditions")):
        condition = as_map(condition)
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def pod_facts(
    pod: Mapping[str, Any], namespace_annotations: Mapping[str, Any] | None, now: float
) -> PodFacts:
    meta = as_map(pod.get("metadata"))
    annotations = annotations_of(pod)
    version = annotations.get(c.ANNOTATION_INJECTED)
    created = parse_time(meta.get("creationTimestamp"))
    return PodFacts(
        name=str(meta.get("name") or "<unnamed>"),
        asks=wants_injection(meta, namespace_annotations, inject_all=False),
        version=version if isinstance(version, str) and version else None,
        ready=is_ready(pod),
        crash_looping=crash_looping(pod),
        age=max(0.0, now - created) if created is not None else 0.0,
        restarted_at=text(annotations.get(ANNOTATION_RESTARTED_AT)),
    )


def workload_asks(
    workload: Mapping[str, Any], kind: str, namespace_annotations: Mapping[str, Any] | None
) -> bool:
    """Whether the workload's pods ask for injection (own, template or namespace annotation)."""
    template = annotations_of(propagation.template_of(workload, kind))
    merged = {**annotations_of(workload), **template}
    if inject_value(annotations_of(workload)) is not None:
        merged[c.ANNOTATION_INJECT] = annotations_of(workload)[c.ANNOTATION_INJECT]
    return wants_injection({"annotations": merged}, namespace_annotations, inject_all=False)


def paused_reason(workload: Mapping[str, Any]) -> str | None:
    """The `lumigo.io/inject-paused` reason on a workload, None when not paused."""
    value = annotations_of(workload).get(c.ANNOTATION_INJECT_PAUSED)
    return value if isinstance(value, str) else None


def event_reasons(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(involved kind, name) -> the message of our latest failed/skipped admission Event."""
    latest: dict[tuple[str, str], tuple[float, str]] = {}
    for event in events:
        if event.get("reason") not in OUR_EVENT_REASONS:
            continue
        involved = as_map(event.get("involvedObject"))
        key = (str(involved.get("kind")), str(involved.get("name")))
        when = parse_time(event.get("lastTimestamp")) or 0.0
        if key not in latest or when >= latest[key][0]:
            latest[key] = (when, str(event.get("message") or event.get("reason")))
    return {key: message for key, (_, message) in latest.items()}


def _why_missed(pod: Mapping[str, Any], reasons: Mapping[tuple[str, str], str]) -> str:
    meta = as_map(pod.get("metadata"))
    found = reasons.get(("Pod", str(meta.get("name"))))
    if found is None:
        for owner in workload_chain("Pod", meta)[:1]:
            found = reasons.get((owner.kind, owner.name))
    return found or NO_ADMISSION


def progress_deadline(workload: Mapping[str, Any]) -> float:
    value = as_map(workload.get("spec")).get("progressDeadlineSeconds")
    return float(value) if isinstance(value, int) and value > 0 else DEFAULT_PROGRESS_DEADLINE


def rollback_reason(report: WorkloadReport, layer_version: str, deadline: float) -> str | None:
    """Why the injected rollout of this workload should be rolled back, or None.

    It should when pods injected with the current layer crash-loop (or stay unready past the
    progress deadline) while a pod of the previous revision (uninjected, or another layer)
    is ready: the workload ran before, and injection (or the new layer) broke it.
    """
    if report.paused is not None:
        return None
    current = [p for p in report.pods if p.version == layer_version]
    ran_before = any(p.ready and p.version != layer_version for p in report.pods)
    if not current or not ran_before:
        return None
    crashing = sorted(p.name for p in current if p.crash_looping)
    if crashing:
        return f"injected pods crash-loop: {', '.join(crashing)}"
    stuck = sorted(p.name for p in current if not p.ready and p.age > deadline)
    if stuck:
        return f"injected pods not ready after {deadline:g}s: {', '.join(stuck)}"
    return None


def assess(
    workloads: Iterable[tuple[str, Mapping[str, Any]]],
    pods: Iterable[Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, Any]],
    layer_version: str,
    *,
    now: float,
    events: Iterable[Mapping[str, Any]] = (),
) -> list[WorkloadReport]:
    """One report per workload that asks for injection or is paused, sorted by key.

    `workloads` are (kind, object) pairs of `FLEET_KINDS`; `namespaces` maps a namespace name
    to its annotations (the label opt-in counted, see `namespaces.opt_in_view`).
    """
    reasons = event_reasons(events)
    reports: dict[Key, WorkloadReport] = {}
    objects: dict[Key, Mapping[str, Any]] = {}
    for kind, workload in workloads:
        meta = as_map(workload.get("metadata"))
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        ns_annotations = namespaces.get(namespace)
        asks = workload_asks(workload, kind, ns_annotations)
        paused = paused_reason(workload)
        if asks or paused is not None:
            report = WorkloadReport(namespace, kind, name, asks, paused)
            reports[report.key] = report
            objects[report.key] = workload
    for pod in pods:
        meta = as_map(pod.get("metadata"))
        owner = owner_of(pod)
        if owner is None or as_map(pod.get("status")).get("phase") in ("Succeeded", "Failed"):
            continue
        if meta.get("deletionTimestamp"):
            continue
        namespace = str(meta.get("namespace") or "")
        owned = reports.get((namespace, *owner))
        if owned is None:
            continue
        report = owned
        facts = pod_facts(pod, namespaces.get(namespace), now)
        report.pods.append(facts)
        if facts.asks and facts.version is None:
            report.missed[facts.name] = _why_missed(pod, reasons)
        elif facts.version is not None and facts.version != layer_version:
            report.outdated.append(facts.name)
    for key, report in reports.items():
        report.rollback = rollback_reason(report, layer_version, progress_deadline(objects[key]))
    return [reports[key] for key in sorted(reports)]
