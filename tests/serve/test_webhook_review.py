"""The admission webhook's pure parts: AdmissionReview parsing, the answer, the JSONPatch."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.serve import fastjson, webhook
from lumigo_injector.serve import review as review_module
from lumigo_injector.serve.patches import json_patch, pod_patch
from lumigo_injector.serve.review import (
    MalformedReview,
    answer_json,
    encode_patch,
    parse_review,
    review_response,
)
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import IMAGE_VOLUME, INIT_CONTAINER
from tests.helpers.kube import admission_review, deployment_pod
from tests.helpers.mutation import corpus_files, load_file, pod_template, workloads

ENVELOPE = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}


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


@pytest.mark.parametrize("container", ["objects", "lists"])
@pytest.mark.parametrize("json_impl", ["orjson", "stdlib"])
def test_a_pod_nested_254_levels_deep_is_read_and_one_level_more_is_malformed(
    container: str, json_impl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bound with or without orjson installed, through objects or lists."""
    if json_impl == "stdlib":
        monkeypatch.setattr(fastjson, "orjson", None)

    def nested(levels: int) -> bytes:
        innermost: Any = {} if container == "objects" else []
        node = innermost
        for _ in range(levels - 3):  # the object, its spec and spec.x count too
            node = {"x": node} if container == "objects" else [1, "a", node]
        spec: dict[str, Any] = {"containers": [], "x": node}
        pod = {"metadata": {"generateName": "web-"}, "spec": spec}
        return review({"uid": "u", "operation": "CREATE", "namespace": "shop", "object": pod})

    assert parse_review(nested(254)).obj is not None
    with pytest.raises(MalformedReview, match="nests deeper than 254 levels"):
        parse_review(nested(255))


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body nests too deep to parse"),
        (b"[1, 2]", "body is not a JSON object"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}, "expected kind AdmissionReview"),
        ({**ENVELOPE, "request": [1]}, "AdmissionReview has no request object"),
        ({**ENVELOPE, "request": {"uid": "", "operation": "CREATE"}}, "request.uid is missing"),
        (
            {**ENVELOPE, "request": {"uid": "u", "operation": 5, "object": {}}},
            "request.operation is missing or not a string",
        ),
        (
            {**ENVELOPE, "request": {"uid": "u", "operation": "", "object": {}}},
            "request.operation is missing or not a string",
        ),
    ],
)
def test_a_malformed_review_says_what_is_wrong(body: Any, complaint: str) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(MalformedReview) as refused:
        parse_review(data)
    assert str(refused.value).startswith(complaint)


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("request.uid", ("uid",)),
        ("request.kind.kind", ("kind", "kind")),
        (
            "metadata.ownerReferences[].apiVersion",
            ("object", "metadata", "ownerReferences", 0, "apiVersion"),
        ),
    ],
)
def test_other_names_longer_than_kubernetes_allows_are_malformed(
    where: str, path: tuple[Any, ...]
) -> None:
    def with_value(value: str) -> bytes:
        request: dict[str, Any] = {
            "uid": "u",
            "kind": {"kind": "Pod"},
            "operation": "CREATE",
            "namespace": "shop",
            "object": {
                "metadata": {"generateName": "web-", "ownerReferences": [{"kind": "ReplicaSet"}]},
                "spec": {"containers": []},
            },
        }
        node: Any = request
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return review(request)

    assert parse_review(with_value("a" * 253)).obj is not None
    with pytest.raises(MalformedReview, match=f"^{re.escape(where)} is 254 characters long"):
        parse_review(with_value("a" * 254))


@pytest.mark.parametrize(
    ("request_namespace", "pod_namespace", "expected"),
    [
        ("shop", "other", "shop"),
        (None, "shop", "shop"),
        ("", "shop", "shop"),
        (None, 5, None),
        ("", "", None),
    ],
)
def test_the_namespace_comes_from_the_request_else_from_the_pod(
    request_namespace: str | None, pod_namespace: Any, expected: str | None
) -> None:
    meta = {"generateName": "web-", "namespace": pod_namespace}
    request: dict[str, Any] = {"uid": "u", "operation": "CREATE", "object": {"metadata": meta}}
    if request_namespace is not None:
        request["namespace"] = request_namespace
    assert parse_review(review(request)).namespace == expected


@pytest.mark.parametrize(
    ("length", "quoted"),
    [(62, "'" + "X" * 62 + "'"), (63, "'" + "X" * 59 + "...'"), (5000, "'" + "X" * 59 + "...'")],
)
def test_an_unknown_value_is_quoted_in_at_most_64_characters(length: int, quoted: str) -> None:
    body = review({"uid": "u", "operation": "X" * length, "object": {}})
    with pytest.raises(MalformedReview) as refused:
        parse_review(body)
    assert str(refused.value) == f"unknown request.operation {quoted}"


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


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40),
    st.lists(st.text(max_size=300), max_size=3),
    st.booleans(),
    st.booleans(),
)
def test_answer_json_is_the_answer_written_by_the_json_encoder(
    uid: str, warnings: list[str], patched: bool, pre_encoded: bool
) -> None:
    """The answer written around the base64 patch is byte for byte what the encoder writes
    for `review_response`: any uid (quotes, controls, non-ASCII), warnings, with or without
    a patch, with the patch encoded by the caller or not."""
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": uid}}] if patched else []
    encoded = encode_patch(ops) if pre_encoded and ops else None
    want = fastjson.dumps(review_response(uid, ops, warnings, encoded))
    assert answer_json(uid, ops, warnings, encoded) == want


