"""The kopf side of the fleet: watch pods and fleet workloads, run the pass periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from lumigo_injector.k8s.fleet import FLEET_KINDS, owner_of
from lumigo_injector.serve import events
from lumigo_injector.serve.fleet.controller import FleetController
from lumigo_injector.serve.fleet.index import FleetIndex
from lumigo_injector.serve.fleet.settings import FleetSettings
from lumigo_injector.serve.kube_http import KubeHttp
from lumigo_injector.spec.workloads import KINDS

log = logging.getLogger("lumigo_injector.fleet")


@dataclass
class FleetConfig:
    """What `serve` gives the fleet: its settings and the injector's layer version."""

    settings: FleetSettings
    layer_version: str


def register(
    registry: kopf.OperatorRegistry,
    config: FleetConfig,
    namespaces: Callable[[str], Mapping[str, Any] | None],
    never_injected: Callable[[str | None], bool],
) -> FleetIndex:
    """Add the fleet's watches and its periodic pass to `registry`."""
    index = FleetIndex()
    running: list[tuple[asyncio.Task[None], KubeHttp, events.EventRecorder]] = []

    def not_excluded(namespace: str | None, **_: Any) -> bool:
        return not never_injected(namespace)

    @kopf.on.event("", "v1", "pods", registry=registry, id="fleet-pods", when=not_excluded)
    def on_pod(type: str | None, body: Mapping[str, Any], **_: Any) -> None:
        if type == "DELETED" or owner_of(body) is not None:  # only pods of fleet workloads
            index.pod_event(type, body)

    for kind in FLEET_KINDS:
        info = KINDS[kind]

        def on_workload(
            type: str | None, body: Mapping[str, Any], _kind: str = kind, **_: Any
        ) -> None:
            index.workload_event(_kind, type, body)

        kopf.on.event(
            info.group, info.version, info.resource, registry=registry,
            id=f"fleet-{info.resource}", when=not_excluded,
        )(on_workload)  # fmt: skip

    @kopf.on.startup(registry=registry, id="fleet-start")
    async def start(**_: Any) -> None:
        from kubernetes import client

        api = KubeHttp.from_configuration(client.Configuration.get_default_copy())
        recorder = events.EventRecorder(api)
        controller = FleetController(
            config.settings,
            index,
            layer_version=config.layer_version,
            namespaces=namespaces,
            never_injected=never_injected,
            recorder=recorder,
            api=api,
        )
        task = asyncio.get_running_loop().create_task(_loop(controller), name="fleet")
        running.append((task, api, recorder))
        log.info(
            "fleet checks running",
            extra={
                "interval": config.settings.interval,
                "catch_up_restart": config.settings.catch_up_restart,
                "upgrade_rollout": config.settings.upgrade_rollout,
                "rollback": config.settings.rollback,
                "layer_version": config.layer_version,
            },
        )

    @kopf.on.cleanup(registry=registry, id="fleet-stop")
    async def stop(**_: Any) -> None:
        while running:
            task, api, recorder = running.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await recorder.close()
            await api.close()

    return index


async def _loop(controller: FleetController) -> None:
    while True:
        await asyncio.sleep(controller.settings.interval)
        try:
            await controller.run_pass()
        except Exception:  # a bug in one pass must not stop the next
            log.exception("fleet pass failed")
