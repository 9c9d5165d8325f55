"""The fleet pass: every few seconds, assess the watched pods, report, and act when allowed.

Reports (always): the Prometheus gauges per namespace; a Warning Event on a workload when its
set of pods missing injection changes, a Normal Event when its outdated pods change, a
Warning Event when its injected rollout crash-loops; one log line per change.

Acts (each opt-in, each one decision line `fleet decision: ...`):
- rollback (`rollback`): pause a crash-looping injected workload (`k8s.rollout.pause_patch`);
- catch-up (`catch_up_restart`): restart one workload whose pods missed injection;
- upgrade (`upgrade_rollout=automatic`): restart up to `wave_size` workloads on an older layer.
Restarts are rate-limited: at least `min_action_interval` seconds apart, the next only once
every restarted workload has rolled out (or `cooldown` passed), and a workload again only
`cooldown` seconds after its last restart (its `lumigo.io/restarted` record, which every
replica reads).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lumigo_injector.k8s import fleet, rollout
from lumigo_injector.serve import metrics
from lumigo_injector.serve.fleet.index import FleetIndex
from lumigo_injector.serve.fleet.settings import FleetSettings
from lumigo_injector.spec.plain import as_map
from lumigo_injector.spec.workloads import KINDS

log = logging.getLogger("lumigo_injector.fleet")

REASON_MISSED = "LumigoMissedPods"
REASON_OUTDATED = "LumigoOutdatedPods"
REASON_CRASH_LOOP = "LumigoInjectedCrashLoop"
REASON_ROLLED_BACK = "LumigoRolledBack"
REASON_RESTARTED = "LumigoRestarted"


class Recorder(Protocol):
    def record(
        self,
        involved: Mapping[str, Any],
        namespace: str,
        *,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None: ...


class Patcher(Protocol):
    async def auth_headers(self) -> Mapping[str, str]: ...

    async def merge_patch_path(
        self, path: str, patch: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None: ...


def workload_path(kind: str, namespace: str, name: str) -> str:
    info = KINDS[kind]
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    return f"{prefix}/namespaces/{namespace}/{info.resource}/{name}"


def stamp(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _InFlight:
    stamp: str
    started: float  # monotonic


class FleetController:
    """One pass at a time over the index (call `run_pass` on the event loop)."""

    def __init__(
        self,
        settings: FleetSettings,
        index: FleetIndex,
        *,
        layer_version: str,
        namespaces: Callable[[str], Mapping[str, Any] | None],
        never_injected: Callable[[str | None], bool],
        recorder: Recorder,
        api: Patcher,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.index = index
        self.layer_version = layer_version
        self._namespaces = namespaces
        self._never_injected = never_injected
        self._recorder = recorder
        self._api = api
        self._clock = clock
        self._monotonic = monotonic
        self._last_action: float | None = None
        self._in_flight: dict[fleet.Key, _InFlight] = {}
        self._rolled_back: set[fleet.Key] = set()
        self._reported: dict[tuple[str, fleet.Key], frozenset[str]] = {}
        self._gauge_namespaces: set[str] = set()
        self.reports: list[fleet.WorkloadReport] = []

    # --- assessment and reporting --------------------------------------------------------

    def assess(self) -> list[fleet.WorkloadReport]:
        workloads = [
            (kind, obj)
            for kind, obj in self.index.all_workloads()
            if not self._never_injected(as_map(obj.get("metadata")).get("namespace"))
        ]
        names = {str(as_map(o.get("metadata")).get("namespace")) for _, o in workloads}
        namespaces = {ns: self._namespaces(ns) or {} for ns in names}
        return fleet.assess(
            workloads,
            self.index.pods.values(),
            namespaces,
            self.layer_version,
            now=self._clock(),
        )

    async def run_pass(self) -> None:
        """Assess, publish, report, then act (rollbacks first, then at most one restart)."""
        self.reports = self.assess()
        self._publish(self.reports)
        for report in self.reports:
            self._report_changes(report)
        for report in self.reports:
            if report.rollback is not None:
                await self._rollback(report)
        await self._restarts(self.reports)

    def _publish(self, reports: list[fleet.WorkloadReport]) -> None:
        sums: dict[str, list[int]] = {}
        for report in reports:
            row = sums.setdefault(report.namespace, [0, 0, 0, 0])
            row[0] += report.injected
            row[1] += len(report.missed)
            row[2] += len(report.outdated)
            row[3] += report.paused is not None
        for namespace in self._gauge_namespaces - set(sums):
            sums[namespace] = [0, 0, 0, 0]
        for namespace, (injected, missed, outdated, paused) in sums.items():
            metrics.PODS_INJECTED.labels(namespace).set(injected)
            metrics.PODS_MISSED.labels(namespace).set(missed)
            metrics.PODS_OUTDATED.labels(namespace).set(outdated)
            metrics.WORKLOADS_PAUSED.labels(namespace).set(paused)
        self._gauge_namespaces |= set(sums)

    def _changed(self, what: str, report: fleet.WorkloadReport, pods: frozenset[str]) -> bool:
        key = (what, report.key)
        if self._reported.get(key, frozenset()) == pods:
            return False
        self._reported[key] = pods
        return bool(pods)

    def _event(
        self, report: fleet.WorkloadReport, reason: str, message: str, warning: bool
    ) -> None:
        workload = self.index.workload(report.kind, report.namespace, report.name) or {}
        meta = as_map(workload.get("metadata"))
        info = KINDS[report.kind]
        involved = {
            "apiVersion": f"{info.group}/{info.version}" if info.group else info.version,
            "kind": report.kind,
            "name": report.name,
            "namespace": report.namespace,
        }
        if meta.get("uid"):
            involved["uid"] = meta["uid"]
        self._recorder.record(
            involved, report.namespace, reason=reason, message=message, warning=warning
        )

    def _report_changes(self, report: fleet.WorkloadReport) -> None:
        extra = {"namespace": report.namespace, "kind": report.kind, "workload": report.name}
        if self._changed("missed", report, frozenset(report.missed)):
            details = "; ".join(f"{pod}: {why}" for pod, why in sorted(report.missed.items()))
            message = (
                f"{len(report.missed)} pod(s) ask for injection and are not injected ({details})"
            )
            if not self.settings.catch_up_restart:
                message += "; restart the workload, or enable catchUp.restart"
            self._event(report, REASON_MISSED, message, warning=True)
            log.warning("%s %s/%s: %s", report.kind, report.namespace, report.name, message,
                        extra={**extra, "pods": sorted(report.missed)})  # fmt: skip
        if self._changed("outdated", report, frozenset(report.outdated)):
            message = (
                f"{len(report.outdated)} pod(s) run another layer than {self.layer_version} "
                f"({', '.join(sorted(report.outdated))})"
            )
            if self.settings.upgrade_rollout == "manual":
                message += "; restart the workload to upgrade (upgrade.rollout: manual)"
            self._event(report, REASON_OUTDATED, message, warning=False)
            log.info("%s %s/%s: %s", report.kind, report.namespace, report.name, message,
                     extra={**extra, "pods": sorted(report.outdated)})  # fmt: skip
        crashing = frozenset([report.rollback] if report.rollback else [])
        if self._changed("crash", report, crashing) and not self.settings.rollback:
            message = f"{report.rollback}; rollback is off (rollback.enabled: false)"
            self._event(report, REASON_CRASH_LOOP, message, warning=True)
            log.warning("%s %s/%s: %s", report.kind, report.namespace, report.name, message,
                        extra=extra)  # fmt: skip

    # --- actions -------------------------------------------------------------------------

    def _decision(self, action: str, report: fleet.WorkloadReport, why: str) -> None:
        log.info(
            "fleet decision: %s %s %s/%s: %s",
            action,
            report.kind,
            report.namespace,
            report.name,
            why,
            extra={
                "decision": action,
                "namespace": report.namespace,
                "kind": report.kind,
                "workload": report.name,
                "reason": why,
            },
        )

    async def _patch(self, report: fleet.WorkloadReport, patch: Mapping[str, Any]) -> bool:
        path = workload_path(report.kind, report.namespace, report.name)
        try:
            headers = await self._api.auth_headers()
            await self._api.merge_patch_path(path, patch, headers)
        except Exception as exc:
            log.warning(
                "cannot patch %s %s/%s: %s", report.kind, report.namespace, report.name, exc,
                extra={"namespace": report.namespace, "workload": report.name},
            )  # fmt: skip
            return False
        return True

    async def _rollback(self, report: fleet.WorkloadReport) -> None:
        if not self.settings.rollback or report.key in self._rolled_back:
            return
        workload = self.index.workload(report.kind, report.namespace, report.name)
        if workload is None or report.rollback is None:
            return
        reason = report.rollback[:200]
        if not await self._patch(report, rollout.pause_patch(workload, report.kind, reason)):
            return
        self._rolled_back.add(report.key)
        self._decision("rollback", report, reason)
        metrics.ROLLBACKS.labels(report.namespace).inc()
        message = (
            f"injection paused and taken back from the pod template: {reason}; remove the "
            f"annotation lumigo.io/inject-paused to try again"
        )
        self._event(report, REASON_ROLLED_BACK, message, warning=True)

    def _settled(self, reports: Mapping[fleet.Key, fleet.WorkloadReport]) -> bool:
        """Forget finished rollouts; whether none of ours is still rolling."""
        now = self._monotonic()
        for key, flight in list(self._in_flight.items()):
            report = reports.get(key)
            workload = self.index.workload(key[1], key[0], key[2])
            done = (
                report is None
                or workload is None
                or rollout.rollout_complete(workload, key[1], report.pods, flight.stamp)
            )
            if done or now - flight.started > self.settings.cooldown:
                del self._in_flight[key]
        return not self._in_flight

    def _may_restart(self, report: fleet.WorkloadReport, pods: Iterable[str]) -> bool:
        """Whether restarting helps `pods` of this workload and is allowed now."""
        if report.paused is not None or report.rollback is not None:
            return False
        workload = self.index.workload(report.kind, report.namespace, report.name)
        if workload is None or not rollout.helped_by_restart(workload, report.pods, pods):
            return False
        last = rollout.last_restart(workload)
        return last is None or self._clock() - last >= self.settings.cooldown

    async def _restarts(self, reports: list[fleet.WorkloadReport]) -> None:
        by_key = {r.key: r for r in reports}
        for key in list(self._rolled_back):  # the pause is visible now: it guards on its own
            report = by_key.get(key)
            if report is None or report.paused is not None:
                self._rolled_back.discard(key)
        if not self._settled(by_key):
            return
        if self._last_action is not None and (
            self._monotonic() - self._last_action < self.settings.min_action_interval
        ):
            return
        wave: list[tuple[fleet.WorkloadReport, str]] = []
        if self.settings.catch_up_restart:
            wave = [(r, "catch-up") for r in reports if self._may_restart(r, r.missed)][:1]
        if not wave and self.settings.upgrade_rollout == "automatic":
            candidates = [r for r in reports if self._may_restart(r, r.outdated)]
            wave = [(r, "upgrade") for r in candidates[: self.settings.wave_size]]
        if not wave:
            return
        when = stamp(self._clock())
        self._last_action = self._monotonic()
        for report, reason in wave:
            if not await self._patch(report, rollout.restart_patch(report.kind, when, reason)):
                continue
            self._in_flight[report.key] = _InFlight(when, self._monotonic())
            if reason == "catch-up":
                why = (
                    f"{len(report.missed)} pod(s) not injected: {', '.join(sorted(report.missed))}"
                )
            else:
                why = f"{len(report.outdated)} pod(s) on an older layer than {self.layer_version}"
            self._decision(f"restart ({reason})", report, why)
            metrics.RESTARTS.labels(report.namespace, reason).inc()
            self._event(report, REASON_RESTARTED, f"restarted ({reason}): {why}", warning=False)
