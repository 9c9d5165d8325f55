"""`lumigo-injector serve` answering real AdmissionReview v1 requests over HTTPS.

One injector subprocess (module scope) runs against a kmock Kubernetes emulator; each test
uses its own namespace so that their Events and Secrets never mix.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest

from lumigo_injector.spec import names as c
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

TOKEN = "t-admission"
OWN_NAMESPACE = "lumigo-system"


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.create_namespace("ns-annotated", {c.ANNOTATION_INJECT: "python"})
        yield emulator


@pytest.fixture(scope="module")
def injector(
    kube: KubeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InjectorProcess]:
    workdir = tmp_path_factory.mktemp("webhook")
    certs = TestCertificates(workdir / "tls")
    env = {
        "LUMIGO_TRACER_TOKEN": TOKEN,
        "POD_NAMESPACE": OWN_NAMESPACE,
    }
    kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
    with running_injector(kubeconfig, certs, workdir, env=env) as process:
        yield process


def apply(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(pod, decode_patch(response), in_place=False)
    return patched


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def events_for(kube: KubeEmulator, namespace: str, count: int = 1) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (found := kube.events(namespace)) and len(found) >= count and found,
        what=f"{count} event(s) in {namespace}",
    )


def test_deployment_pod_without_name_or_namespace_is_injected(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    pod = deployment_pod("shop", annotations={c.ANNOTATION_INJECT: "python"})
    assert "name" not in pod["metadata"] and "namespace" not in pod["metadata"]
    original = copy.deepcopy(pod)
    kube.create_namespace("ns-deploy")

    response = injector.review(admission_review(pod, namespace="ns-deploy"))

    assert response["allowed"] is True
    patched = apply(pod, response)
    assert pod == original  # the patch is relative to exactly what was sent
    spec = patched["spec"]
    assert [v["name"] for v in spec["volumes"]] == [c.VOLUME_NAME]
    assert [ic["name"] for ic in spec["initContainers"]] == [c.INIT_CONTAINER_NAME]
    app = spec["containers"][0]
    env = container_env(app)
    assert env["PYTHONPATH"] == f"{c.BOOTSTRAP_PATH}:/app"  # user value kept after ours
    assert env["AUTOWRAPT_BOOTSTRAP"] == c.AUTOWRAPT_ENTRY_POINT
    assert env["LUMIGO_TRACER_TOKEN"]["secretKeyRef"]["name"] == c.DEFAULT_SECRET_NAME
    assert env["OTEL_SERVICE_NAME"] == "shop"  # from ReplicaSet shop-<hash> -> Deployment shop
    assert app["command"] == original["spec"]["containers"][0]["command"]
    assert patched["metadata"]["annotations"][c.ANNOTATION_INJECTED]
    assert patched["metadata"]["generateName"] == original["metadata"]["generateName"]
    for version in ("1.28", kubernetes_validate.latest_version()):
        kubernetes_validate.validate(patched, version, strict=True)

    # The Event goes to the owning ReplicaSet: the pod has no name (nor uid) yet.
    (event,) = events_for(kube, "ns-deploy")
    owner = original["metadata"]["ownerReferences"][0]
    assert event["reason"] == "LumigoInjected"
    assert event["type"] == "Normal"
    assert event["involvedObject"]["kind"] == "ReplicaSet"
    assert event["involvedObject"]["name"] == owner["name"]
    assert event["involvedObject"]["uid"] == owner["uid"]
    assert "shop-7d4b9c5f8d-*" in event["message"]

    # The token Secret is mirrored into the namespace the pod was injected in.
    secret = wait_for(
        lambda: kube.get(f"/api/v1/namespaces/ns-deploy/secrets/{c.DEFAULT_SECRET_NAME}"),
        what="mirrored Secret",
    )
    assert secret["metadata"]["labels"][c.LABEL_MANAGED_BY] == c.MANAGED_BY_VALUE

    # Admitting the injected pod again changes nothing (idempotent webhook).
    again = injector.review(admission_review(patched, namespace="ns-deploy"))
    assert decode_patch(again) == []


def test_namespace_annotation_injects_unless_pod_opts_out(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    plain = deployment_pod("api")
    opted_out = deployment_pod("batch", annotations={c.ANNOTATION_INJECT: "false"})

    injected = apply(plain, injector.review(admission_review(plain, namespace="ns-annotated")))
    untouched = injector.review(admission_review(opted_out, namespace="ns-annotated"))

    assert injected["metadata"]["annotations"][c.ANNOTATION_INJECTED]
    assert decode_patch(untouched) == []
    events = events_for(kube, "ns-annotated", count=2)
    reasons = {e["involvedObject"]["name"]: e["reason"] for e in events}
    assert reasons == {"api-7d4b9c5f8d": "LumigoInjected", "batch-7d4b9c5f8d": "LumigoSkipped"}


def test_namespace_label_counts_like_the_annotation(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create(
        "/api/v1/namespaces",
        {"metadata": {"name": "ns-labelled", "labels": {c.ANNOTATION_INJECT: "python"}}},
    )
    pod = deployment_pod("labelled")

    patched = apply(pod, injector.review(admission_review(pod, namespace="ns-labelled")))

    assert patched["metadata"]["annotations"][c.ANNOTATION_INJECTED]
    assert wait_for(
        lambda: kube.get(f"/api/v1/namespaces/ns-labelled/secrets/{c.DEFAULT_SECRET_NAME}"),
        what="Secret mirrored into the labelled namespace",
    )


def test_namespace_created_after_start_is_read_on_demand(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("ns-late", {c.ANNOTATION_INJECT: "python"})
    pod = deployment_pod("late")

    patched = apply(pod, injector.review(admission_review(pod, namespace="ns-late")))

    assert patched["metadata"]["annotations"][c.ANNOTATION_INJECTED]


def test_pod_that_never_asked_is_untouched_and_silent(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("ns-quiet")
    silent = deployment_pod("quiet")
    response = injector.review(admission_review(silent, namespace="ns-quiet"))
    assert response == {"uid": response["uid"], "allowed": True}

    # A second pod that does ask proves the Event queue ran: only its Event exists.
    named = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "solo", "annotations": {c.ANNOTATION_INJECT: "python"}},
        "spec": {"containers": [{"name": "solo", "image": "python:3.12"}]},
    }
    injector.review(admission_review(named, namespace="ns-quiet"))
    (event,) = events_for(kube, "ns-quiet")
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "solo",
        "namespace": "ns-quiet",
    }


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}, "expected kind AdmissionReview"),
        (
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
            "unsupported apiVersion",
        ),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "no request"),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}},
            "request.uid",
        ),
        (
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"uid": "u1", "operation": "CREATE", "kind": {"kind": "Pod"}},
            },
            "request.object is missing",
        ),
    ],
)
def test_malformed_review_is_rejected_with_400(
    injector: InjectorProcess, body: Any, complaint: str
) -> None:
    answer = injector.post(body)

    assert answer.status_code == 400
    assert complaint in answer.json()["error"]
    # ... and the server keeps serving.
    pod = deployment_pod("after", annotations={c.ANNOTATION_INJECT: "python"})
    assert decode_patch(injector.review(admission_review(pod, namespace="ns-annotated")))


def test_other_operations_kinds_and_namespaces_pass_through(injector: InjectorProcess) -> None:
    pod = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})

    update = injector.review(admission_review(pod, namespace="ns-annotated", operation="UPDATE"))
    other_kind = injector.review(admission_review(pod, namespace="ns-annotated", kind="Binding"))
    own = injector.review(admission_review(pod, namespace=OWN_NAMESPACE))
    system = injector.review(admission_review(pod, namespace="kube-system"))

    for response in (update, other_kind, own, system):
        assert response["allowed"] is True and "patch" not in response


def test_dry_run_is_patched_without_side_effects(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    kube.create_namespace("ns-dry")
    pod = deployment_pod("dry", annotations={c.ANNOTATION_INJECT: "python"})

    response = injector.review(admission_review(pod, namespace="ns-dry", dry_run=True))

    assert decode_patch(response)
    named = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "annotations": {c.ANNOTATION_INJECT: "false"}},
        "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
    }
    injector.review(admission_review(named, namespace="ns-dry"))
    (event,) = events_for(kube, "ns-dry")  # only the non-dry-run pod's Event
    assert event["involvedObject"]["name"] == "probe"
    assert kube.get(f"/api/v1/namespaces/ns-dry/secrets/{c.DEFAULT_SECRET_NAME}") is None


def test_logs_are_json_lines(injector: InjectorProcess) -> None:
    lines = [line for line in injector.logs().splitlines() if line.strip()]
    records = injector.log_records()

    assert lines and len(records) == len(lines)
    assert all({"message", "severity", "timestamp"} <= set(r) for r in records)
    assert TOKEN not in injector.logs()


def test_token_never_appears_in_pod_specs(injector: InjectorProcess) -> None:
    """The pod references the Secret; the token value itself is never written into a spec."""
    pod = deployment_pod("leak", annotations={c.ANNOTATION_INJECT: "python"})
    answer = injector.post(admission_review(pod, namespace="ns-annotated"))
    assert TOKEN not in answer.text
    assert TOKEN not in json.dumps(decode_patch(answer.json()["response"]))
