"""JSON for the admission path: orjson when it is installed, the standard library otherwise.

orjson parses and serialises an AdmissionReview several times faster than `json`. It is
stricter (no NaN/Infinity), so a body it refuses is handed to `json`, which accepts it or
explains what is wrong. One difference remains: orjson reads an integer beyond 64 bits as a
float. The API server never sends one (it re-encodes typed objects), and the webhook's patch
only carries values the mutation wrote, so nothing the user wrote can be changed by it.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the standard library path is tested by monkeypatching
    orjson = None  # type: ignore[assignment]


def loads(data: bytes) -> Any:
    """Parse JSON bytes; raises `ValueError` (or `UnicodeDecodeError`) on invalid input."""
    return parse(data)[0]


def parse(data: bytes) -> tuple[Any, bool]:
    """`loads`, and whether orjson parsed it: then every value in it is one `image` writes
    exactly (no NaN or Infinity, which only `json` accepts and orjson would write as null)."""
    if orjson is not None:
        try:
            return orjson.loads(data), True
        except orjson.JSONDecodeError:
            pass  # maybe valid for `json` (NaN, Infinity); it decides and explains
    return json.loads(data), False


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except TypeError:  # e.g. an integer beyond 64 bits: `json` can write it
            pass
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def writable_by_orjson(obj: Any) -> bool:
    """Whether orjson is installed and can write `obj`: nesting at most 254 containers deep,
    integers within 64 bits. One serialisation, a few µs for a pod."""
    return image(obj) is not None


def image(obj: Any) -> bytes | None:
    """`obj` written by orjson (compact, keys in order), or None when orjson is not installed
    or cannot write it. For data `parse` read with orjson, `loads(image(obj))` is a deep copy
    of `obj` in which no two places share an object, several times faster than walking it."""
    if orjson is None:
        return None
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError: too deep, or an integer it cannot write
        return None
