"""Kubernetes Events for admission decisions: which object they attach to, and posting them.

A pod at admission often has no name yet (a Deployment's pods carry only `generateName`;
the API server names them after the webhooks ran) and never has a uid. An Event attached to
such a pod would point at nothing. So the Event goes to:

1. the pod itself when it has a name (a bare pod): `kubectl events --for pod/NAME`;
2. else its controller from `ownerReferences` (e.g. the ReplicaSet `web-7d4b9c`, with its
   uid, so `kubectl describe rs web-7d4b9c` lists it); the message names the pod's
   `generateName`;
3. else the namespace itself.

Posting happens in the background after the admission answer; failures are logged only.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("lumigo_injector.events")

COMPONENT = "lumigo-injector"
REASON_INJECTED = "LumigoInjected"
REASON_SKIPPED = "LumigoSkipped"
REASON_FAILED = "LumigoInjectionFailed"
MAX_MESSAGE = 1024


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def pod_label(pod: Mapping[str, Any]) -> str:
    """How to call the pod in a message: its name, else `generateName*`, else `<unnamed>`."""
    meta = _map(pod.get("metadata"))
    name = meta.get("name")
    if isinstance(name, str) and name:
        return name
    prefix = meta.get("generateName")
    if isinstance(prefix, str) and prefix:
        return prefix + "*"
    return "<unnamed>"


def involved_object(pod: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The object an Event about this admitted pod attaches to (see module docstring)."""
    meta = _map(pod.get("metadata"))
    name = meta.get("name")
    if isinstance(name, str) and name:
        return {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace}
    owners = [_map(ref) for ref in meta.get("ownerReferences") or () if isinstance(ref, Mapping)]
    owners = [ref for ref in owners if ref.get("kind") and ref.get("name")]
    if owners:
        owner = next((ref for ref in owners if ref.get("controller")), owners[0])
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


def event_body(
    involved: Mapping[str, Any],
    namespace: str,
    *,
    reason: str,
    message: str,
    warning: bool = False,
    now: datetime.datetime | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event; it carries its own unique name (no reliance on generateName)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
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
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    """Posts Events in the background with a bounded backlog (drops, with a log, when full)."""

    def __init__(self, core: Any, *, max_pending: int = 200, workers: int = 2) -> None:
        self._core = core
        self._max_pending = max_pending
        # Own threads: a burst of Events never delays a namespace read in the admission path.
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="events")
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def record(self, body: dict[str, Any]) -> None:
        """Schedule posting of one Event (call from the event loop)."""
        if len(self._tasks) >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:  # a trickle of lines, not a flood
                log.warning(
                    "event backlog full; events dropped",
                    extra={"reason": body["reason"], "dropped_total": self.dropped},
                )
            return
        task = asyncio.get_running_loop().create_task(self._post(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._create, namespace, body)
        except Exception as exc:
            log.warning(
                "cannot post event: %s",
                exc,
                extra={"namespace": namespace, "reason": body["reason"]},
            )

    def _create(self, namespace: str, body: dict[str, Any]) -> None:
        # The answer is not needed: skip deserialising it into a model (most of the cost).
        response = self._core.create_namespaced_event(namespace, body, _preload_content=False)
        response.release_conn()

    async def drain(self, timeout: float = 2.0) -> None:
        """Wait a little for pending posts (on shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)
