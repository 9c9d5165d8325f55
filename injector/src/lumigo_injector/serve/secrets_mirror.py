"""Mirror the Lumigo token into each namespace where the injector injects.

Injected containers read `LUMIGO_TRACER_TOKEN` from a Secret in their own namespace (Secrets
cannot be referenced across namespaces). With a token configured, the injector keeps that
Secret there: created when missing, updated when the token rotates, labelled
`app.kubernetes.io/managed-by: lumigo-injector`. A Secret of the same name without that
label belongs to the user and is never modified.

`plan_secret()` is the pure decision; `SecretMirror` makes the few API calls around it.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lumigo_injector.spec import names as c

log = logging.getLogger("lumigo_injector.secrets")

Action = Literal["create", "update", "keep", "foreign"]


@dataclass(frozen=True)
class SecretPlan:
    """What to do with the namespace's Secret; `body` is the object or the merge patch."""

    action: Action
    reason: str
    body: dict[str, Any] | None = None


def encode(token: str) -> str:
    """The Secret `data` encoding of a token."""
    return base64.b64encode(token.encode()).decode("ascii")


def is_managed(secret: Mapping[str, Any]) -> bool:
    """Whether the injector made this Secret."""
    metadata = secret.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return isinstance(labels, Mapping) and labels.get(c.LABEL_MANAGED_BY) == c.MANAGED_BY_VALUE


def plan_secret(
    existing: Mapping[str, Any] | None,
    *,
    namespace: str,
    name: str,
    key: str,
    token: str,
) -> SecretPlan:
    """Decide how to make `namespace/name` hold `token` under `key`."""
    data = {key: encode(token)}
    if existing is None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE},
            },
            "data": data,
        }
        return SecretPlan("create", "missing", body)
    if not is_managed(existing):
        return SecretPlan("foreign", "a Secret of that name exists and is not managed by us")
    current = existing.get("data")
    if isinstance(current, Mapping) and current.get(key) == data[key]:
        return SecretPlan("keep", "up to date")
    return SecretPlan("update", "token changed", {"data": data})


class SecretMirror:
    """Thin shell around `plan_secret`: read, decide, write (blocking; call from a thread).

    `ensure()` remembers namespaces it has checked for `recheck_after` seconds, so the
    admission path can call it for every injected pod without an API call per pod.
    """

    def __init__(
        self,
        core: Any,
        *,
        token: str | None,
        name: str,
        key: str,
        recheck_after: float = 300.0,
    ) -> None:
        self._core = core
        self._token = token
        self.name = name
        self.key = key
        self._recheck_after = recheck_after
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def recently_checked(self, namespace: str) -> bool:
        """Whether `ensure(namespace)` would skip the API (cheap; safe from any thread)."""
        with self._lock:
            checked = self._checked.get(namespace)
        return checked is not None and time.monotonic() - checked < self._recheck_after

    def ensure(self, namespace: str, *, force: bool = False) -> Action | None:
        """Make the namespace's Secret current; return what was done (None: skipped)."""
        if self._token is None or (not force and self.recently_checked(namespace)):
            return None
        action = self._apply(namespace, self._read(namespace))
        if action is None:  # another replica created it between our read and our write
            action = self._apply(namespace, self._read(namespace)) or "keep"
        with self._lock:
            self._checked[namespace] = time.monotonic()
        return action

    def rotate_all(self) -> dict[str, Action]:
        """Bring every managed Secret of our name up to date (called at start-up).

        Walks the namespaces and reads only the Secret of our name in each: listing Secrets
        would need permission to read every Secret in the cluster, which the chart's RBAC
        deliberately does not grant.
        """
        if self._token is None:
            return {}
        done: dict[str, Action] = {}
        for item in self._core.list_namespace().items:
            namespace = item.metadata.name
            secret = self._read(namespace) if namespace else None
            if secret is None or not is_managed(secret):
                continue
            done[namespace] = self._apply(namespace, secret) or "keep"
            with self._lock:
                self._checked[namespace] = time.monotonic()
        return done

    def _read(self, namespace: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self._core.read_namespaced_secret(self.name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        result: dict[str, Any] = self._core.api_client.sanitize_for_serialization(secret)
        return result

    def _apply(self, namespace: str, existing: Mapping[str, Any] | None) -> Action | None:
        """Carry out the plan; None when a create lost a race (read again and retry)."""
        from kubernetes.client.exceptions import ApiException

        assert self._token is not None
        plan = plan_secret(
            existing, namespace=namespace, name=self.name, key=self.key, token=self._token
        )
        extra = {"namespace": namespace, "secret": self.name, "action": plan.action}
        if plan.action == "create":
            try:
                self._core.create_namespaced_secret(namespace, plan.body)
            except ApiException as exc:
                if exc.status == 409:
                    return None
                raise
            log.info("token Secret created", extra=extra)
        elif plan.action == "update":
            self._core.patch_namespaced_secret(self.name, namespace, plan.body)
            log.info("token Secret updated (token rotated)", extra=extra)
        elif plan.action == "foreign":
            log.info("token Secret left alone: %s", plan.reason, extra=extra)
        return plan.action
