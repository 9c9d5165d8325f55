"""The kopf side of `serve`: thin handlers that move data between the cluster and pure code.

- Workloads (Deployment, StatefulSet, DaemonSet, CronJob): the workload annotations
  `lumigo.io/inject` and `lumigo.io/enable-logs` are copied onto the pod template, and taken
  back when removed (`lumigo_injector.k8s.propagation` decides).
- Namespaces: their annotations feed the webhook's `NamespaceDirectory`.
- The token Secret is kept in namespaces that inject (`lumigo_injector.serve.secrets_mirror`).

All handlers are `@kopf.on.event`: level-triggered, called for every object at start-up (the
initial listing, which is the "reconcile on start") and on every change. They keep no state
and write nothing but the decided patch, so kopf stores no progress annotations on user
workloads, and two replicas working at once converge on the same result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import kopf

from lumigo_injector.k8s import propagation
from lumigo_injector.serve.fleet.handlers import FleetConfig
from lumigo_injector.serve.fleet.handlers import register as register_fleet
from lumigo_injector.serve.namespaces import NamespaceDirectory, opt_in_view
from lumigo_injector.serve.secrets_mirror import SecretMirror
from lumigo_injector.spec import names as c
from lumigo_injector.spec.inject import PROPAGATED_VALUES, asks_for_python
from lumigo_injector.spec.workloads import PROPAGATED_KINDS

log = logging.getLogger("lumigo_injector.operator")


@dataclass
class OperatorContext:
    """What the handlers share with the webhook."""

    namespaces: NamespaceDirectory
    mirror: SecretMirror
    never_injected: Callable[[str | None], bool]
    #: False: webhook only; no workload is watched or patched (the chart's
    #: `propagation.enabled: false`, whose ClusterRole grants no workload rights).
    propagate: bool = True
    #: The fleet checks (missed pods, upgrades, rollback); None: not run.
    fleet: FleetConfig | None = None

    async def ensure_secret(self, namespace: str) -> None:
        """Mirror the token into `namespace` (no-op without a token); log, never raise."""
        if not self.mirror.enabled or self.never_injected(namespace):
            return
        if self.mirror.recently_checked(namespace):
            return
        try:
            await asyncio.to_thread(self.mirror.ensure, namespace)
        except Exception as exc:
            log.warning(
                "cannot mirror the token Secret: %s",
                exc,
                extra={"namespace": namespace, "secret": self.mirror.name},
            )


def kopf_settings() -> kopf.OperatorSettings:
    """kopf configured for this operator: standalone, no admission, no CRD scanning."""
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True  # no peering: every replica works (safely) on its own
    settings.scanning.disabled = True  # built-in resources only: no CRD watching, no CRD RBAC
    settings.admission.server = None  # our own server serves /mutate-pods ...
    settings.admission.managed = None  # ... and the chart owns the webhook configuration
    settings.posting.level = logging.WARNING  # Events on workloads only for problems
    settings.watching.server_timeout = 300
    return settings


def merge_into(target: MutableMapping[str, Any], patch: Mapping[str, Any]) -> None:
    """Deep-merge a JSON merge patch into kopf's patch object (None values kept: deletions)."""
    for key, value in patch.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, MutableMapping):
            merge_into(current, value)
        elif isinstance(value, Mapping):
            target[key] = {}
            merge_into(target[key], value)
        else:
            target[key] = value


def _concerns_us(kind: str) -> Callable[..., bool]:
    """A cheap kopf `when=` filter: only workloads with something to propagate or undo."""

    def when(body: Mapping[str, Any], **_: Any) -> bool:
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if propagation.concerns_us(annotations):
            return True
        if c.ANNOTATION_INJECT_PAUSED in annotations:  # a rollback: the template is taken back
            return True
        return propagation.injects_in_namespace(body, kind)

    return when


def _workload_handler(kind: str, ctx: OperatorContext) -> Callable[..., Any]:
    warned: set[tuple[str | None, str | None, str]] = set()

    async def on_workload(
        type: str | None,
        body: Mapping[str, Any],
        patch: kopf.Patch,
        name: str | None,
        namespace: str | None,
        **_: Any,
    ) -> None:
        if type == "DELETED":
            return
        value = propagation.workload_value(body)
        unknown = value is not None and value not in PROPAGATED_VALUES
        if unknown and (namespace, name, value) not in warned:  # once, not on every update
            warned.add((namespace, name, str(value)))
            log.warning(
                "%s %s/%s: unknown %s value %r, treated as absent (use python or false)",
                kind,
                namespace,
                name,
                c.ANNOTATION_INJECT,
                value,
                extra={"kind": kind, "namespace": namespace, "workload": name},
            )
        change = propagation.plan(body, kind)
        if change is not None:
            merge_into(patch, change.patch)
            log.info(
                "%s %s/%s: %s",
                kind,
                namespace,
                name,
                change.description,
                extra={"kind": kind, "namespace": namespace, "workload": name},
            )
        if namespace and propagation.injects_in_namespace(body, kind):
            await ctx.ensure_secret(namespace)

    return on_workload


def build_registry(ctx: OperatorContext) -> kopf.OperatorRegistry:
    """A kopf registry with this operator's handlers (nothing global)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> Any:
        """In-cluster service account, else KUBECONFIG / ~/.kube/config."""
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry, id="rotate-token-secrets")
    async def rotate_secrets(**_: Any) -> None:
        """Bring every managed token Secret up to date (a new token comes with a restart)."""
        if not ctx.mirror.enabled:
            return
        try:
            done = await asyncio.to_thread(ctx.mirror.rotate_all)
        except Exception as exc:
            log.warning("cannot check the managed token Secrets: %s", exc)
            return
        updated = sorted(ns for ns, action in done.items() if action == "update")
        log.info(
            "managed token Secrets checked",
            extra={"checked": len(done), "updated_namespaces": updated},
        )

    @kopf.on.event("", "v1", "namespaces", registry=registry, id="namespace-annotations")
    async def on_namespace(type: str | None, body: Mapping[str, Any], name: str, **_: Any) -> None:
        if type == "DELETED":
            ctx.namespaces.forget(name)
            return
        annotations = opt_in_view(body.get("metadata") or {})  # the label counts too
        ctx.namespaces.update(name, annotations)
        if asks_for_python(annotations):
            await ctx.ensure_secret(name)

    if ctx.fleet is not None:
        register_fleet(registry, ctx.fleet, ctx.namespaces.cached, ctx.never_injected)
    for workload in PROPAGATED_KINDS if ctx.propagate else ():
        kopf.on.event(
            workload.group,
            workload.version,
            workload.resource,
            registry=registry,
            id=f"propagate-{workload.resource}",
            when=_concerns_us(workload.kind),
        )(_workload_handler(workload.kind, ctx))
    return registry
