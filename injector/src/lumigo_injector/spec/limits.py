"""Bounds on untrusted structured input (manifests, task definitions): checked once, at the edge.

Parsed JSON or YAML may be nested deeper than any Kubernetes object or ECS task definition
(and deep enough to exhaust the interpreter's stack further on), or hold strings that are not
text (JSON's `\\ud800` escape decodes to a lone surrogate, which no UTF-8 output can carry).
`check_plain` rejects both with one line, iteratively, so the check itself cannot recurse.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting of objects and arrays accepted (the deepest real Kubernetes objects, CRD
#: schemas, stay well below 100; ECS task definitions below 10).
MAX_DEPTH = 128


class InputError(ValueError):
    """Input beyond a bound; the message is meant for the user as is."""


def too_deep_message() -> str:
    return f"nested deeper than {MAX_DEPTH} levels"


def check_plain(value: Any) -> None:
    """Raise InputError if `value` nests beyond MAX_DEPTH or holds a string that is not text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise InputError(too_deep_message())
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((child, depth + 1))


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        raise InputError(
            f"a string holds U+{bad:04X}, a lone surrogate (not text; from a \\u{bad:04x} escape?)"
        ) from None


def loads_json(text: str) -> Any:
    """`json.loads` whose nesting and text are bounded (JSONDecodeError passes through)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InputError(too_deep_message()) from None
    check_plain(value)
    return value
