"""The pure fleet rules: which pods are missed, outdated or crash-looping, when a rollout is to
be rolled back or has finished, and what the pause and restart patches do to a workload."""

from __future__ import annotations

import copy
from typing import Any

from lumigo_injector.k8s import fleet, propagation, rollout
from lumigo_injector.spec import names as c

T0 = "2027-01-15T08:00:00Z"


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def deployment(name: str = "web", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}},
        },
    }


def pod(
    name: str,
    *,
    workload: str = "web",
    version: str | None = None,
    ready: bool = True,
    crash: bool = False,
    asks: bool = True,
    created: str = T0,
) -> dict[str, Any]:
    annotations = {c.ANNOTATION_INJECT: "python"} if asks else {}
    if version:
        annotations[c.ANNOTATION_INJECTED] = version
    state = {"waiting": {"reason": "CrashLoopBackOff"}} if crash else {"running": {}}
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "creationTimestamp": created,
            "annotations": annotations,
            "labels": {"pod-template-hash": "abc12"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": f"{workload}-abc12", "controller": True}
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"state": state}],
        },
    }


def assess(workloads: list[dict[str, Any]], pods: list[dict[str, Any]], **kw: Any) -> Any:
    now = fleet.parse_time(T0)
    assert now is not None
    return fleet.assess(
        [("Deployment", w) for w in workloads],
        pods,
        kw.pop("namespaces", {}),
        kw.pop("layer", "2.0.0"),
        now=now + kw.pop("after", 60),
        **kw,
    )


def test_pods_asking_without_injection_are_missed_with_the_reason_from_our_events() -> None:
    event = {
        "reason": "LumigoInjectionFailed",
        "involvedObject": {"kind": "ReplicaSet", "name": "web-abc12"},
        "message": "pod web-abc12-*: injection failed: boom",
        "lastTimestamp": T0,
    }
    (report,) = assess(
        [deployment(**{c.ANNOTATION_INJECT: "python"})],
        [pod("web-1", version="2.0.0"), pod("web-2")],
        events=[event],
    )
    assert (report.injected, len(report.pods)) == (1, 2)
    assert report.missed == {"web-2": "pod web-abc12-*: injection failed: boom"}
    (no_event,) = assess([deployment(**{c.ANNOTATION_INJECT: "python"})], [pod("web-2")])
    assert no_event.missed == {"web-2": fleet.NO_ADMISSION}


def test_namespace_opt_in_makes_a_row_and_unasked_workloads_have_none() -> None:
    reports = assess(
        [deployment("a"), deployment("b", **{c.ANNOTATION_INJECT: "false"})],
        [pod("a-1", workload="a", asks=False)],
        namespaces={"shop": {c.ANNOTATION_INJECT: "python"}},
    )
    assert [r.name for r in reports] == ["a"]
    assert reports[0].missed == {"a-1": fleet.NO_ADMISSION}
    assert assess([deployment("a")], [pod("a-1", workload="a", asks=False)]) == []


def test_outdated_pods_and_versions() -> None:
    (report,) = assess(
        [deployment(**{c.ANNOTATION_INJECT: "python"})],
        [pod("web-1", version="1.0.0"), pod("web-2", version="2.0.0")],
    )
    assert report.outdated == ["web-1"]
    assert report.versions == {"1.0.0": 1, "2.0.0": 1}


def test_rollback_needs_injected_pods_failing_and_the_previous_revision_ready() -> None:
    annotated = deployment(**{c.ANNOTATION_INJECT: "python"})
    crashing = pod("web-new", version="2.0.0", ready=False, crash=True)
    (report,) = assess([annotated], [pod("web-old", asks=False), crashing])
    assert report.rollback == "injected pods crash-loop: web-new"
    # After an upgrade: the old layer ran, the new one crashes.
    (upgrade,) = assess([annotated], [pod("web-old", version="1.0.0"), crashing])
    assert upgrade.rollback is not None
    # Nothing ran before (every pod fails): the app is broken, not the injection.
    (alone,) = assess([annotated], [crashing])
    assert alone.rollback is None
    # Not ready past the progress deadline counts too; before the deadline it does not.
    slow = pod("web-new", version="2.0.0", ready=False)
    (late,) = assess([annotated], [pod("web-old", asks=False), slow], after=601)
    assert late.rollback == "injected pods not ready after 600s: web-new"
    (early,) = assess([annotated], [pod("web-old", asks=False), slow], after=599)
    assert early.rollback is None
    # Already paused: no second rollback.
    paused = deployment(**{c.ANNOTATION_INJECT: "python", c.ANNOTATION_INJECT_PAUSED: "x"})
    (again,) = assess([paused], [pod("web-old", asks=False), crashing])
    assert again.paused == "x" and again.rollback is None


