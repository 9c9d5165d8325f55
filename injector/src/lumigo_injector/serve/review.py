"""AdmissionReview v1 in and out: the edge where a request body becomes bounded, typed data.

`parse_review` turns a body into an `AdmissionRequest` or raises `MalformedReview` saying what
is wrong (the server answers `400`). Every value that later flows into state, logs, Events or
API calls is bounded here: the uid, kind, operation, the namespace and the pod's name,
`generateName` and owner references must be at most `MAX_NAME` (253) characters, as
Kubernetes names are, and the pod object may nest at most `MAX_DEPTH` levels. A review that
breaks a bound is malformed, not a pod to decide on.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lumigo_injector.serve import fastjson
from lumigo_injector.spec.records import cheap_init


def stdlib_b64_text(data: bytes) -> str:
    """`data` in standard base64, as text, by the standard library."""
    return base64.b64encode(data).decode()


_b64_text: Callable[[bytes], str] = stdlib_b64_text
# The same text by SIMD, ~10x faster than binascii (which, on 3.11, goes a byte at a time).
# pybase64 is a dependency; without it the standard library's (tested by monkeypatching).
with contextlib.suppress(ImportError):
    from pybase64 import b64encode_as_string as _b64_text

API_VERSION = "admission.k8s.io/v1"
MAX_NAME = 253  # DNS subdomain: the longest name Kubernetes accepts for any object
#: Containers (objects and lists) nested in the pod: a pod nests ~12; orjson writes up to 254.
MAX_DEPTH = 254
MAX_WARNING = 256
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})


class MalformedReview(ValueError):
    """The request body is not a usable AdmissionReview v1."""


@cheap_init
@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of an AdmissionReview v1 request the webhook uses."""

    uid: str
    kind: str
    operation: str
    namespace: str | None
    obj: Mapping[str, Any] | None
    dry_run: bool = False
    #: `obj` as compact JSON (orjson, keys in order) when the body was parsed by orjson, which
    #: writes back exactly what it read: the decision cache's key, and the mutation's copy.
    obj_json: bytes | None = None


