"""The mutating admission webhook: `POST /mutate-pods` over HTTPS, AdmissionReview v1.

The body is parsed once, at the edge, into an `AdmissionRequest`; a body that is not an
AdmissionReview v1 gets `400` with a message saying what is wrong. A well-formed review always
gets `200` with `allowed: true`: with a base64 JSONPatch (RFC 6902, the difference between
the pod and the pure mutation's output) when the pod is injected, without one otherwise. Any error
while deciding is *fail-open*: the pod is admitted unchanged, the reason is logged, returned
as an admission warning and posted as a Warning Event. The handler keeps no state between
requests, so any number of replicas can serve side by side.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
from aiohttp import web

from lumigo_injector.k8s.mutation import InjectionSettings, MutationResult, inject
from lumigo_injector.serve import events, fastjson, metrics
from lumigo_injector.serve.decision_log import DecisionLog
from lumigo_injector.spec import names as c

log = logging.getLogger("lumigo_injector.webhook")

PATH = "/mutate-pods"
API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 8 * 1024 * 1024  # pods are capped well below this by etcd's object size limit
MAX_WARNING = 256


class MalformedReview(ValueError):
    """The request body is not a usable AdmissionReview v1."""


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of an AdmissionReview v1 request the webhook uses."""

    uid: str
    kind: str
    operation: str
    namespace: str | None
    obj: Mapping[str, Any] | None
    dry_run: bool = False