def test_pause_takes_the_template_back_and_unpausing_restores_it_exactly() -> None:
    original = deployment(**{c.ANNOTATION_INJECT: "python"})
    propagated = merge(original, propagation.plan(original, "Deployment").patch)  # type: ignore[union-attr]
    assert propagated["spec"]["template"]["metadata"]["annotations"] == {
        c.ANNOTATION_INJECT: "python"
    }

    paused = merge(propagated, rollout.pause_patch(propagated, "Deployment", "crash"))
    assert paused["metadata"]["annotations"][c.ANNOTATION_INJECT_PAUSED] == "crash"
    assert paused["spec"]["template"]["metadata"]["annotations"] == {c.ANNOTATION_INJECT: "false"}
    assert propagation.plan(paused, "Deployment") is None  # level-triggered: in shape

    unpaused = merge(paused, {"metadata": {"annotations": {c.ANNOTATION_INJECT_PAUSED: None}}})
    retried = merge(unpaused, propagation.plan(unpaused, "Deployment").patch)  # type: ignore[union-attr]
    assert retried == propagated

    # Namespace opt-in (no workload annotation): the pause still stops injection, and
    # lifting it gives back the untouched template.
    plain = deployment()
    plain_paused = merge(plain, rollout.pause_patch(plain, "Deployment", "crash"))
    assert plain_paused["spec"]["template"]["metadata"]["annotations"] == {
        c.ANNOTATION_INJECT: "false"
    }
    lifted = merge(plain_paused, {"metadata": {"annotations": {c.ANNOTATION_INJECT_PAUSED: None}}})
    restored = merge(lifted, propagation.plan(lifted, "Deployment").patch)  # type: ignore[union-attr]
    assert restored == plain


def test_restart_patch_and_rollout_completion() -> None:
    workload = deployment()
    restarted = merge(workload, rollout.restart_patch("Deployment", T0, "upgrade"))
    template = restarted["spec"]["template"]["metadata"]["annotations"]
    assert template == {fleet.ANNOTATION_RESTARTED_AT: T0}
    assert rollout.last_restart(restarted) == fleet.parse_time(T0)
    assert rollout.last_restart(workload) is None

    def facts(stamp: str | None, ready: bool = True) -> fleet.PodFacts:
        return fleet.PodFacts("p", True, "2.0.0", ready, False, 1.0, stamp)

    restarted["metadata"]["generation"] = 3
    restarted["status"] = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                           "availableReplicas": 2}  # fmt: skip
    assert rollout.rollout_complete(restarted, "Deployment", [facts(T0), facts(T0)], T0)
    assert not rollout.rollout_complete(restarted, "Deployment", [facts(T0), facts(None)], T0)
    assert not rollout.rollout_complete(restarted, "Deployment", [facts(T0, ready=False)], T0)
    restarted["status"]["observedGeneration"] = 2  # the controller has not seen the change
    assert not rollout.rollout_complete(restarted, "Deployment", [facts(T0), facts(T0)], T0)


def test_pods_started_by_our_own_restart_are_not_restarted_again() -> None:
    """A pod the webhook saw after our restart and still skipped: restarting would loop."""
    workload = merge(deployment(), rollout.restart_patch("Deployment", T0, "catch-up"))
    before = fleet.PodFacts("web-old", True, None, True, False, 1.0, None)
    after = fleet.PodFacts("web-new", True, None, True, False, 1.0, T0)
    pods = [before, after]
    assert rollout.helped_by_restart(workload, pods, ["web-old", "web-new"]) == ["web-old"]
    assert rollout.helped_by_restart(workload, pods, ["web-new"]) == []
    assert rollout.helped_by_restart(deployment(), pods, ["web-new"]) == ["web-new"]
