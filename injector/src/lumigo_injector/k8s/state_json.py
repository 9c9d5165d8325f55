"""The text of the `lumigo.io/injection-state` annotation: compact JSON, keys sorted.

`state_text(state)` is `json.dumps(state, separators=(",", ":"), sort_keys=True)` byte for
byte (`undo` and pods annotated by earlier releases read exactly that), written by orjson when
the result is provably the same: no float anywhere (the two write some differently, e.g.
`1e+16` and `1e16`), only types both write alike (anything else makes orjson refuse), and
output that is printable ASCII without a backslash, so no string needed an escape (the two
escape some characters differently, and `json` escapes every non-ASCII one). Anything else
goes to `json`, which then also raises where it always did.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback is `json`
    orjson = None  # type: ignore[assignment]

if orjson is not None:
    _OPTIONS = (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )


def reference_text(state: Any) -> str:
    """The definition: what the annotation has always held."""
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def has_float(value: Any) -> bool:
    """Whether a float sits anywhere in `value` (dicts, lists and tuples walked, keys too)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or kind is int or item is None:
            continue
        if kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            return True
    return False


_ALL = object()


def state_text(state: Any, user_parts: Any = _ALL) -> str:
    """`reference_text(state)`, through orjson where that gives the same bytes.

    `user_parts`, when the caller knows it: the parts of `state` that may hold a float (the
    rest holds only strings, integers, booleans and None); by default the whole of it.
    """
    if orjson is not None and not has_float(state if user_parts is _ALL else user_parts):
        try:
            raw = orjson.dumps(state, option=_OPTIONS)
        except TypeError:  # a type orjson will not write the same way: `json` decides
            raw = b""
        if raw and raw.isascii() and b"\\" not in raw and b"\x7f" not in raw:
            return raw.decode()
    return reference_text(state)
