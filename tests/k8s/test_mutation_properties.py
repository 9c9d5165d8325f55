"""Property-based tests of the mutation over generated, schema-valid pods and workloads."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import jsonpatch
import jsonpointer
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from lumigo_injector.k8s.edits import pointer
from lumigo_injector.k8s.mutation import InjectionSettings, inject, uninject
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import CHOICES, DELIVERIES
from lumigo_injector.spec.env import has_unclosed_reference
from tests.helpers.mutation import (
    assert_valid,
    expand_env,
    parse_attributes,
    pod_spec,
    pod_template,
)

PROPERTIES = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MERGED = {c.ENV_PYTHONPATH, c.ENV_AUTOWRAPT_BOOTSTRAP, c.ENV_RESOURCE_ATTRIBUTES}
ENV_NAMES = [
    "PYTHONPATH",
    "AUTOWRAPT_BOOTSTRAP",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
    "LUMIGO_TRACER_TOKEN",
    "LUMIGO_ENDPOINT",
    "LUMIGO_K8S_POD_NAME",
    "LUMIGO_ENABLE_LOGS",
    "LUMIGO_CONTAINER_NAME",
    "APP_HOME",
    "DEBUG",
]
POD_FIELDS = {
    "metadata.namespace": "ns",
    "metadata.name": "pod-1",
    "metadata.uid": "uid-1",
    "spec.nodeName": "node-1",
}

text = st.text(alphabet="ab/:,=$() .-_k8s", max_size=16)
literal = st.builds(lambda n, v: {"name": n, "value": v}, st.sampled_from(ENV_NAMES), text)
bare = st.builds(lambda n: {"name": n}, st.sampled_from(ENV_NAMES))
nulled = st.builds(lambda n: {"name": n, "value": None}, st.sampled_from(ENV_NAMES))
from_config = st.builds(
    lambda n: {"name": n, "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
    st.sampled_from(ENV_NAMES),
)
from_field = st.builds(
    lambda n: {"name": n, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    st.sampled_from(ENV_NAMES),
)
env_entry = st.one_of(literal, literal, literal, bare, nulled, from_config, from_field)
VOLUMES = {
    "data": {"name": "data", "emptyDir": {}},
    "config": {"name": "config", "configMap": {"name": "cfg"}},
    "lumigo-otel": {"name": "lumigo-otel", "emptyDir": {}},
    "lumigo-otel-cm": {"name": "lumigo-otel", "configMap": {"name": "x"}},
    "lumigo-otel-image": {"name": "lumigo-otel", "image": {"reference": "registry.local/l:1"}},
}
MOUNT_PATHS = ["/data", "/etc/app", "/lumigo-otel", "/lumigo-otel/x", "/var/cache"]


def absent_or_null(draw: Any, holder: dict[str, Any], key: str) -> None:
    """Leave `key` out, or write it as an explicit null (as YAML `env:` with nothing gives)."""
    if draw(st.booleans()):
        holder[key] = None


@st.composite
def containers(draw: Any, volume_names: list[str], init: bool) -> list[dict[str, Any]]:
    pool = ["migrate", "wait", "lumigo-otel-init"] if init else ["app", "api", "worker", "nginx"]
    names = draw(
        st.lists(st.sampled_from(pool), unique=True, min_size=0 if init else 1, max_size=3)
    )
    result = []
    for name in names:
        spec: dict[str, Any] = {"name": name, "image": f"registry.local/{name}:1"}
        if draw(st.booleans()):
            spec["env"] = draw(st.lists(env_entry, max_size=6))
        else:
            absent_or_null(draw, spec, "env")
        if volume_names and draw(st.booleans()):
            paths = draw(st.lists(st.sampled_from(MOUNT_PATHS), unique=True, max_size=2))
            spec["volumeMounts"] = [
                {"name": draw(st.sampled_from(volume_names)), "mountPath": p} for p in paths
            ]
        else:
            absent_or_null(draw, spec, "volumeMounts")
        if draw(st.booleans()):
            spec["envFrom"] = [{"configMapRef": {"name": "cfg"}}]
        if draw(st.booleans()):
            spec["securityContext"] = {"runAsNonRoot": True, "readOnlyRootFilesystem": True}
        result.append(spec)
    return result


@st.composite
def metadata(draw: Any, app_names: list[str]) -> dict[str, Any] | None:
    if draw(st.sampled_from(range(20))) == 7:  # rarely (integers() favour their bounds)
        return None
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["name"] = "web-0"
    else:
        meta["generateName"] = "web-7d4b9c-"
    annotations: dict[str, str] = {}
    inject_value = draw(st.sampled_from(["python"] * 6 + ["false", "Java", None]))
    if inject_value is not None:
        annotations[c.ANNOTATION_INJECT] = inject_value
    if draw(st.booleans()):
        annotations[c.ANNOTATION_CONTAINER_NAMES] = ",".join(
            draw(st.lists(st.sampled_from([*app_names, "ghost"]), max_size=3))
        )
    logs_value = draw(st.sampled_from(["true", " True", "false", "maybe", None, None]))
    if logs_value is not None:
        annotations[c.ANNOTATION_ENABLE_LOGS] = logs_value
    if draw(st.booleans()):
        annotations[c.ANNOTATION_SERVICE_NAME] = draw(text)
    if draw(st.booleans()):
        annotations[c.ANNOTATION_SECRET_NAME] = draw(st.sampled_from(["team-token", "Bad Name"]))
    if draw(st.booleans()):
        annotations[c.ANNOTATION_DELIVERY] = draw(st.sampled_from([*CHOICES, " Image-Volume", "x"]))
    if draw(st.booleans()):
        annotations["example.com/other"] = "kept"
    if annotations or draw(st.booleans()):
        meta["annotations"] = annotations
    else:
        absent_or_null(draw, meta, "annotations")
    if draw(st.booleans()):
        meta["labels"] = {"app": "web", "pod-template-hash": "7d4b9c"}
        if draw(st.booleans()):
            meta["labels"]["app.kubernetes.io/name"] = "shop"
    if draw(st.booleans()):
        kind, name = draw(
            st.sampled_from(
                [("ReplicaSet", "web-7d4b9c"), ("Job", "report-28976540"), ("StatefulSet", "db")]
            )
        )
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": True}
        ]
    return meta


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    """A pod template: metadata (maybe absent) and a spec."""
    volume_keys = draw(st.lists(st.sampled_from(sorted(VOLUMES)), unique=True, max_size=2))
    volumes = [VOLUMES[k] for k in volume_keys]
    if len({v["name"] for v in volumes}) != len(volumes):
        volumes = volumes[:1]
    volume_names = [v["name"] for v in volumes]
    apps = draw(containers(volume_names, init=False))
    spec: dict[str, Any] = {"containers": apps}
    inits = draw(containers(volume_names, init=True))
    if inits or draw(st.booleans()):
        spec["initContainers"] = inits
    else:
        absent_or_null(draw, spec, "initContainers")
    if volumes or draw(st.booleans()):
        spec["volumes"] = volumes
    else:
        absent_or_null(draw, spec, "volumes")
    if draw(st.sampled_from(range(20))) == 7:  # rarely (integers() favour their bounds)
        spec["os"] = {"name": draw(st.sampled_from(["linux", "windows"]))}
    template: dict[str, Any] = {"spec": spec}
    meta = draw(metadata([a["name"] for a in apps]))
    if meta is not None:
        template["metadata"] = meta
    else:
        absent_or_null(draw, template, "metadata")
    return template


def wrap(kind: str, template: dict[str, Any]) -> dict[str, Any]:
    selector = {"matchLabels": {"app": "web"}}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", **template}
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    if kind == "Job":
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {"template": template},
        }
    spec: dict[str, Any] = {"selector": selector, "template": template}
    if kind == "StatefulSet":
        spec["serviceName"] = "web"
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "annotations": {"note": "x"}},
        "spec": spec,
    }


objects = st.builds(
    wrap,
    st.sampled_from(
        ["Pod", "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"]
    ),
    pods(),
)
namespaces = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            c.ANNOTATION_INJECT: st.sampled_from(["python", "false"]),
            c.ANNOTATION_ENABLE_LOGS: st.sampled_from(["true", "false", "on"]),
        },
    ),
)
all_settings = st.builds(
    InjectionSettings,
    endpoint=st.sampled_from([None, "http://collector:4318", "http://$(HOST):4318"]),
    inject_all=st.booleans(),
    layer_version=st.sampled_from(["1.0.0", "2.0.0"]),
    delivery=st.sampled_from(DELIVERIES),
)
namespace_annotations = st.one_of(
    st.none(), st.builds(lambda d: {c.ANNOTATION_DELIVERY: d}, st.sampled_from(CHOICES))
)


@PROPERTIES
@given(objects, all_settings, namespaces)
def test_injecting_twice_equals_injecting_once(
    obj: dict[str, Any], s: InjectionSettings, ns: dict[str, str] | None
) -> None:
    once = inject(obj, s, ns)
    twice = inject(once.obj, s, ns)
    assert twice.obj == once.obj
    assert twice.injected == once.injected


def _delivery(obj: dict[str, Any]) -> str:
    """Which delivery an injected object got, read from its `lumigo-otel` volume."""
    [volume] = [v for v in pod_spec(obj)["volumes"] if v["name"] == c.VOLUME_NAME]
    return "image-volume" if "image" in volume else "init-container"


@PROPERTIES
@given(objects, all_settings, namespace_annotations)
def test_switching_delivery_equals_injecting_the_original_with_it(
    obj: dict[str, Any], s: InjectionSettings, ns: Any
) -> None:
    original = copy.deepcopy(obj)
    other = replace(s, delivery=next(d for d in DELIVERIES if d != s.delivery))
    once = inject(obj, s, ns)
    switched = inject(once.obj, other, ns)
    assert switched.obj == inject(original, other, ns).obj
    if once.injected:
        event(f"{_delivery(once.obj)} -> {_delivery(switched.obj)}")
    assert uninject(switched.obj) == original


@PROPERTIES
@given(objects, all_settings, all_settings, namespace_annotations)
def test_reinjecting_with_other_settings_equals_injecting_the_original(
    obj: dict[str, Any], first: InjectionSettings, then: InjectionSettings, ns: Any
) -> None:
    """A switch of delivery (or an upgrade) on re-injection leaves no trace of the first."""
    original = copy.deepcopy(obj)
    once = inject(obj, first, ns)
    switched = inject(once.obj, then, ns)
    direct = inject(original, then, ns)
    if once.injected and direct.injected and _delivery(once.obj) != _delivery(direct.obj):
        event("delivery switched")
        assert not switched.reason.startswith("already")
    if direct.injected and not switched.reason.startswith("already"):
        assert switched.obj == direct.obj
    assert uninject(switched.obj) == original
    assert inject(switched.obj, then, ns).obj == switched.obj


def _patched(obj: dict[str, Any], patch: list[dict[str, Any]]) -> str:
    """`obj` with `patch` applied as the API server would, as text (key order included)."""
    return json.dumps(jsonpatch.apply_patch(obj, patch, in_place=False))


@PROPERTIES
@given(objects, all_settings, all_settings, namespaces)
def test_the_patch_recorded_by_the_mutation_gives_its_output_exactly(
    obj: dict[str, Any], first: InjectionSettings, then: InjectionSettings, ns: Any
) -> None:
    """What the webhook answers with: the JSONPatch the mutation recorded as it went."""
    original = json.dumps(obj)
    once = inject(obj, first, ns)
    if once.injected:  # a fresh injection always records its patch
        assert once.patch is not None
        assert _patched(obj, once.patch) == json.dumps(once.obj)
    else:
        assert once.patch is None
    again = inject(once.obj, then, ns)  # an upgrade, a switch, or already injected
    if again.patch is not None:
        assert _patched(once.obj, again.patch) == json.dumps(again.obj)
    assert json.dumps(obj) == original


@PROPERTIES
@given(objects, all_settings, namespaces)
def test_uninject_gives_back_the_original_exactly(
    obj: dict[str, Any], s: InjectionSettings, ns: dict[str, str] | None
) -> None:
    original = copy.deepcopy(obj)
    result = inject(obj, s, ns)
    assert obj == original
    assert uninject(result.obj) == original
    if not result.injected:
        assert result.obj == original


LOGS_VARIABLES = (c.ENV_ENABLE_LOGS, c.ENV_CONTAINER_NAME)


def _logs_asked(obj: dict[str, Any], ns: dict[str, str] | None) -> bool:
    """The documented rule, restated: the pod's true/false, else the namespace's."""
    outer = (obj.get("metadata") or {}).get("annotations") or {} if obj["kind"] != "Pod" else {}
    own = {**outer, **((pod_template(obj).get("metadata") or {}).get("annotations") or {})}
    for level in (own, ns or {}):
        value = str(level.get(c.ANNOTATION_ENABLE_LOGS, "")).strip().lower()
        if value in ("true", "false"):
            return value == "true"
    return False


def _included(mine: Any, theirs: Any, env_name: str | None = None) -> bool:
    """Everything in `mine` is in `theirs`, lists in order; merged env values may grow."""
    if mine is None and (isinstance(theirs, (list, dict)) or env_name in MERGED):
        return True  # an explicit null (list, map or merged value) that was filled
    if isinstance(mine, dict):
        if not isinstance(theirs, dict):
            return False
        name = mine.get("name") if isinstance(mine.get("name"), str) else None
        return all(k in theirs and _included(v, theirs[k], name) for k, v in mine.items())
    if isinstance(mine, list):
        if not isinstance(theirs, list):
            return False
        position = 0
        for item in mine:
            while position < len(theirs) and not _included(item, theirs[position], env_name):
                position += 1
            if position == len(theirs):
                return False
            position += 1
        return True
    if isinstance(mine, str) and isinstance(theirs, str) and env_name in MERGED:
        return mine.strip() in theirs  # whitespace alone carries nothing
    return bool(mine == theirs)


@PROPERTIES
@given(objects, all_settings)
def test_nothing_of_the_input_is_lost_or_reordered(
    obj: dict[str, Any], s: InjectionSettings
) -> None:
    assert _included(obj, inject(obj, s).obj)


@PROPERTIES
@given(objects, all_settings, namespace_annotations)
def test_every_output_is_valid_kubernetes(
    obj: dict[str, Any], s: InjectionSettings, ns: Any
) -> None:
    """Valid for 1.35 and 1.37 with an image volume, for 1.28, 1.30 and the newest without."""
    assert_valid(obj)  # the generator only makes valid input
    result = inject(obj, s, ns)
    event(result.reason if not result.injected else "injected")
    assert_valid(result.obj)
    if result.injected:
        spec = pod_spec(result.obj)
        [volume] = [v for v in spec["volumes"] if v["name"] == c.VOLUME_NAME]
        inits = [i["name"] for i in spec.get("initContainers") or []]
        if "image" in volume:
            event("image volume")
            mounts = [
                m
                for ct in spec["containers"]
                for m in ct.get("volumeMounts") or []
                if m["name"] == c.VOLUME_NAME
            ]
            assert all(
                m.get("subPath", c.LAYER_IMAGE_SUBPATH) == c.LAYER_IMAGE_SUBPATH for m in mounts
            )
        else:
            assert c.INIT_CONTAINER_NAME in inits


@PROPERTIES
@given(objects, all_settings, namespaces)
def test_injected_containers_see_the_layer_and_their_own_values(
    obj: dict[str, Any], s: InjectionSettings, ns: dict[str, str] | None
) -> None:
    result = inject(obj, s, ns)
    assume(result.injected)
    before = {ct["name"]: ct for ct in pod_spec(obj)["containers"]}
    injected = [ct for ct in pod_spec(result.obj)["containers"] if ct != before[ct["name"]]]
    assert injected
    assert c.ANNOTATION_INJECTED in pod_template(result.obj)["metadata"]["annotations"]
    for ct in injected:
        user = expand_env(before[ct["name"]].get("env") or [], POD_FIELDS, {})
        env = expand_env(ct["env"], POD_FIELDS, {"lumigo-credentials/token": "t"})
        assert env["PYTHONPATH"].split(":")[0] == c.BOOTSTRAP_PATH
        if user.get("PYTHONPATH"):
            assert env["PYTHONPATH"].endswith(user["PYTHONPATH"])
        assert c.AUTOWRAPT_ENTRY_POINT in [p.strip() for p in env["AUTOWRAPT_BOOTSTRAP"].split(",")]
        own = ("OTEL_SERVICE_NAME", "LUMIGO_ENDPOINT", "LUMIGO_TRACER_TOKEN", *LOGS_VARIABLES)
        for name in own:
            if name in user:
                assert env[name] == user[name], name  # the user's value wins
        if s.endpoint and "LUMIGO_ENDPOINT" not in user:
            assert env["LUMIGO_ENDPOINT"] == s.endpoint
        if c.ENV_CONTAINER_NAME not in user:
            assert env[c.ENV_CONTAINER_NAME] == ct["name"]
        if c.ENV_ENABLE_LOGS not in user:
            assert (env.get(c.ENV_ENABLE_LOGS) == "true") is _logs_asked(result.obj, ns)
        raw_name = "OTEL_RESOURCE_ATTRIBUTES"
        raw_attributes = [e for e in ct["env"] if e["name"] == raw_name]
        if "valueFrom" in raw_attributes[-1] or "LUMIGO_K8S_POD_NAME" in user:
            continue
        attributes = parse_attributes(env["OTEL_RESOURCE_ATTRIBUTES"])
        user_attributes = parse_attributes(user.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        raw_user = [e for e in before[ct["name"]].get("env") or [] if e["name"] == raw_name]
        if raw_user and has_unclosed_reference(raw_user[-1].get("value") or ""):
            continue  # attributes deliberately not added (a warning says so)
        expected = {
            "k8s.namespace.name": "ns",
            "k8s.pod.name": "pod-1",
            "k8s.pod.uid": "uid-1",
            "k8s.node.name": "node-1",
            "k8s.container.name": ct["name"],
        }
        for key, value in expected.items():
            assert attributes[key] == user_attributes.get(key, value), key


@given(st.lists(st.text(alphabet="ab/~01", max_size=5), max_size=4))
def test_a_patch_path_names_exactly_the_keys_it_was_made_of(keys: list[str]) -> None:
    """RFC 6901: `/` and `~` in a key (an annotation key such as `lumigo.io/inject`) are
    escaped, so the API server resolves the path to the same keys."""
    assert jsonpointer.JsonPointer(pointer(keys)).parts == keys
