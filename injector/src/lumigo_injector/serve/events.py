"""Kubernetes Events for admission decisions: which object they attach to, and posting them.

A pod at admission often has no name yet (a Deployment's pods carry only `generateName`;
the API server names them after the webhooks ran) and never has a uid. An Event attached to
such a pod would point at nothing. So the Event goes to:

1. the pod itself when it has a name (a bare pod): `kubectl events --for pod/NAME`;
2. else its controller from `ownerReferences` (e.g. the ReplicaSet `web-7d4b9c`, with its
   uid, so `kubectl describe rs web-7d4b9c` lists it); the message names the pod's
   `generateName`;
3. else the namespace itself.

Admission only *counts* an Event (`EventRecorder.record`: a dict update, no I/O, never
waits). Identical Events (same object, reason, type and message; e.g. every pod of one
ReplicaSet) are aggregated the way Kubernetes' own recorders do it: a flusher on the event loop
posts one Event per group about once a second and, for later repeats, patches that Event's
`count` and `lastTimestamp` (`kubectl describe` shows "x42 over 3m"). The number of groups
waiting for the next flush is bounded; beyond it Events are dropped with a rate-limited
warning. Posting failures are logged (rate-limited) and never reach the admission answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lumigo_injector.spec.naming import controller_reference
from lumigo_injector.spec.plain import as_map

log = logging.getLogger("lumigo_injector.events")

COMPONENT = "lumigo-injector"
REASON_INJECTED = "LumigoInjected"
REASON_SKIPPED = "LumigoSkipped"
REASON_FAILED = "LumigoInjectionFailed"
MAX_MESSAGE = 1024


def pod_label(pod: Mapping[str, Any]) -> str:
    """How to call the pod in a message: its name, else `generateName*`, else `<unnamed>`."""
    meta = as_map(pod.get("metadata"))
    name = meta.get("name")
    if isinstance(name, str) and name:
        return name
    prefix = meta.get("generateName")
    if isinstance(prefix, str) and prefix:
        return prefix + "*"
    return "<unnamed>"


def involved_object(pod: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The object an Event about this admitted pod attaches to (see module docstring)."""
    meta = as_map(pod.get("metadata"))
    name = meta.get("name")
    if isinstance(name, str) and name:
        return {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace}
    owner = controller_reference(meta, named=True)
    if owner is not None:
        involved = {
            "apiVersion": owner.get("apiVersion"),
            "kind": owner["kind"],
            "name": owner["name"],
            "namespace": namespace,
        }
        if owner.get("uid"):
            involved["uid"] = owner["uid"]
        return involved
    return {"apiVersion": "v1", "kind": "Namespace", "name": namespace}


