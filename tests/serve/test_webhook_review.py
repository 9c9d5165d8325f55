"""The admission webhook's pure parts: AdmissionReview parsing, the answer, the JSONPatch."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.serve.patches import json_patch
from lumigo_injector.serve.review import MalformedReview, parse_review, review_response
from tests.helpers.mutation import corpus_files, load_file, pod_template, workloads


def review(request: dict[str, Any]) -> bytes:
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def test_pod_from_a_controller_takes_the_namespace_from_the_request() -> None:
    pod = {"metadata": {"generateName": "web-"}, "spec": {"containers": []}}
    body = review(
        {
            "uid": "u1",
            "kind": {"kind": "Pod"},
            "operation": "CREATE",
            "namespace": "shop",
            "object": pod,
            "dryRun": True,
        }
    )

    parsed = parse_review(body)

    assert (parsed.uid, parsed.kind, parsed.namespace, parsed.dry_run) == (
        "u1",
        "Pod",
        "shop",
        True,
    )
    assert parsed.obj == pod


@pytest.mark.parametrize(
    "request_",
    [
        {"kind": {"kind": "Pod"}, "operation": "CREATE", "object": {}},
        {"uid": 7, "operation": "CREATE", "object": {}},
        {"uid": "u", "object": {}},
        {"uid": "u", "operation": "CREATE", "object": "pod"},
        {"uid": "u", "operation": "CREATE"},
    ],
)
def test_incomplete_requests_are_malformed(request_: dict[str, Any]) -> None:
    with pytest.raises(MalformedReview):
        parse_review(review(request_))


@pytest.mark.parametrize(
    "where",
    ["name", "generateName", "namespace", "ownerReferences[].name", "request.namespace"],
)
def test_names_as_long_as_kubernetes_allows_are_accepted_and_longer_are_not(where: str) -> None:
    def pod_review(name: str) -> bytes:
        meta: dict[str, Any] = {"generateName": "web-"}
        request: dict[str, Any] = {"uid": "u", "operation": "CREATE", "namespace": "shop"}
        if where == "ownerReferences[].name":
            meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": name, "uid": "r"}]
        elif where == "request.namespace":
            request["namespace"] = name
        else:
            meta[where] = name
        return review({**request, "object": {"metadata": meta, "spec": {"containers": []}}})

    assert parse_review(pod_review("a" * 253)).obj is not None  # DNS subdomain: up to 253
    with pytest.raises(MalformedReview, match="254 characters long"):
        parse_review(pod_review("a" * 254))


def test_a_pod_nested_254_levels_deep_is_read_and_one_level_more_is_malformed() -> None:
    def nested(levels: int) -> bytes:
        node: dict[str, Any] = {}
        spec: dict[str, Any] = {"containers": [], "x": node}
        for _ in range(levels - 3):  # the object, its spec and spec.x count too
            node["x"] = {}
            node = node["x"]
        pod = {"metadata": {"generateName": "web-"}, "spec": spec}
        return review({"uid": "u", "operation": "CREATE", "namespace": "shop", "object": pod})

    assert parse_review(nested(254)).obj is not None
    with pytest.raises(MalformedReview, match="nests deeper than 254 levels"):
        parse_review(nested(255))


def test_answer_carries_uid_patch_and_warnings() -> None:
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]

    answer = review_response("u1", ops, ("w" * 300,))

    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert response["uid"] == "u1" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops
    assert len(response["warnings"][0]) == 256
    assert review_response("u2", [], ())["response"] == {"uid": "u2", "allowed": True}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet="ab/~c", max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_json_patch_turns_any_document_into_any_other(src: Any, dst: Any) -> None:
    assert jsonpatch.apply_patch(src, json_patch(src, dst), in_place=False) == dst


def test_json_patch_of_every_corpus_pod_reproduces_the_mutation() -> None:
    checked = 0
    for path in corpus_files():
        for obj in workloads(load_file(path)):
            pod = {"apiVersion": "v1", "kind": "Pod", **pod_template(obj)}
            result = inject(pod, InjectionSettings(inject_all=True))
            ops = json_patch(pod, result.obj)
            assert jsonpatch.apply_patch(pod, ops, in_place=False) == result.obj
            checked += 1
    assert checked >= 5
