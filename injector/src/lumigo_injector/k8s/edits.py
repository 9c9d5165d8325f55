"""The mutation's changes as a JSON Patch (RFC 6902), recorded while they are made.

The webhook answers with a JSONPatch turning the admitted pod into the mutation's output.
Diffing the two afterwards cost more than the rest of the answer; the steps know what they
change, so they change the pod through `Edits`, which makes the change and records it.
Applied in order to the object the mutation started from, the operations give its output.

A value the mutation puts in goes into the patch as the object itself, so whatever is added
later to a list or map it created (`create`) rides along and is not recorded again. A changed
entry of the user's gets a patch of the changed key only: the patch never carries back a
value the user wrote (see `serve.fastjson` for why that matters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901): `~` -> `~0`, `/` -> `~1`."""
    if "~" not in key and "/" not in key:
        return key
    return key.replace("~", "~0").replace("/", "~1")


def pointer(keys: Iterable[str]) -> str:
    """The JSON Pointer of a path of keys (`""` for the document itself)."""
    return "".join("/" + escape(key) for key in keys)


class Edits:
    """Changes made to one object, and the JSON Patch operations that make them."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        #: ids of the lists and maps `create` put in (alive: the object holds them)
        self._created: set[int] = set()

    def put(self, holder: dict[str, Any], path: str, key: str, value: Any) -> None:
        """`holder[key] = value`; `path` is `holder`'s pointer."""
        if id(holder) not in self._created:
            op = "replace" if key in holder else "add"
            token = escape(key) if "/" in key or "~" in key else key
            self.ops.append({"op": op, "path": f"{path}/{token}", "value": value})
        holder[key] = value

    def create(self, holder: dict[str, Any], path: str, key: str, value: Any) -> None:
        """`put` of a new, empty list or map, which the edits then fill."""
        self.put(holder, path, key, value)
        self._created.add(id(value))

    def records(self, value: list[Any] | dict[str, Any]) -> bool:
        """Whether changes to `value` need operations of their own (`create` did not make it)."""
        return id(value) not in self._created

    def append(self, items: list[Any], path: str, value: Any) -> None:
        """`items.append(value)`; `path` is `items`' pointer."""
        if id(items) not in self._created:
            self.ops.append({"op": "add", "path": f"{path}/{len(items)}", "value": value})
        items.append(value)