@pytest.mark.parametrize("b64_impl", ["pybase64", "stdlib"])
@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.fixed_dictionaries(
            {"op": st.just("add"), "path": st.text(max_size=9), "value": st.text(max_size=700)}
        ),
        max_size=6,
    )
)
def test_encode_patch_is_the_standard_base64_of_the_patch_json(
    b64_impl: str, ops: list[dict[str, Any]]
) -> None:
    """pybase64's text or the standard library's (pybase64 not installed): the same
    standard, padded base64 of the JSONPatch's compact JSON, for any length modulo 3."""
    saved = review_module._b64_text
    if b64_impl == "stdlib":
        review_module._b64_text = review_module.stdlib_b64_text
    try:
        encoded = encode_patch(ops)
    finally:
        review_module._b64_text = saved
    assert type(encoded) is str
    assert encoded == base64.b64encode(fastjson.dumps(ops)).decode()


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
            # the patch the webhook answers with (recorded by the mutation): the same pod,
            # key order included
            answered = jsonpatch.apply_patch(pod, pod_patch(pod, result), in_place=False)
            assert json.dumps(answered) == json.dumps(result.obj)
            checked += 1
    assert checked >= 5


def test_a_pod_injected_with_another_layer_version_is_upgraded_by_the_answer() -> None:
    """A pod carrying an earlier injection (say, from a template `inject -f` wrote) comes
    out of admission injected as a fresh pod would be, with the operator's layer version."""
    pod = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
    current = InjectionSettings(layer_version="2.0.0")
    fresh = inject(pod, current).obj
    earlier = inject(pod, InjectionSettings(layer_version="1.0.0")).obj

    async def namespaces(_: str) -> dict[str, str]:
        return {}

    admission = webhook.Admission(injection=current, namespaces=namespaces)
    for admitted in (earlier, pod):
        body = json.dumps(admission_review(admitted, namespace="shop")).encode()
        answer = json.loads(asyncio.run(webhook.review_answer(admission, body)))["response"]
        ops = json.loads(base64.b64decode(answer["patch"]))
        patched = jsonpatch.apply_patch(admitted, ops, in_place=False)
        assert json.dumps(patched) == json.dumps(fresh)
        assert patched["metadata"]["annotations"][c.ANNOTATION_INJECTED] == "2.0.0"


def test_a_delivery_switch_answer_carries_no_value_the_user_wrote() -> None:
    """A pod injected with the init container and admitted by an injector that mounts the
    layer as an image volume: our init container goes, the user's stays, and the patch
    removes ours without writing the user's init container or env back (a patch carrying
    the user's values could change what it did not mean to touch)."""
    marker = "user-written-4f1c"
    own_init = {"name": "migrate", "image": f"registry.local/{marker}:1", "args": [marker]}
    app = {
        "name": "app",
        "image": "python:3.12",
        "env": [{"name": "MODE", "value": marker}, {"name": "TIER", "value": marker}],
    }
    pod = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"}, containers=[app])
    pod["spec"]["initContainers"] = [own_init]
    earlier = inject(pod, InjectionSettings(delivery=INIT_CONTAINER)).obj
    current = InjectionSettings(delivery=IMAGE_VOLUME)
    fresh = inject(pod, current).obj
    assert len(earlier["spec"]["initContainers"]) == 2 and fresh["spec"]["initContainers"] == [
        own_init
    ]

    async def namespaces(_: str) -> dict[str, str]:
        return {}

    admission = webhook.Admission(injection=current, namespaces=namespaces)
    body = json.dumps(admission_review(earlier, namespace="shop")).encode()
    answer = json.loads(asyncio.run(webhook.review_answer(admission, body)))["response"]
    ops = json.loads(base64.b64decode(answer["patch"]))
    patched = jsonpatch.apply_patch(earlier, ops, in_place=False)
    assert json.dumps(patched) == json.dumps(fresh)
    assert marker not in json.dumps(ops)


def test_every_answer_carries_its_own_patch_when_encodings_are_reused() -> None:
    """A cached decision reuses its encoded patch; each answer still carries exactly the
    base64 of its own pod's patch, over pods whose patches differ or coincide."""
    settings = InjectionSettings(inject_all=True)
    ask = {c.ANNOTATION_INJECT: "python"}
    pods = [deployment_pod("web", annotations={**ask, "seq": str(n)}) for n in range(3)]
    pods += [deployment_pod("api", annotations=ask), deployment_pod("web", annotations=ask)]
    for path in corpus_files():
        for obj in workloads(load_file(path)):
            pods.append({"apiVersion": "v1", "kind": "Pod", **pod_template(obj)})
    # pods injected before: with another layer version (upgraded), or as they are now
    pods += [inject(pods[3], InjectionSettings(layer_version="0.0.1")).obj]
    pods += [inject(pods[4], settings).obj]
    many = [{"name": f"w{n:04d}", "image": "python:3.12"} for n in range(3000)]
    pods += [deployment_pod("many", annotations=ask, containers=many)]  # over the limit
    pods += pods[:4] + pods[-3:]  # replicas: answered from the decision cache

    async def no_annotations(_: str) -> dict[str, str]:
        return {}

    async def answers() -> list[dict[str, Any]]:
        admission = webhook.Admission(injection=settings, namespaces=no_annotations)
        bodies = [json.dumps(admission_review(pod, namespace="shop")).encode() for pod in pods]
        return [json.loads(await webhook.review_answer(admission, body)) for body in bodies]

    patched = 0
    for pod, answer in zip(pods, asyncio.run(answers()), strict=True):
        ops = pod_patch(pod, inject(pod, settings))
        response = answer["response"]
        if not ops:
            assert "patch" not in response
            continue
        assert response["patch"] == base64.b64encode(fastjson.dumps(ops)).decode()
        patched += 1
    assert patched >= 10
