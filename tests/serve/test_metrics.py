"""`GET /metrics` on the health server: admissions made over real HTTPS to the webhook are
counted by namespace and outcome (injected, skipped, failed open) with their latency.

The webhook and the health server run in this process (as in test_webhook_failopen.py), so a
failure can be put where production code fails (the namespace lookup) without a test hook."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import aiohttp
import kopf
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lumigo_injector.k8s.mutation import InjectionSettings
from lumigo_injector.serve import health, metrics, webhook
from lumigo_injector.serve.tls import ReloadingTLS
from lumigo_injector.spec import names as c
from tests.helpers.kube import TestCertificates, admission_review, deployment_pod


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return found


def test_admissions_are_counted_by_outcome_with_their_latency(tmp_path: Path) -> None:
    shop, broken = f"shop-{uuid.uuid4().hex[:6]}", f"broken-{uuid.uuid4().hex[:6]}"
    excluded = f"system-{uuid.uuid4().hex[:6]}"  # like kube-system: never injected
    certs = TestCertificates(tmp_path / "tls")

    async def lookup(namespace: str) -> Mapping[str, str]:
        if namespace == broken:
            raise RuntimeError("namespace lookup exploded")
        return {}

    async def scenario() -> str:
        admission = webhook.Admission(
            injection=InjectionSettings(),
            namespaces=lookup,
            never_injected=lambda namespace: namespace == excluded,
        )
        tls = ReloadingTLS(certs.cert_file, certs.key_file)
        assert tls.reload()
        hook = await webhook.start(admission, "127.0.0.1", 0, tls.front)
        probes = web.AppRunner(health.build_app(health.Health()))
        await probes.setup()
        site = web.TCPSite(probes, "127.0.0.1", 0)
        await site.start()
        hook_port, health_port = hook.addresses[0][1], probes.addresses[0][1]
        client_tls = ssl.create_default_context(cafile=str(certs.ca_file))
        url = f"https://127.0.0.1:{hook_port}{webhook.PATH}"
        try:
            connector = aiohttp.TCPConnector(ssl=client_tls)
            async with aiohttp.ClientSession(connector=connector) as client:

                async def review(
                    pod: Mapping[str, object],
                    namespace: str,
                    operation: str = "CREATE",
                    kind: str = "Pod",
                ) -> None:
                    sent = admission_review(
                        pod, namespace=namespace, operation=operation, kind=kind
                    )
                    async with client.post(url, data=json.dumps(sent)) as answer:
                        assert answer.status == 200
                        response = (await answer.json())["response"]
                        assert response["allowed"] is True
                        if operation != "CREATE" or kind != "Pod":
                            assert "patch" not in response

                asked = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
                for _ in range(3):
                    await review(asked, shop)
                await review(deployment_pod("plain"), shop)
                await review(asked, broken)
                await review(asked, excluded)
                # not a pod creation: answered, but no admission was decided, so none counted
                await review(asked, shop, operation="UPDATE")
                await review(asked, shop, kind="Deployment")
                metrics_url = f"http://127.0.0.1:{health_port}/metrics"
                async with client.get(metrics_url) as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    return await response.text()
        finally:
            await hook.cleanup()
            await probes.cleanup()

    found = samples(asyncio.run(scenario()))

    def admissions(namespace: str, outcome: str) -> float:
        key = (("namespace", namespace), ("outcome", outcome))
        return found.get(("lumigo_injector_admissions_total", key), 0.0)

    assert [admissions(shop, o) for o in ("injected", "skipped", "failed")] == [3, 1, 0]
    assert [admissions(broken, o) for o in ("injected", "skipped", "failed")] == [0, 0, 1]
    assert [admissions(excluded, o) for o in ("injected", "skipped", "failed")] == [0, 1, 0]
    count = found[("lumigo_injector_admission_duration_seconds_count", (("namespace", shop),))]
    assert count == 4
    total = found[("lumigo_injector_admission_duration_seconds_sum", (("namespace", shop),))]
    assert total > 0


class _UnreadableBody(Mapping[str, object]):
    """A pod body that fails as it is read, as a broken kopf `Body` view would."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("body view broken")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("body view broken")

    def __len__(self) -> int:
        return 1


def test_kopfs_handler_counts_a_failure_reading_the_pod_as_a_failed_admission() -> None:
    namespace = f"kopf-{uuid.uuid4().hex[:6]}"
    admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)
    patch, warnings = kopf.Patch(), []  # type: ignore[var-annotated]

    async def call() -> None:
        await admission.mutate_pod(
            body=_UnreadableBody(), patch=patch, warnings=warnings, namespace=namespace
        )

    asyncio.run(call())  # never raises: the pod is admitted unchanged
    assert not patch.fns and not patch
    assert len(warnings) == 1 and "body view broken" in warnings[0]
    found = samples(generate_latest(metrics.REGISTRY).decode())
    key = (("namespace", namespace), ("outcome", "failed"))
    assert found[("lumigo_injector_admissions_total", key)] == 1


async def _no_annotations(_: str) -> Mapping[str, str]:
    return {}
