"""Reading plain JSON-like data (parsed YAML, JSON, AdmissionReview objects) without surprises.

Kubernetes objects arrive as nested dicts and lists of any shape; these helpers give a
mapping or a list where one is expected and an empty one otherwise, so callers never branch
on malformed input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_map(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one."""
    if type(value) is dict:  # parsed JSON and YAML: no ABC check
        return value
    if value is None or type(value) is str:  # absent or malformed: no ABC check either
        return {}
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """`value` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    """`value` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def annotations_of(holder: Mapping[str, Any]) -> Mapping[str, Any]:
    """`holder.metadata.annotations` (empty when absent or malformed)."""
    return as_map(as_map(holder.get("metadata")).get("annotations"))


#: Values `plain_copy` returns as they are (exact types: a subclass goes through the checks).
_LEAVES = frozenset({str, int, bool, float})


def plain_copy(value: Any) -> Any:
    """A deep copy of JSON-like data in which no two places share an object.

    (`copy.deepcopy` keeps sharing, e.g. one env list used by two containers through a YAML
    anchor, and mutating one container would then change the other.)
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value  # the common leaves first: no ABC check
    if kind is dict:  # parsed JSON: its leaves (str, int, bool, None) need no call each
        return {
            key: item if type(item) in _LEAVES or item is None else plain_copy(item)
            for key, item in value.items()
        }
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if kind is list or isinstance(value, list | tuple):
        return [plain_copy(item) for item in value]
    return value
