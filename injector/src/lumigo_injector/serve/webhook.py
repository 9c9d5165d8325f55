"""The mutating admission webhook: `POST /mutate-pods` over HTTPS, AdmissionReview v1.

The body is read with a hard size limit (a bigger one is refused with `413` and not kept) and
parsed once, at the edge, into a bounded `AdmissionRequest` (`review.py`); a body that is not
an AdmissionReview v1 gets `400` with a message saying what is wrong. A well-formed review
always gets `200` with `allowed: true`: with a base64 JSONPatch when the pod is injected,
without one otherwise.

The decision is made by `Admission.admit`, which the kopf mutating handler
`Admission.mutate_pod` (`kopf_admission.py` registers it with kopf) calls too; the server here
calls it directly, without building kopf's `Patch` to read the JSONPatch back. Any error while
deciding is *fail-open*: the pod is admitted unchanged, the reason is logged, returned as an
admission warning and posted as a Warning Event; an error outside the handler is caught by
the server and admits the pod unchanged too. The handler keeps no state that matters for
correctness (a bounded cache of recent decisions), so any number of replicas serve side by side.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web

from lumigo_injector.k8s import patch_writer
from lumigo_injector.k8s.mutation import InjectionSettings, inject
from lumigo_injector.serve import events, fastjson, kopf_admission, metrics
from lumigo_injector.serve.decision_log import DecisionLog
from lumigo_injector.serve.patches import pod_patch
from lumigo_injector.serve.review import (
    AdmissionRequest,
    MalformedReview,
    answer_json,
    b64_text,
    encode_patch,
    parse_review,
)
from lumigo_injector.spec import names as c
from lumigo_injector.spec.records import cheap_init

log = logging.getLogger("lumigo_injector.webhook")

PATH = "/" + kopf_admission.HANDLER_ID
#: The API server refuses requests over 3 MiB, so no pod it admits comes in a bigger review.
MAX_BODY = 3 * 1024 * 1024
#: Seconds a connection may stay idle (or take to send one body) before it is closed.
IDLE_TIMEOUT = 30.0
BODY_TIMEOUT = 10.0
MAX_REASON = 256
FAILED = "lumigo-injector: pod admitted without injection: "


@cheap_init
@dataclass(frozen=True)
class Decision:
    """The answer to one review, plus what to log and report."""

    patch: list[dict[str, Any]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    injected: bool = False
    reason: str = ""
    failed: bool = False
    #: `patch` as the answer carries it (`review.encode_patch`), made once per decision: a
    #: cached decision answers the replicas of a workload without encoding it again. Set
    #: whenever the pod is patched; `patch` is then empty when the patch was written as JSON
    #: directly (`k8s.patch_writer`): `operations()` reads it back.
    encoded: str | None = None

    def operations(self) -> list[dict[str, Any]]:
        """The JSONPatch's operations (read back from `encoded` when only that was made)."""
        if self.patch or self.encoded is None:
            return self.patch
        ops: list[dict[str, Any]] = fastjson.loads(base64.b64decode(self.encoded))
        return ops


