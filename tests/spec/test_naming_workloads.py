"""Service names and workload attributes from metadata alone (lumigo_injector.spec.naming)."""

from __future__ import annotations

from typing import Any

import pytest

from lumigo_injector.spec.naming import (
    Workload,
    controller_reference,
    service_name,
    workload_attributes,
    workload_chain,
)


def owner(kind: str, name: str, controller: bool | None = True) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u-" + name}
    if controller is not None:
        ref["controller"] = controller
    return ref


def pod_meta(*owners: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {"generateName": "x-", "ownerReferences": list(owners), "labels": labels}


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            pod_meta(owner("ReplicaSet", "web-7d4b9c"), **{"pod-template-hash": "7d4b9c"}),
            (Workload("ReplicaSet", "web-7d4b9c"), Workload("Deployment", "web")),
        ),
        (
            pod_meta(
                owner("ReplicaSet", "my-api-v2-5f6d8b9c7"), **{"pod-template-hash": "5f6d8b9c7"}
            ),
            (Workload("ReplicaSet", "my-api-v2-5f6d8b9c7"), Workload("Deployment", "my-api-v2")),
        ),
        # No hash label (a bare ReplicaSet) or one that does not match: the ReplicaSet itself.
        (pod_meta(owner("ReplicaSet", "web-7d4b9c")), (Workload("ReplicaSet", "web-7d4b9c"),)),
        (
            pod_meta(owner("ReplicaSet", "web-7d4b9c"), **{"pod-template-hash": "aaaaaa"}),
            (Workload("ReplicaSet", "web-7d4b9c"),),
        ),
        (
            pod_meta(owner("Job", "nightly-report-28976540")),
            (Workload("Job", "nightly-report-28976540"), Workload("CronJob", "nightly-report")),
        ),
        (pod_meta(owner("Job", "migrate-1")), (Workload("Job", "migrate-1"),)),
        (pod_meta(owner("StatefulSet", "ledger")), (Workload("StatefulSet", "ledger"),)),
        (pod_meta(owner("DaemonSet", "node-agent")), (Workload("DaemonSet", "node-agent"),)),
        # Static (mirror) pods are owned by their Node: not a workload.
        (pod_meta(owner("Node", "node-3")), ()),
        (pod_meta(), ()),
    ],
)
def test_pod_workload_chain(meta: dict[str, Any], expected: tuple[Workload, ...]) -> None:
    assert workload_chain("Pod", meta) == expected


def test_controller_owner_wins_over_other_owners() -> None:
    meta = pod_meta(owner("ConfigMap", "cm", controller=None), owner("StatefulSet", "db"))
    assert controller_reference(meta) == owner("StatefulSet", "db")
    assert workload_chain("Pod", meta) == (Workload("StatefulSet", "db"),)


def test_first_owner_when_none_is_controller() -> None:
    meta = pod_meta(owner("DaemonSet", "a", controller=None), owner("Job", "b", controller=False))
    assert workload_chain("Pod", meta) == (Workload("DaemonSet", "a"),)


@pytest.mark.parametrize("bad", [None, "x", [1, "two"], {"kind": "Job"}])
def test_malformed_owner_references_are_ignored(bad: Any) -> None:
    assert workload_chain("Pod", {"ownerReferences": bad}) == ()


def test_workload_objects_name_themselves_and_their_owner() -> None:
    assert workload_chain("Deployment", {"name": "web"}) == (Workload("Deployment", "web"),)
    job = {"name": "nightly-28976540", "ownerReferences": [owner("CronJob", "nightly")]}
    assert workload_chain("Job", job) == (
        Workload("Job", "nightly-28976540"),
        Workload("CronJob", "nightly"),
    )
    replica_set = {"name": "web-7d4b9c", "ownerReferences": [owner("Deployment", "web")]}
    assert workload_chain("ReplicaSet", replica_set)[-1] == Workload("Deployment", "web")


def test_workload_attributes_use_semantic_convention_keys() -> None:
    chain = (Workload("ReplicaSet", "web-7d4b9c"), Workload("Deployment", "web"))
    assert workload_attributes(chain) == [
        ("k8s.replicaset.name", "web-7d4b9c"),
        ("k8s.deployment.name", "web"),
    ]
    assert workload_attributes((Workload("ReplicationController", "rc"),)) == []
    cron = (Workload("Job", "n-28976540"), Workload("CronJob", "n"))
    assert dict(workload_attributes(cron)) == {
        "k8s.job.name": "n-28976540",
        "k8s.cronjob.name": "n",
    }


@pytest.mark.parametrize(
    ("annotations", "labels", "chain", "meta", "expected"),
    [
        (
            {"lumigo.io/service-name": " checkout "},
            {"app.kubernetes.io/name": "x"},
            (),
            {},
            "checkout",
        ),
        ({"lumigo.io/service-name": "  "}, {"app.kubernetes.io/name": "shop"}, (), {}, "shop"),
        (
            {},
            {"app": "ignored"},
            (Workload("ReplicaSet", "w-1"), Workload("Deployment", "w")),
            {},
            "w",
        ),
        ({}, {}, (), {"name": "debug-shell", "generateName": "zz-"}, "debug-shell"),
        ({}, {}, (), {"generateName": "batch-runner-"}, "batch-runner"),
        ({}, {}, (), {"generateName": "-"}, None),
        ({}, {}, (), {}, None),
    ],
)
def test_service_name_precedence(
    annotations: dict[str, str],
    labels: dict[str, str],
    chain: tuple[Workload, ...],
    meta: dict[str, Any],
    expected: str | None,
) -> None:
    assert service_name(annotations, labels, chain, meta) == expected
