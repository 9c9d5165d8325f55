"""`serve`, assembled: the kopf operator, the HTTPS webhook and the health server in one loop.

Start order: TLS files are loaded (a missing pair only delays readiness; the files are polled),
the webhook and health servers start listening, then kopf runs standalone and cluster-wide.
kopf owns SIGINT/SIGTERM: when it stops, the servers stop after in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import kopf
from aiohttp import web

from lumigo_injector.serve import delivery, events, health, operator, tls, webhook
from lumigo_injector.serve.fleet.handlers import FleetConfig
from lumigo_injector.serve.kube_http import KubeHttp
from lumigo_injector.serve.mirror_later import MirrorLater
from lumigo_injector.serve.namespaces import NamespaceDirectory, api_fetcher
from lumigo_injector.serve.secrets_mirror import SecretMirror
from lumigo_injector.serve.settings import ServeSettings

log = logging.getLogger("lumigo_injector.serve")


def load_core_api() -> Any:
    """A CoreV1Api: in-cluster service account, else KUBECONFIG / ~/.kube/config."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CoreV1Api()


async def _start_site(
    app: web.Application, host: str, port: int, ssl_context: Any = None
) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, shutdown_timeout=5)
    await site.start()
    return runner


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (as `kopf run` does), else asyncio's own.

    Its transports and TLS layer are compiled, which roughly halves the admission answer's
    cost outside the handler. `LUMIGO_INJECTOR_EVENT_LOOP=asyncio` opts out.
    """
    if os.environ.get("LUMIGO_INJECTOR_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(settings: ServeSettings) -> int:
    """Run `serve` on a fresh event loop; return the process exit code."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(run(settings))


async def run(settings: ServeSettings) -> int:
    """Serve until kopf stops (signal) or fails; return the process exit code."""
    state = health.Health()
    certificates = tls.ReloadingTLS(settings.tls.cert_file, settings.tls.key_file)
    certificates.reload()
    state.check("tls", lambda: certificates.loaded)

    try:
        core = await asyncio.to_thread(load_core_api)
    except Exception as exc:
        log.error("no Kubernetes API credentials (in-cluster or kubeconfig): %s", exc)
        return 1

    directory = NamespaceDirectory(api_fetcher(core))
    mirror = SecretMirror(
        core,
        token=settings.cluster.token,
        name=settings.injection.secret_name,
        key=settings.injection.secret_key,
    )
    fleet = FleetConfig(settings.fleet, settings.injection.layer_version)
    ctx = operator.OperatorContext(
        directory,
        mirror,
        settings.cluster.never_injected,
        propagate=settings.cluster.propagation,
        # webhook-only mode watches no workload and no pod: no fleet checks either
        fleet=fleet if settings.cluster.propagation else None,
    )
    api = KubeHttp.from_configuration(core.api_client.configuration)
    recorder = events.EventRecorder(api)
    background: set[asyncio.Task[None]] = set()

    mirror_later = MirrorLater(
        ctx.ensure_secret,
        wanted=lambda namespace: mirror.enabled and not mirror.recently_checked(namespace),
    )
    chosen = await delivery.choose(settings.cluster.delivery, core.api_client)
    admission = webhook.Admission(
        injection=dataclasses.replace(settings.injection, delivery=chosen),
        namespaces=directory.get,
        never_injected=settings.cluster.never_injected,
        recorder=recorder,
        on_injected=mirror_later,
    )

    runners: list[web.AppRunner] = []
    watcher = asyncio.create_task(certificates.watch(settings.tls.reload_interval))
    try:
        runners.append(
            await _start_site(
                health.build_app(state), settings.listen.host, settings.listen.health_port
            )
        )
        runners.append(
            await webhook.start(
                admission, settings.listen.host, settings.listen.port, certificates.front
            )
        )
        state.set("webhook")
        log.info(
            "serving",
            extra={
                "webhook": f"https://{settings.listen.host}:{settings.listen.port}{webhook.PATH}",
                "health": f"http://{settings.listen.host}:{settings.listen.health_port}",
                "token_mirroring": mirror.enabled,
            },
        )
        ready = asyncio.Event()
        stop = asyncio.Event()

        async def shutdown(signal_name: str) -> None:
            if stop.is_set():
                return
            log.info(
                "%s received: stopping",
                signal_name,
                extra={"delay": settings.listen.shutdown_delay},
            )
            state.set("operator", False)  # not ready: endpoints are removed, requests drain
            await asyncio.sleep(settings.listen.shutdown_delay)
            while runners:  # stop listening before kopf stops (it waits for open connections)
                with contextlib.suppress(Exception):
                    await runners.pop().cleanup()
            stop.set()

        async def when_ready() -> None:
            await ready.wait()
            # Everything alive now (modules, kopf, the kubernetes client) lives as long as the
            # process: keep it out of the collector's full passes, which otherwise pause the
            # loop for tens of milliseconds under admission load. Done before reporting ready,
            # so that this one pause never delays an admission.
            gc.collect()
            gc.freeze()
            state.set("operator")
            log.info("operator running")
            # kopf installed its own handlers when it started; ours drain the servers first.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal, sig.name)

        def on_signal(name: str) -> None:
            background_task(shutdown(name))

        def background_task(coro: Coroutine[Any, Any, None]) -> None:
            task = asyncio.get_running_loop().create_task(coro)
            background.add(task)
            task.add_done_callback(background.discard)

        ready_waiter = asyncio.create_task(when_ready())
        try:
            await kopf.operator(
                registry=operator.build_registry(ctx),
                settings=operator.kopf_settings(),
                clusterwide=True,
                standalone=True,
                ready_flag=ready,
                stop_flag=stop,
            )
        except Exception as exc:
            state.fail(f"operator stopped: {exc}")
            log.error("operator failed: %s", exc)
            return 1
        finally:
            ready_waiter.cancel()
        log.info("operator stopped; shutting down")
        return 0
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return 1
    finally:
        state.set("operator", False)
        watcher.cancel()
        mirror_later.cancel()
        admission.decisions.close()
        await recorder.close()
        await api.close()
        for runner in reversed(runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