def _map(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # parsed JSON: no ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def _short(what: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_NAME:
        raise MalformedReview(f"{what} is {len(value)} characters long (at most {MAX_NAME})")


def too_deep(value: Any, written: bytes | None = None) -> bool:
    """Whether `value` (parsed JSON) nests containers more than `MAX_DEPTH` levels deep.

    orjson's serialiser refuses anything deeper, so a successful `orjson.dumps` (a few µs;
    `written`, when the caller has it already) settles it; otherwise the levels are counted.
    """
    if written is None:
        written = fastjson.image(value)
    return written is None and nests_deeper(value, MAX_DEPTH)


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether `value` holds more than `limit` levels of nested containers."""
    if not isinstance(value, (dict, list)):
        return False
    level: list[Any] = [value]
    for _ in range(limit):
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(v for v in item.values() if isinstance(v, (dict, list)))
            elif isinstance(item, list):
                below.extend(v for v in item if isinstance(v, (dict, list)))
        if not below:
            return False
        level = below
    return True


_OWNER_KEYS = ("apiVersion", "kind", "name", "uid")


def _check_object(obj: Mapping[str, Any]) -> bytes | None:
    """Raise `MalformedReview` when `obj` breaks a bound; else its `fastjson.image`."""
    meta = _map(obj.get("metadata"))
    name, generate_name, namespace = (
        meta.get("name"),
        meta.get("generateName"),
        meta.get("namespace"),
    )
    if not (  # the common case at once: each absent, short or not a string
        (not isinstance(name, str) or len(name) <= MAX_NAME)
        and (not isinstance(generate_name, str) or len(generate_name) <= MAX_NAME)
        and (not isinstance(namespace, str) or len(namespace) <= MAX_NAME)
    ):
        _short("metadata.name", name)
        _short("metadata.generateName", generate_name)
        _short("metadata.namespace", namespace)
    owners = meta.get("ownerReferences")
    if isinstance(owners, list):
        for owner in owners:
            owner = _map(owner)
            for key in _OWNER_KEYS:
                value = owner.get(key)
                if type(value) is str and len(value) > MAX_NAME:
                    _short(f"metadata.ownerReferences[].{key}", value)
    written = fastjson.image(obj)
    if too_deep(obj, written):
        raise MalformedReview(f"request.object nests deeper than {MAX_DEPTH} levels")
    return written


def parse_review(body: bytes) -> AdmissionRequest:
    """Parse an AdmissionReview v1 body; raise `MalformedReview` saying what is wrong."""
    try:
        review, exact = fastjson.parse(body)
    except RecursionError:
        raise MalformedReview("body nests too deep to parse") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReview(f"body is not valid JSON: {str(exc)[:MAX_WARNING]}") from None
    if not isinstance(review, dict):
        raise MalformedReview("body is not a JSON object")
    if review.get("kind") != "AdmissionReview":
        raise MalformedReview(f"expected kind AdmissionReview, got {_quote(review.get('kind'))}")
    if review.get("apiVersion") != API_VERSION:
        raise MalformedReview(
            f"unsupported apiVersion {_quote(review.get('apiVersion'))}; "
            f"only {API_VERSION} is served"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid is missing or not a string")
    _short("request.uid", uid)
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        raise MalformedReview("request.operation is missing or not a string")
    if operation not in OPERATIONS:
        raise MalformedReview(f"unknown request.operation {_quote(operation)}")
    obj = request.get("object")
    if obj is not None and not isinstance(obj, dict):
        raise MalformedReview("request.object is not a JSON object")
    if operation == "CREATE" and obj is None:
        raise MalformedReview("request.object is missing for a CREATE")
    kind = _map(request.get("kind")).get("kind") or _map(obj).get("kind") or ""
    _short("request.kind.kind", kind)
    namespace = request.get("namespace")
    _short("request.namespace", namespace)
    written = _check_object(obj) if obj is not None else None
    if not isinstance(namespace, str) or not namespace:
        namespace = _map(_map(obj).get("metadata")).get("namespace")
    return AdmissionRequest(
        uid=uid,
        kind=str(kind),
        operation=operation,
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        obj=obj,
        dry_run=request.get("dryRun") is True,
        obj_json=written if exact else None,
    )


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 64 else text[:60] + "...'"


def b64_text(data: bytes) -> str:
    """`data` in standard base64, as text (SIMD when pybase64 is installed)."""
    return _b64_text(data)


def encode_patch(patch: Sequence[Mapping[str, Any]]) -> str:
    """The answer's `patch` field: the JSONPatch's JSON in base64."""
    return _b64_text(fastjson.dumps(patch))


def review_response(
    uid: str,
    patch: Sequence[Mapping[str, Any]] | None,
    warnings: Sequence[str],
    encoded: str | None = None,
) -> dict[str, Any]:
    """The AdmissionReview v1 answer: always allowed, with the patch when there is one.

    `encoded`: the patch's `encode_patch`, when the caller has it already."""
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = encoded if encoded is not None else encode_patch(patch)
    if warnings:
        response["warnings"] = [w[:MAX_WARNING] for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


_ANSWER_HEAD = b'{"apiVersion":"' + API_VERSION.encode() + b'","kind":"AdmissionReview","response":'


def answer_json(
    uid: str,
    patch: Sequence[Mapping[str, Any]] | None,
    warnings: Sequence[str],
    encoded: str | None = None,
) -> bytes:
    """`fastjson.dumps(review_response(...))`, written around the base64 patch: the patch
    (a few KB of base64, which needs no escaping) is copied in, not scanned by the encoder.
    A patch given only as `encoded` (`patch` empty) is answered the same way."""
    if not patch and encoded is None:
        return fastjson.dumps(review_response(uid, patch, warnings))
    if encoded is None:
        encoded = encode_patch(patch or ())
    parts = [
        _ANSWER_HEAD,
        b'{"uid":',
        fastjson.dumps(uid),
        b',"allowed":true,"patchType":"JSONPatch"',
    ]
    parts += [b',"patch":"', encoded.encode(), b'"']
    if warnings:
        parts += [b',"warnings":', fastjson.dumps([w[:MAX_WARNING] for w in warnings])]
    parts.append(b"}}")
    return b"".join(parts)
