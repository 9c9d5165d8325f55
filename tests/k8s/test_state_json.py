"""The injection-state annotation's text is the one earlier releases wrote, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_injector.k8s.mutation import InjectionSettings, inject, uninject
from lumigo_injector.k8s.state_json import reference_text, state_text
from lumigo_injector.spec import names as c
from tests.helpers.kube import deployment_pod

TEXT = st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(
    ["PYTHONPATH", "/app", 'a"b', "a\\b", "\x7f", "\n", "\x1f", "é", "☃", "\U0001f600"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
KEYS = TEXT | st.integers(-5, 5)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


def outcome(write: Any, value: Any) -> Any:
    try:
        return write(value)
    except Exception as exc:  # the same failure, where `json` fails
        return type(exc)


@settings(max_examples=2000, deadline=None, database=None)
@given(VALUES)
def test_state_text_is_json_dumps_sorted_and_compact_byte_for_byte(value: Any) -> None:
    assert outcome(state_text, value) == outcome(reference_text, value)


def pod_with(env: list[dict[str, Any]]) -> dict[str, Any]:
    app = {"name": "app", "image": "python:3.12", "env": env}
    return deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"}, containers=[app])


@pytest.mark.parametrize(
    "env",
    [
        [{"name": "PYTHONPATH", "value": "/app"}],
        [{"name": "PYTHONPATH", "value": "/caf\u00e9:/\u2603"}],
        [{"name": "PYTHONPATH", "value": 'a"b\\c\x7f\n'}],
        [{"name": "PYTHONPATH", "value": "/app", "note": 1e16}],
        [{"name": "PYTHONPATH", "value": "/app", "note": float("nan")}],
        [{"name": "PYTHONPATH", "value": None}],
    ],
    ids=["plain", "non-ascii", "escapes", "float", "nan", "null"],
)
def test_the_state_annotation_is_what_earlier_releases_wrote_and_undo_reads_it(
    env: list[dict[str, Any]],
) -> None:
    pod = pod_with(env)
    result = inject(pod, InjectionSettings())
    assert result.injected
    annotations = result.obj["metadata"]["annotations"]
    text = annotations[c.ANNOTATION_INJECTION_STATE]
    assert text == reference_text(json.loads(text))
    # undo reads it back: the original pod (a changed entry's keys come back sorted)
    assert json.dumps(uninject(result.obj), sort_keys=True) == json.dumps(pod, sort_keys=True)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"z": [1, None], "a": {"y": True, "b": "x"}}, '{"a":{"b":"x","y":true},"z":[1,null]}'),
        ({"z": 1.5, "a": "caf\u00e9"}, '{"a":"caf\\u00e9","z":1.5}'),
    ],
    ids=["orjson-written", "json-written"],
)
def test_the_annotation_text_is_compact_with_its_keys_sorted(
    state: dict[str, Any], expected: str
) -> None:
    """What readers of earlier releases' annotations compare: compact, keys sorted, non-ASCII
    escaped, however the text is written."""
    assert state_text(state) == reference_text(state) == expected
