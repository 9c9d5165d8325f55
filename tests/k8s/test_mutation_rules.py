"""One test per rule of the injection mutation (lumigo_injector.k8s.mutation)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lumigo_injector.k8s.mutation import InjectionSettings, inject, uninject
from lumigo_injector.spec import names as c
from lumigo_injector.spec.inject import wants_injection
from lumigo_injector.spec.logs import logs_enabled
from tests.helpers.mutation import (
    assert_valid,
    container,
    env_of,
    expand_env,
    parse_attributes,
    pod_spec,
    pod_template,
)

SETTINGS = InjectionSettings()
POD_FIELDS = {
    "metadata.namespace": "shop",
    "metadata.name": "web-7d4b9c-x2x9p",
    "metadata.uid": "6a1d2c55-9a3e-4f52-8d2b-3c2d6e0f7a10",
    "spec.nodeName": "node-3",
}


def pod(*containers: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": list(containers) or [{"name": "app", "image": "python:3.12"}]},
    }


def app(name: str = "app", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "python:3.12", **extra}


def opted_in(*containers: dict[str, Any], **annotations: str) -> dict[str, Any]:
    return pod(*containers, annotations={c.ANNOTATION_INJECT: "python", **annotations})


def env_dict(obj: dict[str, Any], name: str = "app") -> dict[str, str]:
    return expand_env(env_of(obj, name), POD_FIELDS, {})


def by_name(env: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matches = [e for e in env if e["name"] == name]
    assert len(matches) == 1, f"{name}: {matches}"
    return matches[0]


# --- pod level ---------------------------------------------------------------------------------


def test_adds_size_limited_empty_dir_volume() -> None:
    out = inject(opted_in(), InjectionSettings(volume_size_limit="300Mi")).obj
    assert pod_spec(out)["volumes"] == [{"name": c.VOLUME_NAME, "emptyDir": {"sizeLimit": "300Mi"}}]


def test_init_container_is_small_and_locked_down() -> None:
    out = inject(opted_in(), InjectionSettings(init_image="registry.local/init:9")).obj
    (init,) = pod_spec(out)["initContainers"]
    assert init["name"] == c.INIT_CONTAINER_NAME
    assert init["image"] == "registry.local/init:9"
    assert init["args"] == [c.MOUNT_PATH]
    assert init["volumeMounts"] == [{"name": c.VOLUME_NAME, "mountPath": c.MOUNT_PATH}]
    assert set(init["resources"]) == {"requests", "limits"}
    assert set(init["resources"]["limits"]) == {"cpu", "memory"}
    security = init["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False  # Pod Security "baseline" refuses privileged ones
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "runAsUser" not in security  # the image's own non-root user (OpenShift-friendly)
    assert_valid(out)


def test_init_container_overrides_a_root_pod_user() -> None:
    original = opted_in()
    original["spec"]["securityContext"] = {"runAsUser": 0, "runAsGroup": 0}
    (init,) = pod_spec(inject(original, SETTINGS).obj)["initContainers"]
    assert init["securityContext"]["runAsUser"] == c.INIT_CONTAINER_USER
    assert init["securityContext"]["runAsGroup"] == c.INIT_CONTAINER_USER
    assert init["securityContext"]["runAsNonRoot"] is True


def test_user_init_containers_run_first_and_are_kept() -> None:
    original = opted_in()
    pod_spec(original)["initContainers"] = [{"name": "migrate", "image": "app:1"}]
    out = inject(original, SETTINGS).obj
    names = [ic["name"] for ic in pod_spec(out)["initContainers"]]
    assert names == ["migrate", c.INIT_CONTAINER_NAME]


def test_marks_pod_with_layer_version() -> None:
    out = inject(opted_in(), InjectionSettings(layer_version="7.7.7")).obj
    assert out["metadata"]["annotations"][c.ANNOTATION_INJECTED] == "7.7.7"


def test_input_object_is_never_modified() -> None:
    original = opted_in(app(env=[{"name": "PYTHONPATH", "value": "/src"}]))
    frozen = copy.deepcopy(original)
    result = inject(original, SETTINGS)
    assert result.injected
    assert original == frozen
    uninject(result.obj)
    assert result.obj != frozen


# --- per container -----------------------------------------------------------------------------


def test_every_app_container_gets_read_only_mount_and_env() -> None:
    out = inject(opted_in(app("api"), app("worker")), SETTINGS).obj
    for name in ("api", "worker"):
        assert {"name": c.VOLUME_NAME, "mountPath": c.MOUNT_PATH, "readOnly": True} in container(
            out, name
        )["volumeMounts"]
        env = expand_env(env_of(out, name), POD_FIELDS, {})
        assert env["PYTHONPATH"] == "/lumigo-otel/bootstrap"
        assert env["AUTOWRAPT_BOOTSTRAP"] == "lumigo_opentelemetry"


def test_pythonpath_keeps_user_literal_after_ours() -> None:
    out = inject(
        opted_in(app(env=[{"name": "PYTHONPATH", "value": "/srv/app:/srv/lib"}])), SETTINGS
    )
    assert env_dict(out.obj)["PYTHONPATH"] == "/lumigo-otel/bootstrap:/srv/app:/srv/lib"


def test_empty_pythonpath_does_not_add_current_directory() -> None:
    out = inject(opted_in(app(env=[{"name": "PYTHONPATH", "value": ""}])), SETTINGS).obj
    assert env_dict(out)["PYTHONPATH"] == "/lumigo-otel/bootstrap"


def test_pythonpath_from_value_from_leaves_container_uninjected_with_warning() -> None:
    from_config = {
        "name": "PYTHONPATH",
        "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}},
    }
    original = opted_in(app("renderer", env=[from_config]), app("scheduler"))
    result = inject(original, SETTINGS)
    assert result.injected
    assert container(result.obj, "renderer") == container(original, "renderer")
    assert "PYTHONPATH" in env_dict(result.obj, "scheduler")
    assert any("renderer" in w and "valueFrom" in w for w in result.warnings)


def test_only_container_with_value_from_pythonpath_means_pod_not_injected() -> None:
    from_secret = {"name": "PYTHONPATH", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}
    original = opted_in(app(env=[from_secret]))
    result = inject(original, SETTINGS)
    assert not result.injected
    assert result.obj == original
    assert result.warnings


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("my_patches", "my_patches,lumigo_opentelemetry"),
        ("a, b", "a, b,lumigo_opentelemetry"),
        ("lumigo_opentelemetry,a", "lumigo_opentelemetry,a"),
        ("", "lumigo_opentelemetry"),
    ],
)
def test_autowrapt_bootstrap_merged_into_existing_list(existing: str, expected: str) -> None:
    out = inject(opted_in(app(env=[{"name": "AUTOWRAPT_BOOTSTRAP", "value": existing}])), SETTINGS)
    assert env_dict(out.obj)["AUTOWRAPT_BOOTSTRAP"] == expected


def test_token_comes_from_optional_secret_and_is_never_in_the_spec() -> None:
    out = inject(opted_in(), SETTINGS).obj
    token = by_name(env_of(out, "app"), c.ENV_TRACER_TOKEN)
    assert token == {
        "name": "LUMIGO_TRACER_TOKEN",
        "valueFrom": {
            "secretKeyRef": {"name": "lumigo-credentials", "key": "token", "optional": True}
        },
    }
    # A missing Secret leaves the variable unset instead of blocking the pod.
    assert "LUMIGO_TRACER_TOKEN" not in expand_env(env_of(out, "app"), POD_FIELDS, {})
    assert (
        expand_env(env_of(out, "app"), POD_FIELDS, {"lumigo-credentials/token": "t0k"})[
            "LUMIGO_TRACER_TOKEN"
        ]
        == "t0k"
    )


def test_secret_name_and_key_from_annotations_then_settings() -> None:
    settings = InjectionSettings(secret_name="cluster-lumigo", secret_key="tok")
    ref = lambda obj: by_name(env_of(obj, "app"), c.ENV_TRACER_TOKEN)["valueFrom"]["secretKeyRef"]  # noqa: E731
    assert ref(inject(opted_in(), settings).obj)["name"] == "cluster-lumigo"
    assert ref(inject(opted_in(), settings).obj)["key"] == "tok"
    annotated = opted_in(
        **{c.ANNOTATION_SECRET_NAME: "team-lumigo", c.ANNOTATION_SECRET_KEY: "lumigo.token"}
    )
    assert ref(inject(annotated, settings).obj) == {
        "name": "team-lumigo",
        "key": "lumigo.token",
        "optional": True,
    }


def test_invalid_secret_annotation_falls_back_with_warning() -> None:
    result = inject(opted_in(**{c.ANNOTATION_SECRET_NAME: "Not A Name!"}), SETTINGS)
    secret = by_name(env_of(result.obj, "app"), c.ENV_TRACER_TOKEN)["valueFrom"]["secretKeyRef"]
    assert secret["name"] == "lumigo-credentials"
    assert any("Not A Name!" in w for w in result.warnings)


def test_user_set_variables_are_left_alone() -> None:
    user_env = [
        {
            "name": "LUMIGO_TRACER_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}},
        },
        {"name": "OTEL_SERVICE_NAME", "value": "my-service"},
        {"name": "LUMIGO_ENDPOINT", "value": "http://mine:4318"},
    ]
    out = inject(opted_in(app(env=copy.deepcopy(user_env))), InjectionSettings(endpoint="http://x"))
    env = env_of(out.obj, "app")
    for entry in user_env:
        assert by_name(env, entry["name"]) == entry


def test_endpoint_only_when_configured() -> None:
    assert "LUMIGO_ENDPOINT" not in env_dict(inject(opted_in(), SETTINGS).obj)
    out = inject(opted_in(), InjectionSettings(endpoint="http://otel-collector.obs:4318")).obj
    assert env_dict(out)["LUMIGO_ENDPOINT"] == "http://otel-collector.obs:4318"


def test_resource_attributes_resolve_through_downward_api() -> None:
    out = inject(opted_in(app("api")), SETTINGS).obj
    env = env_of(out, "api")
    attributes = parse_attributes(expand_env(env, POD_FIELDS, {})["OTEL_RESOURCE_ATTRIBUTES"])
    assert attributes == {
        "k8s.namespace.name": "shop",
        "k8s.pod.name": "web-7d4b9c-x2x9p",
        "k8s.pod.uid": "6a1d2c55-9a3e-4f52-8d2b-3c2d6e0f7a10",
        "k8s.node.name": "node-3",
        "k8s.container.name": "api",
    }
    for entry in env:  # only the downward API is used, never a literal pod name
        if entry["name"].startswith("LUMIGO_K8S_"):
            assert set(entry["valueFrom"]) == {"fieldRef"}


def test_resource_attributes_merge_user_keys_win_and_stay_in_place() -> None:
    user_env = [
        {"name": "TEAM", "value": "payments"},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=$(TEAM),k8s.pod.name=static"},
        {"name": "LATER", "value": "x"},
    ]
    out = inject(opted_in(app(env=user_env)), SETTINGS).obj
    env = env_of(out, "app")
    names = [e["name"] for e in env]
    # The user's entries keep their relative order, ours referenced before use.
    user_positions = [names.index(n) for n in ("TEAM", "OTEL_RESOURCE_ATTRIBUTES", "LATER")]
    assert user_positions == sorted(user_positions)
    attributes = parse_attributes(expand_env(env, POD_FIELDS, {})["OTEL_RESOURCE_ATTRIBUTES"])
    assert attributes["team"] == "payments"
    assert attributes["k8s.pod.name"] == "static"
    assert attributes["k8s.namespace.name"] == "shop"
    assert c.ENV_K8S_POD_NAME not in names  # not needed: the user's key wins


def test_resource_attributes_from_value_from_are_not_touched() -> None:
    ref = {
        "name": "OTEL_RESOURCE_ATTRIBUTES",
        "valueFrom": {"configMapKeyRef": {"name": "a", "key": "b"}},
    }
    result = inject(opted_in(app(env=[copy.deepcopy(ref)])), SETTINGS)
    assert result.injected
    assert by_name(env_of(result.obj, "app"), "OTEL_RESOURCE_ATTRIBUTES") == ref
    assert any("OTEL_RESOURCE_ATTRIBUTES" in w for w in result.warnings)


def test_workload_attribute_for_a_deployment_template() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {
                    "labels": {"app": "web"},
                    "annotations": {c.ANNOTATION_INJECT: "python"},
                },
                "spec": {"containers": [app()]},
            },
        },
    }
    out = inject(deployment, SETTINGS).obj
    env = expand_env(env_of(out, "app"), POD_FIELDS, {})
    assert parse_attributes(env["OTEL_RESOURCE_ATTRIBUTES"])["k8s.deployment.name"] == "web"
    assert env["OTEL_SERVICE_NAME"] == "web"
    assert c.ANNOTATION_INJECTED in pod_template(out)["metadata"]["annotations"]
    assert "annotations" not in out["metadata"]  # the Deployment's own metadata is untouched
    assert_valid(out)


def test_admission_pod_without_name_or_namespace() -> None:
    """Pods created by a ReplicaSet arrive with generateName, owner and labels only."""
    admitted = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c-",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
            "annotations": {c.ANNOTATION_INJECT: "python"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-7d4b9c",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [app()]},
    }
    result = inject(admitted, SETTINGS)
    assert result.injected
    env = expand_env(env_of(result.obj, "app"), POD_FIELDS, {})
    assert env["OTEL_SERVICE_NAME"] == "web"
    attributes = parse_attributes(env["OTEL_RESOURCE_ATTRIBUTES"])
    assert attributes["k8s.deployment.name"] == "web"
    assert attributes["k8s.replicaset.name"] == "web-7d4b9c"
    assert attributes["k8s.namespace.name"] == "shop"  # from the downward API at run time
    assert "name" not in result.obj["metadata"] and "namespace" not in result.obj["metadata"]
    assert_valid(result.obj)


# --- selection ---------------------------------------------------------------------------------


def test_container_names_annotation_selects_containers() -> None:
    original = opted_in(app("api"), app("envoy"), **{c.ANNOTATION_CONTAINER_NAMES: "api, ghost"})
    result = inject(original, SETTINGS)
    assert "PYTHONPATH" in env_dict(result.obj, "api")
    assert container(result.obj, "envoy") == container(original, "envoy")
    assert any("ghost" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("pod_value", "namespace_value", "inject_all", "expected"),
    [
        ("python", None, False, True),
        (" Python ", None, False, True),
        ("false", "python", True, False),
        ("java", None, True, False),
        (None, "python", False, True),
        (None, "false", True, False),
        (None, None, True, True),
        (None, None, False, False),
    ],
)
def test_wants_injection(
    pod_value: str | None, namespace_value: str | None, inject_all: bool, expected: bool
) -> None:
    meta = {"annotations": {c.ANNOTATION_INJECT: pod_value}} if pod_value is not None else {}
    namespace = {c.ANNOTATION_INJECT: namespace_value} if namespace_value is not None else None
    assert wants_injection(meta, namespace, inject_all) is expected


def test_opt_out_is_never_touched() -> None:
    original = pod(annotations={c.ANNOTATION_INJECT: "false"})
    settings = InjectionSettings(inject_all=True)
    result = inject(original, settings, namespace_annotations={c.ANNOTATION_INJECT: "python"})
    assert not result.injected
    assert result.obj == original
    assert "false" in result.reason


def test_namespace_annotation_opts_pods_in() -> None:
    original = pod()
    assert not inject(original, SETTINGS).injected
    result = inject(original, SETTINGS, namespace_annotations={c.ANNOTATION_INJECT: "python"})
    assert result.injected
    assert c.ANNOTATION_INJECT not in result.obj["metadata"]["annotations"]


def test_non_pod_kinds_are_returned_unchanged() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
    result = inject(service, InjectionSettings(inject_all=True))
    assert not result.injected and result.obj == service
    assert "Service" in result.reason


def test_uninject_gives_back_objects_without_a_pod_as_they_are() -> None:
    """`uninject -f` of a manifest: its Services, ConfigMaps and odd workloads come back too."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
    no_template = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    for obj in (service, no_template):
        back = uninject(obj)
        assert back == obj and back is not obj


