"""Varied pods for the mutation's equivalence test: the corpus and hand-made odd cases.

Each case is (name, object, settings, namespace annotations). `outcome` turns `inject`'s
result into plain JSON text (key order kept), the bytes the equivalence test pins.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.spec.delivery import IMAGE_VOLUME, INIT_CONTAINER
from tests.helpers.kube import deployment_pod
from tests.helpers.mutation import corpus_files, load_file

Case = tuple[str, dict[str, Any], InjectionSettings, dict[str, str] | None]

_ASK = {"lumigo.io/inject": "python"}
_SETTINGS = {
    "default": InjectionSettings(),
    "endpoint": InjectionSettings(endpoint="http://collector:4318/$(X)", layer_version="0.2.0"),
    "image": InjectionSettings(delivery=IMAGE_VOLUME, secret_name="s", secret_key="k"),
    "all": InjectionSettings(inject_all=True, endpoint="http://c:4318"),
}


def _pod(
    env: list[Any] | None = None, annotations: dict[str, str] | None = None, **container: Any
) -> dict[str, Any]:
    pod = deployment_pod("web", annotations={**_ASK, **(annotations or {})})
    pod["metadata"]["ownerReferences"][0]["uid"] = "644270e4-15c2-48f7-bb47-3be55c4c60ff"
    ct = pod["spec"]["containers"][0]
    ct["env"] = env
    if env is None:
        del ct["env"]
    ct.update(container)
    return pod


def _hand_made() -> Iterator[tuple[str, dict[str, Any], dict[str, str] | None]]:
    yield "bench", _pod([{"name": "PYTHONPATH", "value": "/app"}]), None
    yield "no-env", _pod(None), None
    null_env = _pod(None)
    null_env["spec"]["containers"][0]["env"] = None
    yield "null-env", null_env, None
    yield "empty-env", _pod([]), None
    yield "envfrom", _pod(None, envFrom=[{"configMapRef": {"name": "cfg"}}]), None
    yield (
        "envfrom-pythonpath",
        _pod([{"name": "PYTHONPATH", "value": "/a"}], envFrom=[{"secretRef": {"name": "s"}}]),
        None,
    )
    yield (
        "ours-set",
        _pod(
            [
                {"name": "PYTHONPATH", "value": "/lumigo-otel/bootstrap:/x"},
                {"name": "AUTOWRAPT_BOOTSTRAP", "value": "other,"},
                {"name": "LUMIGO_TRACER_TOKEN", "value": "t"},
                {"name": "OTEL_SERVICE_NAME", "value": "mine"},
                {"name": "LUMIGO_CONTAINER_NAME", "value": "c"},
                {"name": "LUMIGO_K8S_POD_NAME", "value": "p"},
                {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "k8s.pod.name=x, team=a,"},
                {"name": "LUMIGO_ENDPOINT"},
            ]
        ),
        None,
    )
    yield (
        "attrs-first",
        _pod(
            [
                {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=1"},
                {"name": "X", "value": "1.5"},
                {"name": "PYTHONPATH", "value": None},
                {"name": "AUTOWRAPT_BOOTSTRAP", "value": "  "},
                {"name": "PYTHONPATH", "value": ""},
            ]
        ),
        None,
    )
    yield (
        "attrs-valuefrom",
        _pod(
            [
                {
                    "name": "OTEL_RESOURCE_ATTRIBUTES",
                    "valueFrom": {"configMapKeyRef": {"name": "a", "key": "b"}},
                }
            ]
        ),
        None,
    )
    yield "attrs-unclosed", _pod([{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=$(B"}]), None
    yield (
        "attrs-closed",
        _pod([{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=$(B),c=$$d"}]),
        None,
    )
    yield (
        "pythonpath-valuefrom",
        _pod([{"name": "PYTHONPATH", "valueFrom": {"secretKeyRef": {"name": "a", "key": "b"}}}]),
        None,
    )
    yield (
        "mount-conflict",
        _pod(None, volumeMounts=[{"name": "v", "mountPath": "/lumigo-otel/x"}]),
        None,
    )
    yield (
        "own-mount",
        _pod(None, volumeMounts=[{"name": "lumigo-otel", "mountPath": "/lumigo-otel/"}]),
        None,
    )
    yield (
        "volumes-init",
        _with_spec(
            volumes=[{"name": "data", "emptyDir": {}}],
            initContainers=[{"name": "migrate", "image": "m"}],
        ),
        None,
    )
    yield "null-lists", _with_spec(volumes=None, initContainers=None), None
    yield (
        "own-image-volume",
        _with_spec(volumes=[{"name": "lumigo-otel", "image": {"reference": "r"}}]),
        None,
    )
    yield (
        "own-emptydir",
        _with_spec(
            volumes=[{"name": "lumigo-otel", "emptyDir": {}}],
            initContainers=[{"name": "lumigo-otel-init", "image": "i"}],
        ),
        None,
    )
    yield (
        "bad-volume",
        _with_spec(volumes=[{"name": "lumigo-otel", "hostPath": {"path": "/"}}]),
        None,
    )
    yield "windows", _with_spec(os={"name": "windows"}), None
    yield "root", _with_spec(securityContext={"runAsUser": 0, "runAsGroup": 0}), None
    yield "malformed", _with_spec(volumes={"a": 1}), None
    yield "opt-out", _pod(None, annotations={"lumigo.io/inject": "false"}), None
    yield "unannotated", _unannotated(), None
    yield (
        "namespace-asks",
        _unannotated(),
        {"lumigo.io/inject": "python", "lumigo.io/enable-logs": "true"},
    )
    yield "namespace-image", _pod(None), {"lumigo.io/delivery": "image-volume"}
    yield (
        "options",
        _pod(
            None,
            annotations={
                "lumigo.io/secret-name": "Bad_Name",
                "lumigo.io/secret-key": "ok.key",
                "lumigo.io/service-name": " $(svc) ",
                "lumigo.io/enable-logs": "maybe",
                "lumigo.io/container-names": "web, ghost, web",
            },
        ),
        None,
    )
    yield (
        "options-2",
        _pod(
            None,
            annotations={
                "lumigo.io/secret-name": "good-name",
                "lumigo.io/secret-key": "..",
                "lumigo.io/container-names": " , ",
                "lumigo.io/enable-logs": "true",
                "lumigo.io/delivery": "image-volume",
            },
        ),
        None,
    )
    yield "several", _several(), None
    yield "lumigo-named", _several(names=("web", "lumigo-otel-init")), None
    no_owner = _pod(None)
    del no_owner["metadata"]["ownerReferences"]
    yield "no-owner", no_owner, None
    named = _pod(None)
    named["metadata"] = {"name": "solo", "annotations": dict(_ASK)}
    yield "named", named, None
    yield "no-meta-annotations", {"kind": "Pod", "spec": {"containers": [{"name": "a"}]}}, None
    job = _pod(None)
    job["metadata"]["ownerReferences"] = [{"kind": "Job", "name": "nightly-29000000"}]
    yield "cronjob-pod", job, None
    yield (
        "float-env",
        _pod([{"name": "PYTHONPATH", "value": 1.5}, {"name": "N", "value": 2.0}]),
        None,
    )
    yield (
        "unicode",
        _pod(
            [{"name": "PYTHONPATH", "value": "/é"}], annotations={"lumigo.io/service-name": "café"}
        ),
        None,
    )
    yield (
        "no-kind",
        {"spec": {"containers": [{"name": "x"}]}, "metadata": {"annotations": dict(_ASK)}},
        None,
    )
    yield "configmap", {"kind": "ConfigMap", "data": {}}, None


def _with_spec(**spec: Any) -> dict[str, Any]:
    pod = _pod(None)
    pod["spec"].update(spec)
    return pod


def _unannotated() -> dict[str, Any]:
    pod = _pod(None)
    del pod["metadata"]["annotations"]
    return pod


def _several(names: tuple[str, ...] = ("web", "side", "log")) -> dict[str, Any]:
    pod = _pod([{"name": "A", "value": "1"}])
    first = pod["spec"]["containers"][0]
    pod["spec"]["containers"] = [
        {**copy.deepcopy(first), "name": name, "env": [{"name": f"E{i}", "value": "v"}] * i}
        for i, name in enumerate(names)
    ] + ["not-a-container", {"image": "nameless"}]
    return pod


def cases() -> Iterator[Case]:
    """Every object under every settings: the corpus files, hand-made pods, and each pod
    injected already (with another layer version and delivery: an upgrade or a switch)."""
    objects: list[tuple[str, dict[str, Any], dict[str, str] | None]] = []
    for path in corpus_files():
        for index, doc in enumerate(load_file(path)):
            objects.append((f"{path.name}#{index}", doc, None))
    objects.extend(_hand_made())
    for name, obj, namespace in objects:
        for label, settings in _SETTINGS.items():
            yield f"{name}/{label}", obj, settings, namespace
            once = inject(copy.deepcopy(obj), settings, namespace).obj
            for again_label, again in _SETTINGS.items():
                yield f"{name}/{label}/then-{again_label}", once, again, namespace


def outcome(
    obj: dict[str, Any], settings: InjectionSettings, namespace: dict[str, str] | None
) -> str:
    """`inject`'s whole result as JSON text, key order kept; `obj` is left unchanged."""
    given = json.dumps(obj, default=repr)
    result = inject(obj, settings, namespace)
    assert json.dumps(obj, default=repr) == given, "inject changed its input"
    # the webhook's path: a working copy parsed again from the JSON (YAML dates aside)
    copied = json.loads(given) if "datetime." not in given else copy.deepcopy(obj)
    again = inject(obj, settings, namespace, working_copy=copied)
    fields = {
        "obj": result.obj,
        "injected": result.injected,
        "reason": result.reason,
        "warnings": list(result.warnings),
        "unannotated": result.unannotated,
        "patch": result.patch,
    }
    text = json.dumps(fields, default=repr)
    assert (
        json.dumps(
            {**fields, "obj": again.obj, "patch": again.patch, "warnings": list(again.warnings)},
            default=repr,
        )
        == text
    )
    return text


DELIVERIES = (INIT_CONTAINER, IMAGE_VOLUME)
