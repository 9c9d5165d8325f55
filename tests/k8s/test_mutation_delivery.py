"""The two deliveries of the layer: init container (copy) and image volume (no copy)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lumigo_injector.k8s.mutation import InjectionSettings, inject, uninject
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import (
    auto_delivery,
    parse_choice,
    pod_delivery,
    resolve,
    server_version,
)
from tests.helpers.mutation import (
    IMAGE_VOLUME_VERSIONS,
    assert_valid,
    container,
    expand_env,
    pod_spec,
    pod_template,
    schema_error,
)

IMAGE = "registry.example/lumigo-otel-python-init:1.2.3"
INIT = InjectionSettings(init_image=IMAGE, delivery="init-container")
VOLUME = InjectionSettings(init_image=IMAGE, delivery="image-volume")
POD_FIELDS = {
    "metadata.namespace": "shop",
    "metadata.name": "web-1",
    "metadata.uid": "uid-1",
    "spec.nodeName": "node-1",
}


def deployment(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {
                    "labels": {"app": "web"},
                    "annotations": {c.ANNOTATION_INJECT: "python", **annotations},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3.12-slim",
                            "env": [{"name": "PYTHONPATH", "value": "/app"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        },
                        {"name": "worker", "image": "python:3.12-slim"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def layer_volume(obj: dict[str, Any]) -> dict[str, Any]:
    [volume] = [v for v in pod_spec(obj)["volumes"] if v["name"] == c.VOLUME_NAME]
    return volume  # type: ignore[no-any-return]


def init_names(obj: dict[str, Any]) -> list[str]:
    return [ic["name"] for ic in pod_spec(obj).get("initContainers") or []]


def test_image_volume_mounts_the_init_image_read_only_with_the_layer_subpath() -> None:
    original = deployment()
    out = inject(original, VOLUME)
    assert out.injected and "(image-volume)" in out.reason
    assert layer_volume(out.obj) == {
        "name": "lumigo-otel",
        "image": {"reference": IMAGE, "pullPolicy": "IfNotPresent"},
    }
    assert "initContainers" not in pod_spec(out.obj)  # no copy step at all
    for name in ("web", "worker"):
        mounts = container(out.obj, name)["volumeMounts"]
        assert mounts[-1] == {
            "name": "lumigo-otel",
            "mountPath": "/lumigo-otel",
            "readOnly": True,
            "subPath": "lumigo-layer",
        }
    assert container(out.obj, "web")["volumeMounts"][0] == {"name": "data", "mountPath": "/data"}
    assert uninject(out.obj) == original


def test_both_deliveries_give_the_app_the_same_environment() -> None:
    by_copy = inject(deployment(), INIT).obj
    by_volume = inject(deployment(), VOLUME).obj
    assert init_names(by_copy) == [c.INIT_CONTAINER_NAME]
    assert layer_volume(by_copy)["emptyDir"] == {"sizeLimit": "200Mi"}
    for name in ("web", "worker"):
        assert container(by_copy, name)["env"] == container(by_volume, name)["env"]
    env = expand_env(container(by_volume, "web")["env"], POD_FIELDS, {})
    assert env["PYTHONPATH"] == "/lumigo-otel/bootstrap:/app"
    assert env["AUTOWRAPT_BOOTSTRAP"] == "lumigo_opentelemetry"


def test_image_volume_pods_are_valid_from_1_35_and_rejected_by_the_1_30_schema() -> None:
    out = inject(deployment(), VOLUME).obj
    assert_valid(out)
    for version in IMAGE_VOLUME_VERSIONS:
        assert schema_error(out, version) is None
    error = schema_error(out, "1.30")
    assert error is not None and "volumes/1" in error  # `image` is unknown there
    by_copy = inject(deployment(), INIT).obj
    assert schema_error(by_copy, "1.30") is None


@pytest.mark.parametrize(
    ("pod_value", "namespace_value", "expected"),
    [
        (None, None, "init-container"),  # the operator's default
        ("image-volume", None, "image-volume"),
        (" Image-Volume ", None, "image-volume"),
        (None, "image-volume", "image-volume"),
        ("init-container", "image-volume", "init-container"),  # the pod wins
        ("auto", "image-volume", "init-container"),  # auto: the operator's choice
        ("bogus", "image-volume", "image-volume"),  # ignored, with a warning
    ],
)
def test_annotation_on_pod_or_namespace_chooses_the_delivery(
    pod_value: str | None, namespace_value: str | None, expected: str
) -> None:
    annotations = {} if pod_value is None else {c.ANNOTATION_DELIVERY: pod_value}
    namespace = None if namespace_value is None else {c.ANNOTATION_DELIVERY: namespace_value}
    out = inject(deployment(**annotations), INIT, namespace)
    assert out.injected
    kind = "image-volume" if "image" in layer_volume(out.obj) else "init-container"
    assert kind == expected
    bogus = [w for w in out.warnings if c.ANNOTATION_DELIVERY in w]
    assert bool(bogus) is (pod_value == "bogus")
    if bogus:
        assert "'bogus' is not one of auto, init-container, image-volume" in bogus[0]


@pytest.mark.parametrize(("first", "then"), [(INIT, VOLUME), (VOLUME, INIT)])
def test_switching_delivery_on_reinjection_leaves_nothing_of_the_first(
    first: InjectionSettings, then: InjectionSettings
) -> None:
    original = deployment()
    once = inject(original, first).obj
    switched = inject(once, then)
    assert switched.injected and "already" not in switched.reason
    assert switched.obj == inject(original, then).obj
    assert inject(switched.obj, then).reason.startswith("already injected")
    assert uninject(switched.obj) == original


def test_annotation_switch_on_an_injected_template_reinjects() -> None:
    injected = inject(deployment(), INIT).obj
    annotations = pod_template(injected)["metadata"]["annotations"]
    annotations[c.ANNOTATION_DELIVERY] = "image-volume"
    out = inject(injected, INIT).obj
    assert "image" in layer_volume(out) and init_names(out) == []
    assert uninject(out) == deployment(**{c.ANNOTATION_DELIVERY: "image-volume"})


def test_a_lumigo_otel_volume_already_in_the_pod_decides_and_is_kept() -> None:
    original = deployment()
    spec = pod_spec(original)
    spec["volumes"].append({"name": "lumigo-otel", "emptyDir": {}})
    out = inject(original, VOLUME)
    assert out.injected
    assert layer_volume(out.obj) == {"name": "lumigo-otel", "emptyDir": {}}
    assert init_names(out.obj) == [c.INIT_CONTAINER_NAME]
    assert any("using it instead of image-volume" in w for w in out.warnings)
    assert inject(out.obj, VOLUME).obj == out.obj
    assert uninject(out.obj) == original


def test_a_foreign_lumigo_otel_volume_blocks_both_deliveries() -> None:
    original = deployment()
    pod_spec(original)["volumes"].append({"name": "lumigo-otel", "configMap": {"name": "x"}})
    for settings in (INIT, VOLUME):
        out = inject(copy.deepcopy(original), settings)
        assert not out.injected and "neither an emptyDir nor an image volume" in out.reason


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"major": "1", "minor": "35", "gitVersion": "v1.35.0"}, (1, 35)),
        ({"major": "1", "minor": "33+", "gitVersion": "v1.33.5-eks-3025e55"}, (1, 33)),
        ({"major": "1", "minor": "36+"}, (1, 36)),
        ({"gitVersion": "v2.0.1"}, (2, 0)),
        ({"major": "", "minor": ""}, None),
        ({}, None),
    ],
)
def test_server_version_from_a_version_answer(
    info: dict[str, str], expected: tuple[int, int] | None
) -> None:
    assert server_version(info) == expected


def test_auto_means_image_volume_from_1_35() -> None:
    assert auto_delivery((1, 34)) == "init-container"
    assert auto_delivery((1, 35)) == "image-volume"
    assert auto_delivery((1, 37)) == "image-volume"
    assert auto_delivery(None) == "init-container"  # unknown server: the safe choice
    assert resolve("auto", (1, 36)) == "image-volume"
    assert resolve("init-container", (1, 36)) == "init-container"
    assert resolve("image-volume", (1, 30)) == "image-volume"
    assert parse_choice(" AUTO ") == "auto" and parse_choice("volume") is None


def test_pod_delivery_ignores_non_string_annotations() -> None:
    warnings: list[str] = []
    assert pod_delivery({c.ANNOTATION_DELIVERY: 3}, None, "image-volume", warnings) == (
        "image-volume"
    )
    assert warnings == []
