"""Reading, classifying and writing manifests (lumigo_injector.k8s.manifests)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_injector.k8s.manifests import (
    ManifestError,
    classify,
    describe,
    dump_documents,
    load_documents,
    transform,
)


def test_multi_document_yaml_round_trips_with_order_and_types() -> None:
    text = (
        "# leading comment\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "data:\n  when: 2024-01-31\n  enabled: 'yes'\n  version: '1.10'\n  z: last\n  a: first\n"
        "---\n"
        "---\n# an empty document\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
    )
    documents, fmt = load_documents(text)
    assert fmt == "yaml"
    assert [d["metadata"]["name"] for d in documents] == ["a", "b"]
    assert documents[0]["data"]["when"] == "2024-01-31"  # a string, as in Kubernetes
    out = dump_documents(documents, fmt)
    assert list(yaml.safe_load_all(out)) == documents
    assert out.index("z: last") < out.index("a: first")  # key order kept
    assert "when: '2024-01-31'" in out and "enabled: 'yes'" in out


def test_long_values_are_not_wrapped() -> None:
    value = ",".join(f"key{i}=value{i}" for i in range(40))
    out = dump_documents([{"apiVersion": "v1", "kind": "ConfigMap", "data": {"v": value}}], "yaml")
    assert f"v: {value}\n" in out


def test_json_in_json_out_single_and_stream() -> None:
    one = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ü"}}
    documents, fmt = load_documents("\ufeff" + json.dumps(one))
    assert (documents, fmt) == ([one], "json")
    assert json.loads(dump_documents(documents, fmt)) == one
    stream = json.dumps(one) + "\n" + json.dumps({**one, "kind": "Service"})
    documents, fmt = load_documents(stream)
    assert [d["kind"] for d in documents] == ["Pod", "Service"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1,\n", "invalid YAML at line 2"),
        ("kind: Pod\n  bad: indent\n", "invalid YAML at line 2"),
        ('{"kind": "Pod",', "invalid JSON at line 1"),
        ("- a\n- b\n", "document 1 is not a Kubernetes object"),
        ("just a string\n", "document 1 is not a Kubernetes object"),
        ("---\nkind: Pod\n---\n42\n", "document 2 is not a Kubernetes object"),
    ],
)
def test_unreadable_input_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_documents(text)


@pytest.mark.parametrize(
    ("document", "role"),
    [
        ({"apiVersion": "apps/v1", "kind": "Deployment"}, "workload"),
        ({"apiVersion": "batch/v1", "kind": "CronJob"}, "workload"),
        ({"apiVersion": "v1", "kind": "ReplicationController"}, "workload"),
        ({"apiVersion": "v1", "kind": "List", "items": []}, "list"),
        ({"apiVersion": "apps/v1", "kind": "DeploymentList", "items": []}, "list"),
        ({"apiVersion": "v1", "kind": "Secret"}, "other"),
        ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}, "other"),
        ({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"}, "custom"),
    ],
)
def test_classify(document: dict[str, Any], role: str) -> None:
    assert classify(document) == role


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"apiVersion": "apps/v1", "kind": "Deploymnet"},
            "unknown kind 'Deploymnet' in API group apps",
        ),
        ({"apiVersion": "v1", "kind": "Deployment"}, "unknown kind 'Deployment' in API group core"),
        ({"apiVersion": "v1"}, "no kind"),
        ({"kind": "Pod"}, "Pod has no apiVersion"),
    ],
)
def test_classify_rejects_unknown_kinds(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        classify(document)


def test_transform_reports_position_of_bad_list_item() -> None:
    documents = [
        {"apiVersion": "v1", "kind": "Service"},
        {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pdo"}]},
    ]
    with pytest.raises(ManifestError, match=r"document 2: item 0 of the List: unknown kind 'Pdo'"):
        transform(documents, lambda d: (d, []))


def test_transform_notes_custom_resources() -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"}}
    outcome = transform([rollout], lambda d: (d, []))
    assert outcome.documents == [rollout]
    assert outcome.notes == ["Rollout/r: custom resource, passed through unchanged"]


def test_describe() -> None:
    assert describe({"kind": "Pod", "metadata": {"generateName": "web-", "namespace": "x"}}) == (
        "Pod/x/web-"
    )
    assert describe({"kind": "Pod"}) == "Pod/<unnamed>"


def test_yaml_anchors_become_independent_copies() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - name: a\n    image: x\n    env: &env\n    - {name: A, value: '1'}\n"
        "  - name: b\n    image: x\n    env: *env\n"
    )
    (pod,), _ = load_documents(text)
    first, second = pod["spec"]["containers"]
    assert first["env"] == second["env"] and first["env"] is not second["env"]
    assert "&" not in dump_documents([pod], "yaml")


def test_values_json_cannot_carry_are_an_error() -> None:
    with pytest.raises(ManifestError, match="document 1 has a value JSON cannot represent"):
        load_documents("apiVersion: v1\nkind: Secret\ndata: {a: !!binary aGVsbG8=}\n")
    (doc,), _ = load_documents("apiVersion: v1\nkind: ConfigMap\ndata: {1: one}\n")
    assert doc["data"] == {"1": "one"}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["yes", "no", "on", "null", "~", "1.0", "0o17", "2024-01-31", "- x", "#"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=3))
def test_yaml_and_json_output_read_back_identically(data: list[dict[str, Any]]) -> None:
    documents = [{"apiVersion": "v1", "kind": "ConfigMap", "data": d} for d in data]
    for fmt in ("yaml", "json"):
        text = dump_documents(documents, fmt)  # type: ignore[arg-type]
        assert load_documents(text)[0] == documents if documents else text == ""