def _map(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # parsed JSON: no ABC check
        return value
    return value if isinstance(value, Mapping) else {}


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
    most `size` decisions are kept (least recently used dropped first): at most
    `size * max_pod_bytes` (16 MiB) of keys.
    """

    def __init__(self, size: int = 256, max_pod_bytes: int = 64 * 1024) -> None:
        self._size = size
        self._max_pod_bytes = max_pod_bytes
        self._entries: OrderedDict[CacheKey, Decision] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def key(
        self,
        pod: Mapping[str, Any],
        namespace: Mapping[str, str],
        serialised: bytes | None = None,
    ) -> CacheKey | None:
        """The pod's key (`serialised`: its `fastjson.dumps`, when the caller has it)."""
        if self._size <= 0:
            return None
        if serialised is None:
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


def failure(exc: BaseException, what: str) -> Decision:
    """The fail-open decision for an error: admitted unchanged, with the reason."""
    text = str(exc)[:MAX_REASON] or exc.__class__.__name__
    return Decision(warnings=(FAILED + text,), reason=f"{what}: {text}", failed=True)


class Admission:
    """Decides on admission requests; `mutate_pod` is its kopf handler, `build_app` its server."""

    def __init__(
        self,
        *,
        injection: InjectionSettings,
        namespaces: NamespaceLookup,
        never_injected: Callable[[str | None], bool] = lambda _: False,
        recorder: events.EventRecorder | None = None,
        on_injected: Callable[[str], None] | None = None,
    ) -> None:
        self._injection = injection
        self._namespaces = namespaces
        self._never_injected = never_injected
        self._recorder = recorder
        self._on_injected = on_injected
        self.decisions = DecisionLog()
        self.cache = DecisionCache()
        self.registry = kopf_admission.register(self.mutate_pod)

    async def mutate_pod(
        self,
        *,
        body: Mapping[str, Any],
        patch: kopf.Patch,
        warnings: list[str],
        operation: str | None = None,
        dryrun: bool = False,
        namespace: str | None = None,
        **_: Any,
    ) -> None:
        """kopf's mutating handler for pod CREATEs: the patch and warnings go into kopf's
        `patch` and `warnings`. Never raises: on any error the pod is admitted unchanged."""
        try:
            pod = body if isinstance(body, dict) else dict(body)  # kopf passes a Body view
        except Exception as exc:  # outside the guarded decision: still fail open
            log.exception("admission handler error; pod admitted unchanged")
            decision = failure(exc, "internal error")
            metrics.observe_admission(namespace, outcome(decision), 0.0)
        else:
            request = AdmissionRequest("", "Pod", operation or "CREATE", namespace, pod, dryrun)
            decision = await self.admit(request)
        warnings.extend(decision.warnings)
        if decision.encoded is not None:
            patch.fns.append(kopf_admission.PatchOps(decision.operations()))

    async def admit(self, request: AdmissionRequest) -> Decision:
        """`decide`, counted and timed in the metrics; never raises: on any error the pod is
        admitted unchanged. `mutate_pod` (kopf's form) and `review_answer` both call it."""
        started = time.perf_counter()
        try:
            decision = await self.decide(request)
        except Exception as exc:  # outside the guarded decision: still fail open
            log.exception("admission handler error; pod admitted unchanged")
            decision = failure(exc, "internal error")
        elapsed = time.perf_counter() - started
        metrics.observe_admission(request.namespace, outcome(decision), elapsed)
        return decision

    async def decide(self, request: AdmissionRequest) -> Decision:
        """Mutate a pod CREATE; let everything else through untouched.

        Errors while reading the namespace, mutating or diffing admit the pod unchanged and
        are reported; errors in the reporting itself propagate (the handler catches them).
        """
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
            key = self.cache.key(pod, namespace_annotations, request.obj_json)
            decision = self.cache.get(key)
            if decision is None:
                decision = self._written(pod, namespace_annotations)
                if decision is not None:
                    self.cache.put(key, decision)
            if decision is None:
                # A pod parsed from the body by orjson (`obj_json` set: no object shared in
                # it) belongs to this admission alone: the mutation changes it in place, no
                # copy. What is read of it afterwards (`has_intent`, `_report`: its name,
                # generateName, owners, `lumigo.io/inject`) the mutation never changes; a
                # re-injection diffs the pod against the uninjected copy it works on.
                copy = pod if request.obj_json is not None and type(pod) is dict else None
                result = inject(pod, self._injection, namespace_annotations, working_copy=copy)
                warnings = (
                    tuple([f"lumigo-injector: {w}" for w in result.warnings])
                    if result.warnings
                    else ()
                )
                patch = pod_patch(pod, result)
                encoded = encode_patch(patch) if patch else None
                reason = result.reason[:MAX_REASON]
                decision = Decision(patch, warnings, result.injected, reason, encoded=encoded)
                self.cache.put(key, decision)
        except Exception as exc:
            log.exception(
                "injection failed; pod admitted unchanged",
                extra={"namespace": namespace, "pod": events.pod_label(pod)},
            )
            decision = failure(exc, "injection failed")
            self._report(pod, namespace, decision, request.dry_run, intent=True)
            return decision
        intent = has_intent(pod, namespace_annotations)
        self._report(pod, namespace, decision, request.dry_run, intent=intent)
        if (
            decision.encoded is not None
            and namespace
            and not request.dry_run
            and self._on_injected is not None
        ):
            self._on_injected(namespace)
        return decision

    def _written(
        self, pod: Mapping[str, Any], namespace_annotations: Mapping[str, str]
    ) -> Decision | None:
        """The decision for a fresh injection whose patch `patch_writer` writes directly
        (the same JSON `inject`'s operations give), stored in the cache; else None."""
        written = patch_writer.written(pod, self._injection, namespace_annotations)
        if written is None:
            return None
        if not written.injected:  # not asked for: `inject`'s skip, without running it
            return Decision(reason=written.reason[:MAX_REASON])
        warnings = (
            tuple([f"lumigo-injector: {w}" for w in written.warnings]) if written.warnings else ()
        )
        encoded = b64_text(written.patch_json)
        return Decision([], warnings, True, written.reason[:MAX_REASON], encoded=encoded)

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
            message=message[: events.MAX_MESSAGE],
            warning=decision.failed or bool(decision.warnings),
        )


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes | None:
    """The request body, or None when it is over `limit` bytes (and then none of it is kept).

    A declared `Content-Length` over the limit is refused before reading; a chunked body is
    read piece by piece and dropped the moment it passes the limit. aiohttp then discards
    the rest of the upload without keeping it.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            chunks.clear()
            return None
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        body=fastjson.dumps({"error": message}), status=status, content_type="application/json"
    )


async def review_answer(admission: Admission, body: bytes, started: float | None = None) -> bytes:
    """The AdmissionReview answer (JSON) to a request body; `MalformedReview` if it is none.

    `started` (a `perf_counter` reading) asks for a debug line with the time taken.
    """
    request = parse_review(body)
    patch_ops: list[dict[str, Any]] | tuple[()] = ()
    encoded: str | None = None
    warnings: list[str] | tuple[str, ...] = ()
    if request.kind == "Pod" and request.operation == "CREATE" and request.obj is not None:
        # kopf's registration (pods, CREATE) selects the handler the same way
        try:
            decision = await admission.admit(request)
            patch_ops, warnings, encoded = decision.patch, decision.warnings, decision.encoded
        except Exception as exc:  # a bug outside the handler's guard: still fail open
            log.exception("admission server error; pod admitted unchanged")
            patch_ops, warnings = (), failure(exc, "internal error").warnings
    if started is not None:
        log.debug(
            "admission answered",
            extra={
                "uid": request.uid,
                "patched": encoded is not None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )
    return answer_json(request.uid, patch_ops, warnings, encoded)


def build_app(admission: Admission) -> web.Application:
    """The aiohttp application serving `POST /mutate-pods` through `admission.admit`."""

    async def mutate(http_request: web.Request) -> web.Response:
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        try:
            if http_request.content.is_eof():  # all of it is here: nothing to wait for
                body = await read_body(http_request)
            else:
                async with asyncio.timeout(BODY_TIMEOUT):
                    body = await read_body(http_request)
        except TimeoutError:
            log.warning("admission request body not received within %gs", BODY_TIMEOUT)
            response = _error(408, f"request body not received within {BODY_TIMEOUT:g}s")
            response.force_close()
            return response
        if body is None:
            log.warning("admission request over %d bytes refused", MAX_BODY)
            return _error(413, f"request body over {MAX_BODY} bytes")
        try:
            answer = await review_answer(admission, body, started if debug else None)
        except MalformedReview as exc:
            log.warning("malformed AdmissionReview: %s", exc)
            return _error(400, f"malformed AdmissionReview: {exc}")
        return web.Response(body=answer, content_type="application/json")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, mutate)
    return app


async def start(
    admission: Admission,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
) -> web.AppRunner:
    """Serve the webhook on `host:port`; idle connections close after `idle_timeout` s."""
    runner = web.AppRunner(
        build_app(admission),
        access_log=None,
        handle_signals=False,
        keepalive_timeout=idle_timeout,
        shutdown_timeout=5,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    return runner
