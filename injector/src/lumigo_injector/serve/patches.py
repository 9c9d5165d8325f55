"""The JSONPatch (RFC 6902) of an admission answer: the pod in, the mutation's output out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch

from lumigo_injector.k8s.edits import escape
from lumigo_injector.k8s.mutation import MutationResult


def pod_patch(pod: Mapping[str, Any], result: MutationResult) -> list[dict[str, Any]]:
    """The JSONPatch turning the admitted pod into the mutation's output: the one the
    mutation recorded as it went when it did (`result.patch`), else the two diffed."""
    if not result.injected:
        return []
    if result.patch is not None:
        return result.patch
    return json_patch(pod, result.obj)


def json_patch(src: Any, dst: Any, prefix: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations turning `src` into `dst`.

    Equal subtrees are skipped (a C-speed `==`), dicts are diffed key by key, and a list that
    kept or grew its length is diffed item by item with the new items appended: that covers
    everything the mutation does (it appends and edits in place, never removes or reorders)
    at a tiny fraction of `jsonpatch.make_patch`'s cost, which stays in charge of lists that
    shrank. Any other change is a `replace` of the value.
    """
    if isinstance(src, dict) and isinstance(dst, dict):  # parsed JSON: plain dicts
        ops: list[dict[str, Any]] = []
        for key, value in dst.items():
            if key not in src:
                ops.append({"op": "add", "path": f"{prefix}/{escape(key)}", "value": value})
            elif src[key] != value:
                ops.extend(json_patch(src[key], value, f"{prefix}/{escape(key)}"))
        ops.extend({"op": "remove", "path": f"{prefix}/{escape(k)}"} for k in src if k not in dst)
        return ops
    if isinstance(src, list) and isinstance(dst, list) and len(src) <= len(dst):
        ops = []
        for index, (old, new) in enumerate(zip(src, dst)):
            if old != new:
                ops.extend(json_patch(old, new, f"{prefix}/{index}"))
        ops.extend(
            {"op": "add", "path": f"{prefix}/{index}", "value": dst[index]}
            for index in range(len(src), len(dst))
        )
        return ops
    if not (isinstance(src, list) and isinstance(dst, list)):  # a value or its type changed
        return [{"op": "replace", "path": prefix, "value": dst}]
    ops = []  # a list that shrank
    for op in jsonpatch.make_patch(src, dst).patch:
        op = dict(op, path=prefix + op["path"])
        if "from" in op:
            op["from"] = prefix + op["from"]
        ops.append(op)
    return ops
