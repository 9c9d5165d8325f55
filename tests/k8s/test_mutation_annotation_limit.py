"""The injection record never takes a pod past the API server's 256 KiB annotation limit."""

from __future__ import annotations

import copy
from typing import Any

from lumigo_injector.k8s.mutation import (
    ANNOTATIONS_LIMIT,
    InjectionSettings,
    annotations_size,
    inject,
)
from lumigo_injector.spec import names as c


def pod(containers: int, note: str = "") -> dict[str, Any]:
    annotations = {c.ANNOTATION_INJECT: "python"}
    if note:
        annotations["example.com/note"] = note
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "many", "annotations": annotations},
        "spec": {
            "containers": [
                {"name": f"worker-{n:04d}", "image": "python:3.12"} for n in range(containers)
            ]
        },
    }


def test_a_pod_within_the_limit_is_injected() -> None:
    result = inject(pod(50), InjectionSettings())
    assert result.injected
    annotations = result.obj["metadata"]["annotations"]
    assert annotations_size(annotations) <= ANNOTATIONS_LIMIT


def test_a_record_over_the_limit_leaves_the_pod_unchanged_with_the_reason() -> None:
    original = pod(3000)
    result = inject(original, InjectionSettings())
    assert not result.injected
    assert result.obj == original and result.obj is not original
    (warning,) = result.warnings
    assert warning.startswith("the injection record would make the pod's annotations ")
    assert warning.endswith(f"over the API server's limit of {ANNOTATIONS_LIMIT}")
    assert result.reason == f"skipped: {warning}"


def test_the_limit_counts_bytes_not_characters() -> None:
    # 100,000 two-byte characters: 200,000 bytes before the record; the record of 300
    # containers passes the limit in bytes, while the characters alone would not
    original = pod(300, note="é" * 100_000)
    result = inject(original, InjectionSettings())
    assert not result.injected and result.obj == original
    ascii_note = inject(pod(300, note="e" * 100_000), InjectionSettings())
    assert ascii_note.injected


def test_a_record_that_fills_the_limit_exactly_is_written_and_one_byte_more_is_not() -> None:
    api_server_limit = 256 * 1024  # bytes of annotation keys and values, as Kubernetes counts

    def size_after(note: str) -> tuple[bool, int]:
        result = inject(pod(20, note=note), InjectionSettings())
        return result.injected, annotations_size(result.obj["metadata"]["annotations"])

    injected, size = size_after("n")
    assert injected
    exact = "n" * (1 + api_server_limit - size)
    assert size_after(exact) == (True, api_server_limit)
    assert size_after(exact + "n")[0] is False


def test_a_note_of_four_byte_characters_is_counted_in_bytes() -> None:
    # 65,000 emoji: 260,000 bytes, a pod the API server accepts; the record of 20 containers
    # takes it over the limit in bytes (the characters alone are a third of it)
    original = pod(20, note="\N{GRINNING FACE}" * 65_000)
    assert annotations_size(original["metadata"]["annotations"]) <= ANNOTATIONS_LIMIT
    result = inject(original, InjectionSettings())
    assert not result.injected and result.obj == original
    assert inject(pod(20, note="n" * 65_000), InjectionSettings()).injected


def test_a_pod_changed_in_place_and_turned_away_by_the_limit_comes_back_as_it_was() -> None:
    """The webhook gives its freshly parsed pod as its own working copy: a pod over the limit
    then comes back as the original, not as the half-injected pod."""
    original = pod(3000)
    given = copy.deepcopy(original)

    result = inject(given, InjectionSettings(), working_copy=given)

    assert not result.injected and result.reason.startswith("skipped: the injection record")
    assert result.obj == original