def _stamp(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def event_body(
    involved: Mapping[str, Any],
    namespace: str,
    *,
    reason: str,
    message: str,
    warning: bool = False,
    first: float | None = None,
    last: float | None = None,
    count: int = 1,
    instance: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event (times in epoch seconds); it carries its own unique name."""
    first = time.time() if first is None else first
    base = str(involved.get("name") or "pod")[:200]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{base}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": dict(involved),
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance or socket.gethostname(),
        "firstTimestamp": _stamp(first),
        "lastTimestamp": _stamp(first if last is None else last),
        "count": count,
    }


class EventApi(Protocol):
    """Where Events go: the API server (`kube_http.KubeHttp`) or a test double."""

    async def auth_headers(self) -> Mapping[str, str]: ...

    async def create(
        self, namespace: str, plural: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None: ...

    async def merge_patch(
        self,
        namespace: str,
        plural: str,
        name: str,
        patch: Mapping[str, Any],
        headers: Mapping[str, str],
    ) -> None: ...


Key = tuple[str, tuple[tuple[str, Any], ...], str, bool, str]


@dataclass
class _Pending:
    """Occurrences of one Event since the last flush."""

    involved: Mapping[str, Any]
    count: int
    first: float
    last: float


@dataclass
class _Series:
    """An Event already in the API, patched on repeats."""

    name: str
    count: int
    first: float
    updated: float  # monotonic


class RateLimitedWarning:
    """At most one warning line per `interval` seconds, saying how many were suppressed."""

    def __init__(
        self, message: str, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._message = message
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def __call__(self, detail: str = "", **extra: Any) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return
        extra["suppressed"] = self._suppressed
        log.warning("%s%s", self._message, f": {detail}" if detail else "", extra=extra)
        self._last = now
        self._suppressed = 0


class EventRecorder:
    """Aggregates admission Events and posts them from one background task.

    `record()` is O(1) and does no I/O. `max_pending` bounds the distinct Events waiting for
    the next flush (repeats of a waiting Event only raise its count). A repeat of an Event
    posted less than `series_window` seconds ago patches it (`count`, `lastTimestamp`);
    `max_series` such Events are remembered (least recently updated forgotten first).
    """

    def __init__(
        self,
        api: EventApi,
        *,
        interval: float = 1.0,
        max_pending: int = 1000,
        series_window: float = 600.0,
        max_series: int = 4096,
        concurrency: int = 4,
        warn_interval: float = 60.0,
        instance: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._interval = interval
        self._max_pending = max_pending
        self._series_window = series_window
        self._max_series = max_series
        self._concurrency = concurrency
        self._instance = instance or socket.gethostname()
        self._clock = clock
        self._pending: dict[Key, _Pending] = {}
        self._series: OrderedDict[Key, _Series] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._patch_allowed = True
        self._warn_dropped = RateLimitedWarning(
            "event backlog full; events dropped", warn_interval, clock
        )
        self._warn_failed = RateLimitedWarning("cannot post event", warn_interval, clock)
        self.dropped = 0
        self.posted = 0
        self.patched = 0
        self.failed = 0

    @property
    def pending(self) -> int:
        """Distinct Events waiting for the next flush."""
        return len(self._pending)

    def record(
        self,
        involved: Mapping[str, Any],
        namespace: str,
        *,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None:
        """Count one occurrence (call on the event loop). Never blocks, never raises."""
        message = message[:MAX_MESSAGE]
        key: Key = (namespace, tuple(sorted(involved.items())), reason, warning, message)
        now = time.time()
        entry = self._pending.get(key)
        if entry is not None:
            entry.count += 1
            entry.last = now
            return
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            self._warn_dropped(reason=reason, dropped_total=self.dropped)
            return
        self._pending[key] = _Pending(dict(involved), 1, now, now)
        if self._task is None:
            self.start()

    def start(self) -> None:
        """Start the flusher on the running loop (done by the first `record` otherwise)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="events")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # a bug here must not stop later flushes
                log.exception("event flush failed")

    async def flush(self) -> None:
        """Post (or patch) everything recorded so far."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            headers = await self._api.auth_headers()
        except Exception as exc:
            self.failed += len(batch)
            self._warn_failed(f"no credentials: {exc}", events=len(batch))
            return
        gate = asyncio.Semaphore(self._concurrency)

        async def one(key: Key, entry: _Pending) -> None:
            async with gate:
                await self._post(key, entry, headers)

        await asyncio.gather(*(one(key, entry) for key, entry in batch.items()))

    async def _post(self, key: Key, entry: _Pending, headers: Mapping[str, str]) -> None:
        namespace, _, reason, warning, message = key
        series = self._series.get(key)
        try:
            if (
                series is not None
                and self._patch_allowed
                and self._clock() - series.updated < self._series_window
            ):
                total = series.count + entry.count
                patch = {"count": total, "lastTimestamp": _stamp(entry.last)}
                try:
                    await self._api.merge_patch(namespace, "events", series.name, patch, headers)
                except Exception as exc:
                    status = getattr(exc, "status", None)
                    if status not in (403, 404):
                        raise
                    if status == 403:  # RBAC without `patch` on events: one Event per flush
                        self._patch_allowed = False
                        log.warning("not allowed to patch events; repeats are posted anew")
                else:
                    series.count, series.updated = total, self._clock()
                    self._series.move_to_end(key)
                    self.patched += 1
                    return
            body = event_body(
                entry.involved,
                namespace,
                reason=reason,
                message=message,
                warning=warning,
                first=entry.first,
                last=entry.last,
                count=entry.count,
                instance=self._instance,
            )
            await self._api.create(namespace, "events", body, headers)
        except Exception as exc:
            self.failed += 1
            self._warn_failed(
                str(exc) or exc.__class__.__name__, namespace=namespace, reason=reason
            )
            return
        self.posted += 1
        self._series[key] = _Series(
            body["metadata"]["name"], entry.count, entry.first, self._clock()
        )
        self._series.move_to_end(key)
        while len(self._series) > self._max_series:
            self._series.popitem(last=False)

    async def close(self, timeout: float = 2.0) -> None:
        """Stop the flusher and post what is left, waiting at most `timeout` seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except Exception as exc:
            log.warning("events not posted at shutdown: %s", exc.__class__.__name__)