@dataclass(frozen=True)
class Decision:
    """The answer to one review, plus what to log and report."""

    patch: list[dict[str, Any]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    injected: bool = False
    reason: str = ""
    failed: bool = False


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_review(body: bytes) -> AdmissionRequest:
    """Parse an AdmissionReview v1 body; raise `MalformedReview` saying what is wrong."""
    try:
        review = fastjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReview(f"body is not valid JSON: {exc}") from None
    if not isinstance(review, dict):
        raise MalformedReview("body is not a JSON object")
    if review.get("kind") != "AdmissionReview":
        raise MalformedReview(f"expected kind AdmissionReview, got {review.get('kind')!r}")
    if review.get("apiVersion") != API_VERSION:
        raise MalformedReview(
            f"unsupported apiVersion {review.get('apiVersion')!r}; only {API_VERSION} is served"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid is missing or not a string")
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        raise MalformedReview("request.operation is missing or not a string")
    obj = request.get("object")
    if obj is not None and not isinstance(obj, dict):
        raise MalformedReview("request.object is not a JSON object")
    if operation == "CREATE" and obj is None:
        raise MalformedReview("request.object is missing for a CREATE")
    kind = _map(request.get("kind")).get("kind") or _map(obj).get("kind") or ""
    namespace = request.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        namespace = _map(_map(obj).get("metadata")).get("namespace")
    return AdmissionRequest(
        uid=uid,
        kind=str(kind),
        operation=operation,
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        obj=obj,
        dry_run=request.get("dryRun") is True,
    )


def review_response(uid: str, decision: Decision) -> dict[str, Any]:
    """The AdmissionReview v1 answer: always allowed, with the patch when there is one."""
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(fastjson.dumps(decision.patch)).decode()
    if decision.warnings:
        response["warnings"] = [w[:MAX_WARNING] for w in decision.warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def pod_patch(pod: Mapping[str, Any], result: MutationResult) -> list[dict[str, Any]]:
    """The JSONPatch turning the admitted pod into the mutation's output."""
    if not result.injected:
        return []
    return json_patch(pod, result.obj)


def escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901): `~` -> `~0`, `/` -> `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


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


def outcome(decision: Decision) -> str:
    """The admission's outcome for the metrics: injected, skipped or failed."""
    if decision.failed:
        return "failed"
    return "injected" if decision.injected else "skipped"


def has_intent(pod: Mapping[str, Any], namespace_annotations: Mapping[str, str]) -> bool:
    """Whether the pod or its namespace says anything about injection (worth an Event)."""
    annotations = _map(_map(pod.get("metadata")).get("annotations"))
    return c.ANNOTATION_INJECT in annotations or c.ANNOTATION_INJECT in namespace_annotations


NamespaceLookup = Callable[[str], Awaitable[Mapping[str, str]]]
CacheKey = tuple[bytes, tuple[tuple[str, str], ...]]


class DecisionCache:
    """Recent decisions by pod object: the replicas of one workload arrive identical.

    The mutation is a pure function of the pod, the namespace's annotations and the (fixed)
    settings, so an identical pod in an identically annotated namespace gets the stored
    decision (patch, warnings, reason) without running the mutation and the diff again.
    Keyed by the pod's serialised JSON; pods above `max_pod_bytes` are not stored, and at
    most `size` decisions are kept (least recently used dropped first).
    """

    def __init__(self, size: int = 256, max_pod_bytes: int = 64 * 1024) -> None:
        self._size = size
        self._max_pod_bytes = max_pod_bytes
        self._entries: OrderedDict[CacheKey, Decision] = OrderedDict()
        self.hits = 0

    def key(self, pod: Mapping[str, Any], namespace: Mapping[str, str]) -> CacheKey | None:
        if self._size <= 0:
            return None
        serialised = fastjson.dumps(pod)
        if len(serialised) > self._max_pod_bytes:
            return None
        return serialised, tuple(namespace.items())

    def get(self, key: CacheKey | None) -> Decision | None:
        if key is None:
            return None
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: CacheKey | None, decision: Decision) -> None:
        if key is None:
            return
        self._entries[key] = decision
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class Admission:
    """Decides on one admission request; the aiohttp handler around it is `build_app`."""

    def __init__(
        self,
        *,
        injection: InjectionSettings,
        namespaces: NamespaceLookup,
        never_injected: Callable[[str | None], bool] = lambda _: False,
        recorder: events.EventRecorder | None = None,
        on_injected: Callable[[str], None] | None = None,
        fault_label: str | None = None,
    ) -> None:
        self._injection = injection
        self._namespaces = namespaces
        self._never_injected = never_injected
        self._recorder = recorder
        self._on_injected = on_injected
        self._fault_label = fault_label
        self.decisions = DecisionLog()
        self.cache = DecisionCache()

    async def decide(self, request: AdmissionRequest) -> Decision:
        """Mutate a pod CREATE; let everything else through untouched. Never raises."""
        if request.kind != "Pod" or request.operation != "CREATE" or request.obj is None:
            return Decision(reason=f"not a pod creation ({request.kind} {request.operation})")
        pod = request.obj
        namespace = request.namespace
        if self._never_injected(namespace):
            return Decision(reason=f"namespace {namespace} is never injected")
        namespace_annotations: Mapping[str, str] = {}
        try:
            if namespace:
                namespace_annotations = await self._namespaces(namespace)
            self._test_fault(pod)
            key = self.cache.key(pod, namespace_annotations)
            decision = self.cache.get(key)
            if decision is None:
                result = inject(pod, self._injection, namespace_annotations)
                warnings = tuple(f"lumigo-injector: {w}" for w in result.warnings)
                patch = pod_patch(pod, result)
                decision = Decision(patch, warnings, result.injected, result.reason)
                self.cache.put(key, decision)
        except Exception as exc:
            log.exception(
                "injection failed; pod admitted unchanged",
                extra={"namespace": namespace, "pod": events.pod_label(pod)},
            )
            decision = Decision(
                warnings=(f"lumigo-injector: pod admitted without injection: {exc}",),
                reason=f"injection failed: {exc}",
                failed=True,
            )
            self._report(pod, namespace, decision, request.dry_run, intent=True)
            return decision
        intent = has_intent(pod, namespace_annotations)
        self._report(pod, namespace, decision, request.dry_run, intent=intent)
        if decision.patch and namespace and not request.dry_run and self._on_injected is not None:
            self._on_injected(namespace)
        return decision

    def _test_fault(self, pod: Mapping[str, Any]) -> None:
        if self._fault_label and self._fault_label in _map(_map(pod.get("metadata")).get("labels")):
            raise RuntimeError(f"test fault requested by label {self._fault_label}")

    def _report(
        self,
        pod: Mapping[str, Any],
        namespace: str | None,
        decision: Decision,
        dry_run: bool,
        *,
        intent: bool,
    ) -> None:
        if not intent:  # pods that never asked: no Event, a debug line only
            log.debug("pod not injected: %s", decision.reason, extra={"namespace": namespace})
            return
        label = events.pod_label(pod)
        if not decision.failed:
            self.decisions(namespace, label, decision.injected, decision.reason)
        if dry_run or self._recorder is None or not namespace:
            return
        if decision.failed:
            reason = events.REASON_FAILED
        elif decision.injected:
            reason = events.REASON_INJECTED
        else:
            reason = events.REASON_SKIPPED
        message = f"pod {label}: {decision.reason}"
        if decision.warnings and not decision.failed:
            message += " (" + "; ".join(decision.warnings) + ")"
        self._recorder.record(
            events.involved_object(pod, namespace),
            namespace,
            reason=reason,
            message=message,
            warning=decision.failed or bool(decision.warnings),
        )


def build_app(admission: Admission) -> web.Application:
    """The aiohttp application serving `POST /mutate-pods`."""

    async def mutate(http_request: web.Request) -> web.Response:
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.perf_counter()
        try:
            body = await http_request.read()
            request = parse_review(body)
        except MalformedReview as exc:
            log.warning("malformed AdmissionReview: %s", exc)
            return web.json_response({"error": f"malformed AdmissionReview: {exc}"}, status=400)
        try:
            decision = await admission.decide(request)
        except Exception as exc:  # a bug outside the guarded part: still fail open
            log.exception("admission handler error; pod admitted unchanged")
            decision = Decision(
                warnings=(f"lumigo-injector: pod admitted without injection: {exc}",),
                reason=f"internal error: {exc}",
                failed=True,
            )
        seconds = time.perf_counter() - started
        metrics.observe_admission(request.namespace, outcome(decision), seconds)
        if debug:
            log.debug(
                "admission answered",
                extra={
                    "uid": request.uid,
                    "patched": bool(decision.patch),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
        return web.Response(
            body=fastjson.dumps(review_response(request.uid, decision)),
            content_type="application/json",
        )

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, mutate)
    return app
