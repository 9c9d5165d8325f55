"""Admission Events: aggregated per object+reason, bounded, and never on the admission path.

The recorder posts through the same aiohttp client `serve` uses, to kmock's Kubernetes
emulator (aggregation, patching repeats) or to kmock's plain HTTP mock whose response rules
refuse or hang (fallbacks, an admission that must not wait).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import kmock
import pytest
from aiohttp import web

from lumigo_injector.k8s.mutation import InjectionSettings
from lumigo_injector.serve import events, webhook
from lumigo_injector.serve.kube_http import KubeHttp
from lumigo_injector.spec import names as c
from tests.helpers.kube import KubeEmulator, admission_review, deployment_pod

REPLICASET = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "web-7d4b9c5f8d",
    "namespace": "shop",
    "uid": "rs-uid-1",
}
OK = "pod web-7d4b9c5f8d-*: injected"


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_identical_events_become_one_event_with_a_count(kube: KubeEmulator) -> None:
    async def scenario() -> None:
        api = KubeHttp(kube.url)
        recorder = events.EventRecorder(api, interval=3600)
        try:
            for _ in range(40):
                recorder.record(REPLICASET, "shop", reason="LumigoInjected", message=OK)
            recorder.record(REPLICASET, "shop", reason="LumigoSkipped", message="pod web-*: no")
            await recorder.flush()
            first = {e["reason"]: e for e in kube.events("shop")}
            assert {r: e["count"] for r, e in first.items()} == {
                "LumigoInjected": 40,
                "LumigoSkipped": 1,
            }
            injected = first["LumigoInjected"]
            assert injected["involvedObject"] == REPLICASET
            assert injected["message"] == OK
            assert injected["reportingComponent"] == "lumigo-injector"

            # Repeats later on patch the same Event: its count grows, no new Event appears.
            for _ in range(5):
                recorder.record(REPLICASET, "shop", reason="LumigoInjected", message=OK)
            await recorder.flush()
            after = kube.events("shop")
            assert len(after) == 2
            (patched,) = [e for e in after if e["reason"] == "LumigoInjected"]
            assert patched["metadata"]["name"] == injected["metadata"]["name"]
            assert patched["count"] == 45
            assert patched["firstTimestamp"] == injected["firstTimestamp"]
            assert (recorder.posted, recorder.patched, recorder.failed) == (2, 1, 0)
        finally:
            await recorder.close()
            await api.close()

    asyncio.run(scenario())


def test_an_expired_event_is_posted_anew(kube: KubeEmulator) -> None:
    async def scenario() -> None:
        api = KubeHttp(kube.url)
        recorder = events.EventRecorder(api, interval=3600)
        involved = {**REPLICASET, "namespace": "expiry"}
        try:
            recorder.record(involved, "expiry", reason="LumigoInjected", message="m")
            await recorder.flush()
            (gone,) = kube.events("expiry")
            kube.delete(f"/api/v1/namespaces/expiry/events/{gone['metadata']['name']}")
            recorder.record(involved, "expiry", reason="LumigoInjected", message="m")
            await recorder.flush()
            (fresh,) = kube.events("expiry")
            assert fresh["metadata"]["name"] != gone["metadata"]["name"]
            assert fresh["count"] == 1
        finally:
            await recorder.close()
            await api.close()

    asyncio.run(scenario())


def test_full_backlog_drops_events_with_a_rate_limited_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Nowhere:  # never called: nothing is flushed in this test
        async def auth_headers(self) -> dict[str, str]:
            raise AssertionError("no flush expected")

        async def create(self, *args: Any) -> None:
            raise AssertionError("no flush expected")

        async def merge_patch(self, *args: Any) -> None:
            raise AssertionError("no flush expected")

    async def scenario() -> events.EventRecorder:
        clock = Clock()
        recorder = events.EventRecorder(
            Nowhere(), interval=3600, max_pending=3, warn_interval=60, clock=clock
        )
        caplog.set_level(logging.WARNING, logger="lumigo_injector.events")
        for n in range(10):  # 3 distinct fit, 7 are dropped
            recorder.record(REPLICASET, "shop", reason="LumigoInjected", message=f"pod {n}")
        # repeats of an Event already waiting are counted, never dropped
        recorder.record(REPLICASET, "shop", reason="LumigoInjected", message="pod 0")
        assert (recorder.pending, recorder.dropped) == (3, 7)
        lines = [r for r in caplog.records if "backlog full" in r.getMessage()]
        assert len(lines) == 1 and getattr(lines[0], "dropped_total", None) == 1

        clock.now += 61  # a minute later, the next drop is reported with the count since
        recorder.record(REPLICASET, "shop", reason="LumigoInjected", message="pod 99")
        lines = [r for r in caplog.records if "backlog full" in r.getMessage()]
        assert len(lines) == 2
        assert getattr(lines[1], "suppressed", None) == 6
        assert getattr(lines[1], "dropped_total", None) == 8
        return recorder  # asyncio.run cancels the (idle) flusher

    asyncio.run(scenario())


@asynccontextmanager
async def api_server() -> AsyncIterator[tuple[kmock.RawHandler, str]]:
    """kmock's HTTP mock on 127.0.0.1, in this event loop; each test sets how it answers
    Event writes (kmock's response rules) and reads back what was sent."""
    async with kmock.RawHandler() as api, kmock.Server(api) as server:
        yield api, str(server.url).rstrip("/")


def test_without_patch_permission_repeats_are_posted_as_new_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> list[tuple[str, str]]:
        async with api_server() as (api, url):
            api["post"] << 201 << {"kind": "Event"}
            api["patch"] << 403 << {"kind": "Status", "reason": "Forbidden", "code": 403}
            client = KubeHttp(url)
            recorder = events.EventRecorder(client, interval=3600)
            for _ in range(3):
                recorder.record(REPLICASET, "shop", reason="LumigoInjected", message="m")
                await recorder.flush()
            await client.close()
            return [(r.method.value, r.url.path) for r in api]

    seen = asyncio.run(scenario())
    methods = [method for method, _ in seen]
    assert methods == ["POST", "PATCH", "POST", "POST"]  # one refused patch, then creates only
    assert all(path == "/api/v1/namespaces/shop/events" for m, path in seen if m == "POST")
    assert any("not allowed to patch events" in r.getMessage() for r in caplog.records)


def test_admission_answers_while_the_api_hangs_on_an_event() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[str], int]:
        async with api_server() as (api, url):
            release = asyncio.Event()

            async def never_answer() -> dict[str, str]:
                await release.wait()  # until the test is over
                return {"kind": "Event"}

            api["post"] << (lambda: never_answer())
            client = KubeHttp(url, timeout=60)
            recorder = events.EventRecorder(client, interval=0.01)

            async def no_annotations(_: str) -> dict[str, str]:
                return {}

            admission = webhook.Admission(
                injection=InjectionSettings(),
                namespaces=no_annotations,
                recorder=recorder,
            )
            server = web.AppRunner(webhook.build_app(admission))
            await server.setup()
            site = web.TCPSite(server, "127.0.0.1", 0)
            await site.start()
            port = server.addresses[0][1]
            answers = []
            async with aiohttp.ClientSession() as http:
                for n in range(20):
                    pod = deployment_pod(f"app{n}", annotations={c.ANNOTATION_INJECT: "python"})
                    body = json.dumps(admission_review(pod, namespace="shop"))
                    async with http.post(
                        f"http://127.0.0.1:{port}{webhook.PATH}", data=body
                    ) as resp:
                        assert resp.status == 200
                        answers.append((await resp.json())["response"])
                    if n == 0:  # from here on, a POST of an Event is hanging in the API
                        while not len(api):
                            await asyncio.sleep(0.01)
            in_flight = len(api)
            await server.cleanup()
            await recorder.close(timeout=0.1)
            await client.close()
            release.set()
            return answers, [r.method.value for r in api], in_flight

    answers, methods, in_flight = asyncio.run(scenario())
    assert len(answers) == 20 and all("patch" in a for a in answers)
    assert in_flight >= 1 and methods[0] == "POST"  # the API never answered that POST


def test_events_are_posted_with_the_kubernetes_client_credentials() -> None:
    from kubernetes import client

    async def scenario() -> list[str | None]:
        async with api_server() as (api, url):
            api["post"] << 201 << {"kind": "Event"}
            configuration = client.Configuration(host=url)
            configuration.api_key = {"authorization": "sa-token-1"}
            configuration.api_key_prefix = {"authorization": "Bearer"}
            kube = KubeHttp.from_configuration(configuration)
            recorder = events.EventRecorder(kube, interval=3600)
            recorder.record(REPLICASET, "shop", reason="LumigoInjected", message="m")
            await recorder.flush()
            configuration.api_key = {"authorization": "sa-token-2"}  # a rotated token
            recorder.record(REPLICASET, "other", reason="LumigoInjected", message="m")
            await recorder.flush()
            await kube.close()
            return [r.headers.get("Authorization") for r in api]

    assert asyncio.run(scenario()) == ["Bearer sa-token-1", "Bearer sa-token-2"]
