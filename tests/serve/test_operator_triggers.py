"""The operator side of `lumigo-injector serve` against a kmock Kubernetes emulator:
workload annotations reach the pod template (and are taken back), state found at start-up is
reconciled, and the token Secret is mirrored without ever touching a user's own Secret."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from lumigo_injector.k8s.propagation import TEMPLATE_PATHS
from lumigo_injector.spec import names as c
from lumigo_injector.spec.names import ANNOTATION_TEMPLATE_PREVIOUS
from tests.helpers.kube import (
    InjectorProcess,
    KubeEmulator,
    TestCertificates,
    admission_review,
    decode_patch,
    deployment_pod,
    running_injector,
    wait_for,
)

TOKEN = "token-one"
SECRET = c.DEFAULT_SECRET_NAME
PLURALS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
}


def workload(
    kind: str,
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    pod_template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": name, "image": "python:3.12-slim"}]},
    }
    if template_annotations:
        pod_template["metadata"]["annotations"] = dict(template_annotations)
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": pod_template}
    if kind == "CronJob":
        pod_template["spec"]["restartPolicy"] = "OnFailure"
        spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": pod_template}}}
    group = "batch/v1" if kind == "CronJob" else "apps/v1"
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": group, "kind": kind, "metadata": meta, "spec": spec}


def template(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    node = obj
    for key in TEMPLATE_PATHS[kind]:
        node = node[key]
    return node


def template_annotations(obj: dict[str, Any], kind: str) -> dict[str, str]:
    return dict(template(obj, kind)["metadata"].get("annotations") or {})


def secret_token(kube: KubeEmulator, namespace: str) -> str | None:
    secret = kube.get(f"/api/v1/namespaces/{namespace}/secrets/{SECRET}")
    return base64.b64decode(secret["data"]["token"]).decode() if secret else None


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        # State left while the injector was down, reconciled when it starts.
        emulator.create_namespace("apps")
        deployments = PLURALS["Deployment"].format(ns="apps")
        emulator.create(
            deployments,
            workload("Deployment", "early", annotations={c.ANNOTATION_INJECT: "python"}),
        )
        emulator.create(
            deployments,
            workload(
                "Deployment",
                "unannotated-while-down",
                annotations={ANNOTATION_TEMPLATE_PREVIOUS: ""},
                template_annotations={c.ANNOTATION_INJECT: "python"},
            ),
        )
        # A user's own Secret of our name, in a namespace that asks for injection.
        emulator.create_namespace("byo", {c.ANNOTATION_INJECT: "python"})
        emulator.create(
            "/api/v1/namespaces/byo/secrets",
            {"metadata": {"name": SECRET}, "data": {"token": base64.b64encode(b"mine").decode()}},
        )
        # A Secret we made earlier with a token that has since been rotated.
        emulator.create_namespace("rotated")
        emulator.create(
            "/api/v1/namespaces/rotated/secrets",
            {
                "metadata": {
                    "name": SECRET,
                    "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE},
                },
                "data": {"token": base64.b64encode(b"old-token").decode()},
            },
        )
        yield emulator


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operator")


@pytest.fixture(scope="module")
def certs(workdir: Path) -> TestCertificates:
    return TestCertificates(workdir / "tls")


@pytest.fixture(scope="module")
def injector(
    kube: KubeEmulator, workdir: Path, certs: TestCertificates
) -> Iterator[InjectorProcess]:
    kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
    with running_injector(
        kubeconfig, certs, workdir, env={"LUMIGO_TRACER_TOKEN": TOKEN}
    ) as process:
        yield process


def test_reconcile_on_start_propagates_annotation(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    path = PLURALS["Deployment"].format(ns="apps") + "/early"

    early = wait_for(
        lambda: (
            (d := kube.get(path))
            and c.ANNOTATION_INJECT in template_annotations(d, "Deployment")
            and d
        ),
        what="early's template annotation",
    )

    assert template_annotations(early, "Deployment")[c.ANNOTATION_INJECT] == "python"
    assert early["metadata"]["annotations"][ANNOTATION_TEMPLATE_PREVIOUS] == ""
    assert wait_for(lambda: secret_token(kube, "apps"), what="Secret in apps") == TOKEN


def test_reconcile_on_start_takes_back_a_removed_annotation(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    path = PLURALS["Deployment"].format(ns="apps") + "/unannotated-while-down"

    restored = wait_for(
        lambda: (
            (d := kube.get(path))
            and ANNOTATION_TEMPLATE_PREVIOUS not in d["metadata"].get("annotations", {})
            and d
        ),
        what="the template annotation to be taken back",
    )

    assert c.ANNOTATION_INJECT not in template_annotations(restored, "Deployment")


@pytest.mark.parametrize("kind", sorted(PLURALS))
def test_annotating_a_workload_rolls_injection_out_and_back(
    injector: InjectorProcess, kube: KubeEmulator, kind: str
) -> None:
    namespace = f"roll-{kind.lower()}"
    kube.create_namespace(namespace)
    collection = PLURALS[kind].format(ns=namespace)
    original = kube.create(collection, workload(kind, "svc"))
    path = f"{collection}/svc"

    kube.patch(path, {"metadata": {"annotations": {c.ANNOTATION_INJECT: "python"}}})
    annotated = wait_for(
        lambda: (
            (d := kube.get(path)) and template_annotations(d, kind).get(c.ANNOTATION_INJECT) and d
        ),
        what=f"{kind} template annotation",
    )
    assert template_annotations(annotated, kind) == {c.ANNOTATION_INJECT: "python"}
    assert wait_for(lambda: secret_token(kube, namespace), what="mirrored Secret") == TOKEN

    # A pod of the new template is what the webhook then injects.
    pod = copy.deepcopy(template(annotated, kind))
    pod.update(apiVersion="v1", kind="Pod")
    assert decode_patch(injector.review(admission_review(pod, namespace=namespace)))

    kube.patch(path, {"metadata": {"annotations": {c.ANNOTATION_INJECT: None}}})
    rolled_back = wait_for(
        lambda: (
            (d := kube.get(path))
            and ANNOTATION_TEMPLATE_PREVIOUS not in d["metadata"].get("annotations", {})
            and d
        ),
        what=f"{kind} template annotation to be removed",
    )
    assert template(rolled_back, kind) == template(original, kind)
    assert rolled_back["metadata"].get("annotations", {}) == {}


def test_user_template_value_is_restored_on_removal(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("restore")
    collection = PLURALS["Deployment"].format(ns="restore")
    kube.create(
        collection,
        workload("Deployment", "opt", template_annotations={c.ANNOTATION_INJECT: "false"}),
    )
    path = f"{collection}/opt"

    kube.patch(path, {"metadata": {"annotations": {c.ANNOTATION_INJECT: "Python"}}})
    wait_for(
        lambda: (
            template_annotations(kube.get(path) or {}, "Deployment").get(c.ANNOTATION_INJECT)
            == "python"
        ),
        what="propagation over the user's 'false'",
    )
    kube.patch(path, {"metadata": {"annotations": {c.ANNOTATION_INJECT: None}}})

    wait_for(
        lambda: (
            template_annotations(kube.get(path) or {}, "Deployment").get(c.ANNOTATION_INJECT)
            == "false"
        ),
        what="the user's own value to come back",
    )


def test_unknown_workload_value_is_reported_and_not_propagated(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("typo")
    collection = PLURALS["DaemonSet"].format(ns="typo")
    kube.create(
        collection, workload("DaemonSet", "agent", annotations={c.ANNOTATION_INJECT: "pyhton"})
    )

    warning = wait_for(
        lambda: [r for r in injector.log_records() if r.get("workload") == "agent"],
        what="a warning about the unknown value",
    )

    assert warning[0]["severity"] == "warn" and "'pyhton'" in warning[0]["message"]
    agent = kube.get(f"{collection}/agent")
    assert agent and template_annotations(agent, "DaemonSet") == {}


def test_secret_mirroring_never_touches_a_user_secret(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("fresh", {c.ANNOTATION_INJECT: "python"})

    assert wait_for(lambda: secret_token(kube, "fresh"), what="Secret in fresh") == TOKEN
    fresh = kube.get(f"/api/v1/namespaces/fresh/secrets/{SECRET}")
    assert fresh and fresh["metadata"]["labels"] == {c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE}
    user = kube.get(f"/api/v1/namespaces/byo/secrets/{SECRET}")
    assert user and secret_token(kube, "byo") == "mine"
    assert "labels" not in user["metadata"]
    left_alone = [
        r
        for r in injector.log_records()
        if r.get("namespace") == "byo" and r.get("action") == "foreign"
    ]
    assert left_alone


def test_rotated_token_updates_managed_secrets_at_start(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    assert wait_for(lambda: secret_token(kube, "rotated") == TOKEN, what="rotation")
    assert secret_token(kube, "byo") == "mine"


def test_two_replicas_converge_without_errors(
    injector: InjectorProcess, kube: KubeEmulator, workdir: Path, certs: TestCertificates
) -> None:
    kubeconfig = workdir / "kubeconfig"
    with running_injector(kubeconfig, certs, workdir, env={"LUMIGO_TRACER_TOKEN": TOKEN}) as twin:
        kube.create_namespace("pair", {c.ANNOTATION_INJECT: "python"})
        collection = PLURALS["StatefulSet"].format(ns="pair")
        kube.create(
            collection, workload("StatefulSet", "db", annotations={c.ANNOTATION_INJECT: "python"})
        )

        db = wait_for(
            lambda: (
                (d := kube.get(f"{collection}/db"))
                and template_annotations(d, "StatefulSet").get(c.ANNOTATION_INJECT)
                and d
            ),
            what="propagation with two replicas",
        )
        assert wait_for(lambda: secret_token(kube, "pair"), what="Secret in pair") == TOKEN

        pod = deployment_pod("db")
        first = decode_patch(injector.review(admission_review(pod, namespace="pair")))
        second = decode_patch(twin.review(admission_review(pod, namespace="pair")))
        assert first and first == second
        assert template_annotations(db, "StatefulSet") == {c.ANNOTATION_INJECT: "python"}
        secrets = kube.items("/api/v1/namespaces/pair/secrets")
        assert [s["metadata"]["name"] for s in secrets] == [SECRET]

    for process in (injector, twin):
        errors = [r for r in process.log_records() if r["severity"] in ("error", "fatal")]
        assert errors == [], errors
    # Standalone: no peering objects are read or written, replicas do not coordinate.
    assert not [path for path in kube.requested_paths() if "peering" in path]


def test_enable_logs_on_a_workload_reaches_the_template_and_the_pods_env(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("logs")
    collection = PLURALS["Deployment"].format(ns="logs")
    original = kube.create(collection, workload("Deployment", "talker"))
    path = f"{collection}/talker"

    kube.patch(path, {"metadata": {"annotations": {c.ANNOTATION_ENABLE_LOGS: "true"}}})
    annotated = wait_for(
        lambda: (
            (d := kube.get(path))
            and template_annotations(d, "Deployment").get(c.ANNOTATION_ENABLE_LOGS)
            and d
        ),
        what="the enable-logs template annotation",
    )
    # A pod of that template, asking for injection, gets the variables from the webhook.
    pod = copy.deepcopy(template(annotated, "Deployment"))
    pod.update(apiVersion="v1", kind="Pod")
    pod["metadata"]["annotations"][c.ANNOTATION_INJECT] = "python"
    response = injector.review(admission_review(pod, namespace="logs"))
    injected = jsonpatch.apply_patch(pod, decode_patch(response), in_place=False)
    env = {e["name"]: e.get("value") for e in injected["spec"]["containers"][0]["env"]}
    assert env[c.ENV_ENABLE_LOGS] == "true"
    assert env[c.ENV_CONTAINER_NAME] == "talker"

    kube.patch(path, {"metadata": {"annotations": {c.ANNOTATION_ENABLE_LOGS: None}}})
    rolled_back = wait_for(
        lambda: (
            (d := kube.get(path))
            and c.ANNOTATION_ENABLE_LOGS_TEMPLATE_PREVIOUS
            not in d["metadata"].get("annotations", {})
            and d
        ),
        what="the enable-logs template annotation to be taken back",
    )
    assert template(rolled_back, "Deployment") == template(original, "Deployment")
