"""What kmock lacks for fleet tests: a Deployment controller and a kubelet, stepped by the test.

`Cluster.step()` does, for every Deployment of the watched namespaces, what the real
controllers do, in small visible steps:

- the Deployment controller: a ReplicaSet per pod template (named `<deployment>-<hash>`, as
  Kubernetes names them), a rolling update with maxSurge 1 / maxUnavailable 0 (old pods go
  only as new ones become ready), `metadata.generation` bumped on a template change and the
  status (`observedGeneration`, `updatedReplicas`, `availableReplicas`) kept current;
- the API server's admission: each new pod is sent to the injector's webhook as an
  AdmissionReview and its JSONPatch applied, unless the webhook is "down" (`webhook=None`):
  then the pod is created as submitted, as with a failing-open webhook;
- the kubelet: a new pod is Pending, then Running; `behaviour(pod)` says whether its
  containers come up ready ("ok") or crash ("crash": CrashLoopBackOff, restarts counting up).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jsonpatch

from tests.helpers.kube import InjectorProcess, KubeRest, admission_review, decode_patch

Behaviour = Callable[[Mapping[str, Any]], str]


def now_stamp(offset: float = 0.0) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(
    name: str,
    *,
    replicas: int = 2,
    annotations: Mapping[str, str] | None = None,
    template_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment of a small Python web app."""
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": name, "image": "python:3.12-slim"}]},
    }
    if template_annotations:
        template["metadata"]["annotations"] = dict(template_annotations)
    meta: dict[str, Any] = {"name": name, "uid": str(uuid.uuid4()), "generation": 1}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    }


def injected(pod: Mapping[str, Any]) -> bool:
    return "lumigo.io/injected" in ((pod.get("metadata") or {}).get("annotations") or {})


def always_ok(_: Mapping[str, Any]) -> str:
    return "ok"


def crash_when_injected(pod: Mapping[str, Any]) -> str:
    return "crash" if injected(pod) else "ok"


class Cluster:
    """Steps Deployments, ReplicaSets and pods of `namespaces` in the emulator."""

    def __init__(self, kube: KubeRest, namespaces: list[str]) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.webhook: InjectorProcess | None = None
        self.behaviour: Behaviour = always_ok

    # --- reading --------------------------------------------------------------------------

    def deployments(self, namespace: str) -> list[dict[str, Any]]:
        return self.kube.items(f"/apis/apps/v1/namespaces/{namespace}/deployments")

    def pods(self, namespace: str, deployment: str | None = None) -> list[dict[str, Any]]:
        pods = self.kube.items(f"/api/v1/namespaces/{namespace}/pods")
        if deployment is None:
            return pods
        return [p for p in pods if p["metadata"]["name"].startswith(f"{deployment}-")]

    @staticmethod
    def template_hash(template: Mapping[str, Any]) -> str:
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
        return digest[:10]

    # --- stepping -------------------------------------------------------------------------

    def step(self, namespaces: list[str] | None = None) -> None:
        for namespace in namespaces or self.namespaces:
            for obj in self.deployments(namespace):
                self._deployment(namespace, obj)
            for pod in self.pods(namespace):
                self._kubelet(namespace, pod)

    def _deployment(self, namespace: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        template = obj["spec"]["template"]
        current = self.template_hash(template)
        generation = int(obj["metadata"].get("generation", 1))
        seen = (obj["metadata"].get("annotations") or {}).get("test/template-hash")
        if seen != current:
            generation += 1 if seen is not None else 0
            obj = self.kube.patch(
                path,
                {
                    "metadata": {
                        "generation": generation,
                        "annotations": {"test/template-hash": current},
                    }
                },
            )
        rs_name = f"{name}-{current}"
        rs_path = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
        if self.kube.get(f"{rs_path}/{rs_name}") is None:
            self.kube.create(
                rs_path,
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name,
                        "uid": str(uuid.uuid4()),
                        "labels": {"pod-template-hash": current},
                        "ownerReferences": [self._owner("apps/v1", "Deployment", obj)],
                    },
                    "spec": {"template": template},
                },
            )
        rs = self.kube.get(f"{rs_path}/{rs_name}")
        assert rs is not None
        pods = self.pods(namespace, name)
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == current]
        old = [p for p in pods if p not in new]
        replicas = int(obj["spec"].get("replicas", 1))
        ready_new = sum(1 for p in new if _ready(p))
        keep_old = max(0, replicas - ready_new)
        for pod in old[keep_old:]:
            self.kube.delete(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}")
        old = old[:keep_old]
        while len(new) < replicas and len(new) + len(old) < replicas + 1:
            new.append(self._create_pod(namespace, rs, template, current))
        available = sum(1 for p in new + old if _ready(p))
        status = {
            "observedGeneration": generation,
            "replicas": len(new) + len(old),
            "updatedReplicas": len(new),
            "readyReplicas": available,
            "availableReplicas": available,
        }
        self.kube.patch(path, {"status": status})

    @staticmethod
    def _owner(api_version: str, kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "kind": kind,
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"].get("uid", ""),
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _create_pod(
        self, namespace: str, rs: Mapping[str, Any], template: Mapping[str, Any], hash_: str
    ) -> dict[str, Any]:
        meta = copy.deepcopy(template.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), "pod-template-hash": hash_}
        meta["generateName"] = f"{rs['metadata']['name']}-"
        meta["ownerReferences"] = [self._owner("apps/v1", "ReplicaSet", rs)]
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": copy.deepcopy(template["spec"]),
        }
        if self.webhook is not None:  # the API server calls the webhook before storing
            response = self.webhook.review(admission_review(pod, namespace=namespace))
            assert response["allowed"] is True
            ops = decode_patch(response)
            if ops:
                pod = jsonpatch.apply_patch(pod, ops)
        pod["metadata"].pop("generateName")
        pod["metadata"]["name"] = f"{rs['metadata']['name']}-{uuid.uuid4().hex[:5]}"
        pod["metadata"]["uid"] = str(uuid.uuid4())
        pod["metadata"]["creationTimestamp"] = now_stamp()
        pod["status"] = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
        return self.kube.create(f"/api/v1/namespaces/{namespace}/pods", pod)

    def _kubelet(self, namespace: str, pod: dict[str, Any]) -> None:
        path = f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}"
        status = pod.get("status") or {}
        names = [c["name"] for c in pod["spec"]["containers"]]
        if self.behaviour(pod) == "ok":
            states = [
                {"name": n, "ready": True, "restartCount": 0,
                 "state": {"running": {"startedAt": now_stamp()}}}
                for n in names
            ]  # fmt: skip
            ready = "True"
        else:
            restarts = 1 + max(
                (c.get("restartCount", 0) for c in status.get("containerStatuses") or []),
                default=0,
            )
            states = [
                {"name": n, "ready": False, "restartCount": restarts,
                 "state": {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": "back-off restarting failed container"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}
                for n in names
            ]  # fmt: skip
            ready = "False"
        self.kube.patch(
            path,
            {
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": ready}],
                    "containerStatuses": states,
                }
            },
        )


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False
