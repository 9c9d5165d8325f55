"""The pure rules in `spec/`: the inject annotation, the kinds table, the env merges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumigo_injector.k8s.manifests import BUILTIN_KINDS, api_group
from lumigo_injector.spec import env
from lumigo_injector.spec import names as c
from lumigo_injector.spec.inject import (
    asks_for_python,
    inject_value,
    skip_reason,
    wants_injection,
)
from lumigo_injector.spec.workloads import KINDS, PROPAGATED_KINDS


@pytest.mark.parametrize(
    ("value", "parsed", "python"),
    [
        ("python", "python", True),
        ("  Python ", "python", True),
        ("false", "false", False),
        ("java", "java", False),
        ("", "", False),
        (None, None, False),
        (7, None, False),
    ],
)
def test_one_reading_of_the_inject_annotation(
    value: object, parsed: str | None, python: bool
) -> None:
    annotations = {} if value is None else {c.ANNOTATION_INJECT: value}
    assert inject_value(annotations) == parsed
    assert asks_for_python(annotations) is python


def test_pod_annotation_wins_then_namespace_then_all() -> None:
    pod = {"annotations": {c.ANNOTATION_INJECT: "false"}}
    assert not wants_injection(pod, {c.ANNOTATION_INJECT: "python"}, inject_all=True)
    assert wants_injection({}, {c.ANNOTATION_INJECT: "python"}, inject_all=False)
    assert not wants_injection({}, {c.ANNOTATION_INJECT: "no"}, inject_all=True)
    assert wants_injection({}, None, inject_all=True)
    assert skip_reason({}, None) == f"no {c.ANNOTATION_INJECT} annotation"
    assert skip_reason({}, {c.ANNOTATION_INJECT: " False"}).startswith("namespace annotation")


def test_every_kind_is_a_builtin_kind_of_its_api_group() -> None:
    for kind in KINDS.values():
        assert kind.kind in BUILTIN_KINDS[api_group(f"{kind.group}/{kind.version}".lstrip("/"))]
    propagated = {k.kind for k in PROPAGATED_KINDS}
    assert propagated == {"Deployment", "StatefulSet", "DaemonSet", "CronJob"}


_ENTRY = st.text(alphabet="abc/_-.", min_size=1, max_size=8)


@given(st.lists(_ENTRY, max_size=4).map(":".join))
def test_pythonpath_merge_is_idempotent_and_reversible(existing: str) -> None:
    merged = env.merged_pythonpath(existing)
    assert merged.split(":")[0] == c.BOOTSTRAP_PATH
    assert env.merged_pythonpath(merged) == merged
    assert env.pythonpath_without_ours(merged) == (existing or None)


@given(st.lists(_ENTRY.filter(lambda e: e != c.AUTOWRAPT_ENTRY_POINT), max_size=4).map(",".join))
def test_autowrapt_merge_is_idempotent_and_reversible(existing: str) -> None:
    merged = env.merged_autowrapt(existing)
    assert merged.split(",")[-1] == c.AUTOWRAPT_ENTRY_POINT
    assert env.merged_autowrapt(merged) == merged
    assert env.autowrapt_without_ours(merged) == (existing or None)


def test_user_attributes_win_and_ours_fill_the_rest() -> None:
    merged = env.merged_attributes("team=a,k8s.pod.name=mine", [("k8s.pod.name", "x"), ("b", "1")])
    assert merged == "team=a,k8s.pod.name=mine,b=1"
    assert env.merged_attributes(merged, [("b", "2")]) == merged


def test_a_mount_over_the_layer_blocks_and_elsewhere_does_not() -> None:
    assert env.mount_conflict(c.MOUNT_PATH + "/") is not None
    assert env.mount_conflict(c.MOUNT_PATH + "/bootstrap") is not None
    assert env.mount_conflict(c.MOUNT_PATH + "-other") is None