@pytest.mark.parametrize(
    ("tweak", "why"),
    [
        (lambda p: p["spec"].__setitem__("os", {"name": "windows"}), "Windows"),
        (
            lambda p: p["spec"].__setitem__(
                "volumes", [{"name": "lumigo-otel", "configMap": {"name": "x"}}]
            ),
            "volume",
        ),
        (lambda p: p["spec"]["containers"].append(app("lumigo-otel-init")), "lumigo-otel-init"),
    ],
)
def test_conflicting_pods_are_skipped(tweak: Any, why: str) -> None:
    original = opted_in()
    tweak(original)
    result = inject(original, SETTINGS)
    assert not result.injected
    assert result.obj == original
    assert why in result.reason


def test_container_mounting_our_path_is_skipped() -> None:
    busy = app("busy", volumeMounts=[{"name": "data", "mountPath": "/lumigo-otel"}])
    original = opted_in(busy, app("free"))
    original["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    result = inject(original, SETTINGS)
    assert container(result.obj, "busy") == busy
    assert "PYTHONPATH" in env_dict(result.obj, "free")
    assert_valid(result.obj)


# --- idempotence and undo ----------------------------------------------------------------------


def test_injecting_twice_changes_nothing() -> None:
    once = inject(opted_in(app(env=[{"name": "PYTHONPATH", "value": "/a"}])), SETTINGS)
    twice = inject(once.obj, SETTINGS)
    assert twice.obj == once.obj
    assert twice.injected and "already" in twice.reason


def test_new_layer_version_reinjects_with_new_settings() -> None:
    original = opted_in(app(env=[{"name": "PYTHONPATH", "value": "/a"}]))
    old = inject(original, InjectionSettings(init_image="i:1", layer_version="1")).obj
    new = inject(old, InjectionSettings(init_image="i:2", layer_version="2")).obj
    assert new == inject(original, InjectionSettings(init_image="i:2", layer_version="2")).obj
    assert env_dict(new)["PYTHONPATH"] == "/lumigo-otel/bootstrap:/a"


def test_uninject_restores_exactly_and_records_state_in_annotation() -> None:
    original = opted_in(
        app(
            env=[
                {"name": "PYTHONPATH", "value": "/a"},
                {"name": "AUTOWRAPT_BOOTSTRAP", "value": "x"},
                {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=b"},
            ]
        )
    )
    out = inject(original, SETTINGS).obj
    state = json.loads(out["metadata"]["annotations"][c.ANNOTATION_INJECTION_STATE])
    assert state["containers"]["app"]["changed"]["PYTHONPATH"] == {
        "name": "PYTHONPATH",
        "value": "/a",
    }
    assert uninject(out) == original
    assert uninject(original) == original


def test_uninject_without_state_record_removes_what_is_unmistakably_ours() -> None:
    user_env = [
        {"name": "PYTHONPATH", "value": "/srv"},
        {"name": "AUTOWRAPT_BOOTSTRAP", "value": "mine"},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=a"},
        {"name": "DEBUG", "value": "1"},
    ]
    original = opted_in(app("a", env=copy.deepcopy(user_env)), app("b"))
    out = inject(original, SETTINGS).obj
    del out["metadata"]["annotations"][c.ANNOTATION_INJECTION_STATE]
    restored = uninject(out)
    spec = pod_spec(restored)
    assert spec.get("initContainers", []) == [] and spec.get("volumes", []) == []
    assert container(restored, "a")["volumeMounts"] == []
    # OTEL_SERVICE_NAME and LUMIGO_CONTAINER_NAME could be the user's: without the record
    # they stay.
    maybe_users = {"OTEL_SERVICE_NAME", c.ENV_CONTAINER_NAME}
    kept = [e for e in env_of(restored, "a") if e["name"] not in maybe_users]
    assert [e["name"] for e in kept] == [e["name"] for e in user_env]
    assert expand_env(kept, POD_FIELDS, {})["PYTHONPATH"] == "/srv"
    assert expand_env(kept, POD_FIELDS, {})["AUTOWRAPT_BOOTSTRAP"] == "mine"
    attributes = expand_env(kept, POD_FIELDS, {})["OTEL_RESOURCE_ATTRIBUTES"]
    assert "$(" not in attributes and attributes.startswith("team=a")
    names_b = [e["name"] for e in env_of(restored, "b")]
    assert not {"PYTHONPATH", "AUTOWRAPT_BOOTSTRAP", c.ENV_TRACER_TOKEN} & set(names_b)
    assert c.ANNOTATION_INJECTED not in restored["metadata"]["annotations"]


def test_explicit_null_lists_are_filled_and_restored() -> None:
    """Helm templates often render `env:` or `volumes:` with nothing, i.e. null."""
    original = opted_in(app(env=None, volumeMounts=None))
    original["spec"].update(volumes=None, initContainers=None)
    result = inject(original, SETTINGS)
    assert result.injected
    assert env_dict(result.obj)["PYTHONPATH"] == "/lumigo-otel/bootstrap"
    assert_valid(result.obj)
    assert uninject(result.obj) == original


def test_malformed_lists_are_not_overwritten() -> None:
    broken = opted_in(app("odd", env="PYTHONPATH=/x"), app("fine"))
    result = inject(broken, SETTINGS)
    assert container(result.obj, "odd") == container(broken, "odd")
    assert any("'odd'" in w and "env is a str" in w for w in result.warnings)
    spec_broken = opted_in()
    spec_broken["spec"]["volumes"] = {"name": "x"}
    result = inject(spec_broken, SETTINGS)
    assert not result.injected and result.obj == spec_broken
    assert "volumes is a dict" in result.reason


def test_containers_sharing_one_env_object_are_injected_independently() -> None:
    shared = [{"name": "A", "value": "1"}]
    original = opted_in(app("api", env=shared), app("sidecar", env=shared))
    original["metadata"]["annotations"][c.ANNOTATION_CONTAINER_NAMES] = "api"
    result = inject(original, SETTINGS)
    assert env_of(result.obj, "sidecar") == [{"name": "A", "value": "1"}]
    assert "PYTHONPATH" in env_dict(result.obj, "api")
    assert uninject(result.obj) == original


def test_literal_values_from_annotations_and_settings_are_never_expanded() -> None:
    original = opted_in(
        app(env=[{"name": "HOME", "value": "/root"}]),
        **{c.ANNOTATION_SERVICE_NAME: "$(HOME)-svc"},
    )
    out = inject(original, InjectionSettings(endpoint="http://$(HOME):4318")).obj
    values = env_dict(out)
    assert values["OTEL_SERVICE_NAME"] == "$(HOME)-svc"
    assert values["LUMIGO_ENDPOINT"] == "http://$(HOME):4318"


def test_unclosed_user_reference_keeps_attributes_out_with_warning() -> None:
    user = {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=$(TEAM"}
    result = inject(opted_in(app(env=[dict(user)])), SETTINGS)
    assert result.injected
    assert by_name(env_of(result.obj, "app"), "OTEL_RESOURCE_ATTRIBUTES") == user
    assert any("unclosed" in w for w in result.warnings)


def test_pythonpath_from_env_from_is_kept_after_ours() -> None:
    """envFrom values are visible to $(...) expansion; an explicit env entry would hide them."""
    original = opted_in(app(envFrom=[{"configMapRef": {"name": "app-env"}}]))
    out = inject(original, SETTINGS).obj
    env = env_of(out, "app")
    from_config_map = {"PYTHONPATH": "/srv/app"}  # what the kubelet loads from envFrom first
    expanded = expand_env(
        [{"name": k, "value": v} for k, v in from_config_map.items()] + env, POD_FIELDS, {}
    )
    assert expanded["PYTHONPATH"] == "/lumigo-otel/bootstrap:/srv/app"
    without = expand_env(env, POD_FIELDS, {})["PYTHONPATH"]
    assert without.split(":")[0] == "/lumigo-otel/bootstrap"  # the rest is an inert path entry
    assert uninject(out) == original


# --- logs and the container name ------------------------------------------------------------


def test_every_injected_container_gets_its_own_name() -> None:
    out = inject(opted_in(app("api"), app("worker")), SETTINGS).obj
    assert env_dict(out, "api")[c.ENV_CONTAINER_NAME] == "api"
    assert env_dict(out, "worker")[c.ENV_CONTAINER_NAME] == "worker"
    assert c.ENV_ENABLE_LOGS not in env_dict(out, "api")  # logs only when asked


def test_containers_left_out_get_neither_variable() -> None:
    obj = opted_in(
        app("api"),
        app("sidecar"),
        **{c.ANNOTATION_CONTAINER_NAMES: "api", c.ANNOTATION_ENABLE_LOGS: "true"},
    )
    out = inject(obj, SETTINGS).obj
    assert container(out, "sidecar") == app("sidecar")
    assert env_dict(out, "api")[c.ENV_ENABLE_LOGS] == "true"


@pytest.mark.parametrize(
    ("pod_value", "namespace_value", "expected"),
    [
        ("true", None, True),
        (" TRUE ", None, True),
        (None, "true", True),
        ("false", "true", False),  # the pod beats its namespace
        ("true", "false", True),
        (None, None, False),
        (None, "false", False),
        ("yes please", "true", True),  # not true/false: ignored (warning), the namespace decides
        ("yes please", None, False),
    ],
)
def test_enable_logs_annotation_pod_beats_namespace(
    pod_value: str | None, namespace_value: str | None, expected: bool
) -> None:
    annotations = {c.ANNOTATION_ENABLE_LOGS: pod_value} if pod_value is not None else {}
    namespace = {c.ANNOTATION_ENABLE_LOGS: namespace_value} if namespace_value is not None else None
    result = inject(opted_in(**annotations), SETTINGS, namespace_annotations=namespace)
    assert result.injected
    env = env_dict(result.obj)
    assert (env.get(c.ENV_ENABLE_LOGS) == "true") is expected
    assert logs_enabled(annotations, namespace)[0] is expected
    if pod_value == "yes please":
        assert any("'yes please' is not true or false" in w for w in result.warnings)


def test_enable_logs_on_a_workload_reaches_its_template_for_inject_f() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {c.ANNOTATION_ENABLE_LOGS: "true"}},
        "spec": {"template": opted_in(app())},
    }
    out = inject(deployment, SETTINGS).obj
    assert env_dict(out)[c.ENV_ENABLE_LOGS] == "true"
    # the template's own value wins over the workload's
    deployment["spec"]["template"]["metadata"]["annotations"][c.ANNOTATION_ENABLE_LOGS] = "false"
    assert c.ENV_ENABLE_LOGS not in env_dict(inject(deployment, SETTINGS).obj)


def test_users_own_logs_and_container_name_values_are_kept_and_restored() -> None:
    user_env = [
        {"name": c.ENV_ENABLE_LOGS, "value": "false"},
        {"name": c.ENV_CONTAINER_NAME, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
    ]
    original = opted_in(app(env=copy.deepcopy(user_env)), **{c.ANNOTATION_ENABLE_LOGS: "true"})
    out = inject(original, SETTINGS).obj
    env = env_of(out, "app")
    for entry in user_env:
        assert by_name(env, entry["name"]) == entry
    assert uninject(out) == original


def test_logs_and_container_name_are_recorded_and_taken_back_exactly() -> None:
    original = opted_in(
        app(env=[{"name": "DEBUG", "value": "1"}]), **{c.ANNOTATION_ENABLE_LOGS: "true"}
    )
    out = inject(original, SETTINGS).obj
    state = json.loads(out["metadata"]["annotations"][c.ANNOTATION_INJECTION_STATE])
    added = state["containers"]["app"]["added"]
    assert c.ENV_ENABLE_LOGS in added and c.ENV_CONTAINER_NAME in added
    assert inject(out, SETTINGS).obj == out  # idempotent
    assert uninject(out) == original


def test_container_name_is_never_expanded() -> None:
    # Kubernetes names cannot hold `$`, but a manifest given to inject -f may.
    out = inject(opted_in(app("a$(X)")), SETTINGS).obj
    assert by_name(env_of(out, "a$(X)"), c.ENV_CONTAINER_NAME)["value"] == "a$$(X)"


def test_a_pod_that_brings_its_own_layer_volume_keeps_it_and_says_so_only_if_it_differs() -> None:
    from lumigo_injector.spec.delivery import IMAGE_VOLUME, INIT_CONTAINER

    own = {"name": c.VOLUME_NAME, "emptyDir": {}}  # the init container's kind of volume
    brought = opted_in()
    brought["spec"]["volumes"] = [own]

    other = inject(brought, InjectionSettings(delivery=IMAGE_VOLUME))
    assert other.injected and pod_spec(other.obj)["volumes"] == [own]
    assert other.warnings == (
        f"the pod already has a {c.VOLUME_NAME!r} volume for {INIT_CONTAINER} delivery; "
        f"using it instead of {IMAGE_VOLUME}",
    )
    assert "subPath" not in container(other.obj, "app")["volumeMounts"][0]

    same = inject(brought, InjectionSettings(delivery=INIT_CONTAINER))
    assert same.injected and same.warnings == ()


def test_the_layer_is_mounted_once_where_the_app_looks_for_it() -> None:
    ours = {"name": c.VOLUME_NAME, "mountPath": c.MOUNT_PATH, "readOnly": True}
    elsewhere = {"name": c.VOLUME_NAME, "mountPath": "/opt/otel-copy"}
    out = inject(
        opted_in(app("a", volumeMounts=[ours]), app("b", volumeMounts=[elsewhere])), SETTINGS
    )
    assert out.injected and out.warnings == ()
    assert container(out.obj, "a")["volumeMounts"] == [ours]  # no second mount at one path
    assert "PYTHONPATH" in env_dict(out.obj, "a")  # ours already there is no conflict
    assert container(out.obj, "b")["volumeMounts"] == [elsewhere, ours]


def test_only_a_pod_and_namespace_without_the_annotation_are_unannotated() -> None:
    """What `inject` answers with `--all`'s hint: only when nothing said anything."""
    assert inject(pod(), SETTINGS).unannotated
    assert not inject(pod(), SETTINGS, {c.ANNOTATION_INJECT: "false"}).unannotated
    assert not inject(pod(annotations={c.ANNOTATION_INJECT: "false"}), SETTINGS).unannotated
    # skipped for another reason (`--all` would not help), or injected
    windows = opted_in()
    windows["spec"]["os"] = {"name": "windows"}
    assert not inject(windows, SETTINGS).unannotated
    assert not inject(opted_in(), SETTINGS).unannotated


def test_a_container_without_a_name_is_left_alone_and_the_named_ones_injected() -> None:
    """Mutating admission runs before validation, so a pod may still hold a container with no
    name (or a name that is not a string): that one is not touched, the others are injected,
    and uninject gives the pod back as it came."""
    nameless = {"image": "python:3.12"}
    numbered = {"name": 7, "image": "python:3.12"}
    original = opted_in(app("fine"), nameless, numbered)
    result = inject(original, SETTINGS)
    assert result.injected
    containers = result.obj["spec"]["containers"]
    assert containers[1:] == [nameless, numbered]
    assert "PYTHONPATH" in env_dict(result.obj, "fine")
    assert uninject(result.obj) == original


def test_uninject_takes_back_only_what_inject_changed() -> None:
    """A user who already loads the distro (PYTHONPATH starts with the layer, AUTOWRAPT_BOOTSTRAP
    names it) gets those entries as written; they stay the user's, so an edit made to them
    after injection (a manifest from `inject -f`, edited) is kept by uninject."""
    user_env = [
        {"name": "PYTHONPATH", "value": "/lumigo-otel/bootstrap:/srv"},
        {"name": "AUTOWRAPT_BOOTSTRAP", "value": "lumigo_opentelemetry"},
    ]
    out = inject(opted_in(app(env=copy.deepcopy(user_env))), SETTINGS).obj
    env = env_of(out, "app")
    for entry in user_env:
        assert by_name(env, entry["name"]) == entry
    by_name(env, "PYTHONPATH")["value"] = "/lumigo-otel/bootstrap:/srv:/opt/extra"
    by_name(env, "AUTOWRAPT_BOOTSTRAP")["value"] = "lumigo_opentelemetry,my_patches"
    assert env_of(uninject(out), "app") == [
        {"name": "PYTHONPATH", "value": "/lumigo-otel/bootstrap:/srv:/opt/extra"},
        {"name": "AUTOWRAPT_BOOTSTRAP", "value": "lumigo_opentelemetry,my_patches"},
    ]


def test_a_pod_with_an_empty_list_and_no_record_is_uninjected_and_upgraded() -> None:
    """An image-volume pod (no init container of ours) whose own `initContainers: []` stays
    empty and whose sidecar, left out, has `volumeMounts: []`, with its record lost (the
    annotation stripped): uninject removes our volume, mount and token, and a new layer
    version injects it again instead of failing."""
    from lumigo_injector.spec.delivery import IMAGE_VOLUME

    sidecar = app("sidecar", volumeMounts=[])
    original = opted_in(
        app(env=[{"name": "DEBUG", "value": "1"}]),
        copy.deepcopy(sidecar),
        **{c.ANNOTATION_CONTAINER_NAMES: "app"},
    )
    original["spec"]["initContainers"] = []
    out = inject(original, InjectionSettings(delivery=IMAGE_VOLUME, layer_version="1")).obj
    del out["metadata"]["annotations"][c.ANNOTATION_INJECTION_STATE]
    restored = uninject(out)
    assert pod_spec(restored)["initContainers"] == [] and pod_spec(restored)["volumes"] == []
    assert container(restored, "app")["volumeMounts"] == []
    assert c.ENV_TRACER_TOKEN not in [e["name"] for e in env_of(restored, "app")]
    assert container(restored, "sidecar") == sidecar
    upgraded = inject(out, InjectionSettings(delivery=IMAGE_VOLUME, layer_version="2"))
    assert upgraded.injected
    assert upgraded.obj["metadata"]["annotations"][c.ANNOTATION_INJECTED] == "2"
    assert pod_spec(upgraded.obj)["initContainers"] == []


def test_uninject_without_a_record_keeps_a_left_out_containers_own_mount() -> None:
    """The container left out because its own volume is mounted at /lumigo-otel keeps that
    mount when the pod is uninjected without its record; only our mount goes."""
    busy = app("busy", volumeMounts=[{"name": "data", "mountPath": "/lumigo-otel"}])
    original = opted_in(copy.deepcopy(busy), app("free"))
    original["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    out = inject(original, SETTINGS).obj
    del out["metadata"]["annotations"][c.ANNOTATION_INJECTION_STATE]
    restored = uninject(out)
    assert container(restored, "busy") == busy
    assert pod_spec(restored)["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert container(restored, "free")["volumeMounts"] == []


def test_a_container_entry_that_is_no_map_is_left_alone_on_inject_uninject_and_upgrade() -> None:
    """Mutating admission runs before validation: a `null` (or text) entry in `containers`
    stays where it is through inject, uninject and an upgrade to a new layer version."""
    original = opted_in(app("fine"))
    original["spec"]["containers"] += [None, "junk"]
    once = inject(original, InjectionSettings(layer_version="1"))
    assert once.injected and once.obj["spec"]["containers"][1:] == [None, "junk"]
    assert uninject(once.obj) == original
    upgraded = inject(once.obj, InjectionSettings(layer_version="2"))
    assert upgraded.injected and upgraded.obj["spec"]["containers"][1:] == [None, "junk"]
    assert upgraded.obj["metadata"]["annotations"][c.ANNOTATION_INJECTED] == "2"


def test_uninject_of_a_manifest_edited_since_removes_our_mount_and_keeps_the_new_one() -> None:
    """A mount and volume added after injection (an `inject -f` manifest, edited) stay;
    our mount and volume go, wherever ours now sits in the lists."""
    out = inject(opted_in(app()), SETTINGS).obj
    cache_mount = {"name": "cache", "mountPath": "/var/cache/app"}
    container(out, "app")["volumeMounts"].append(cache_mount)
    pod_spec(out)["volumes"].append({"name": "cache", "emptyDir": {}})
    restored = uninject(out)
    assert container(restored, "app")["volumeMounts"] == [cache_mount]
    assert pod_spec(restored)["volumes"] == [{"name": "cache", "emptyDir": {}}]
    assert_valid(restored)
