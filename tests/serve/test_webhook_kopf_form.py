"""The admission handler in kopf's form: kopf's own webhook server, given the registry that
`Admission` registers its handler in, routes `POST /mutate-pods` to it and answers with a
patch that yields the same pod as `serve`'s server does."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Iterator
from typing import Any

import aiohttp
import jsonpatch
import kopf
import pytest

from lumigo_injector.k8s.mutation import InjectionSettings
from lumigo_injector.serve import kopf_admission, operator, webhook
from lumigo_injector.serve.tls import ReloadingTLS
from lumigo_injector.spec import names as c
from tests.helpers.kube import (
    KubeEmulator,
    TestCertificates,
    admission_review,
    deployment_pod,
    free_port,
)


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


async def _no_annotations(_: str) -> dict[str, str]:
    return {}


async def _post(session: aiohttp.ClientSession, url: str, review: Any) -> dict[str, Any]:
    async with session.post(url, data=json.dumps(review)) as answer:
        assert answer.status == 200, await answer.text()
        response: dict[str, Any] = (await answer.json())["response"]
        return response


def _patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ops = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(pod, ops, in_place=False)
    return result


def test_kopfs_server_runs_the_same_handler_to_the_same_pod(
    kube: KubeEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workdir = tmp_path_factory.mktemp("kopf-form")
    certs = TestCertificates(workdir / "tls")
    monkeypatch.setenv("KUBECONFIG", str(kube.write_kubeconfig(workdir / "kubeconfig")))
    pod = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
    review = admission_review(pod, namespace="shop")
    kopf_port = free_port()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        admission = webhook.Admission(injection=InjectionSettings(), namespaces=_no_annotations)
        registry = admission.registry

        @kopf.on.login(registry=registry, id="login")
        def login(**kwargs: Any) -> Any:
            return kopf.login_with_kubeconfig(**kwargs)

        settings = operator.kopf_settings()
        settings.admission.server = kopf_admission.kopf_server(
            host="127.0.0.1", port=kopf_port, cert_file=certs.cert_file, key_file=certs.key_file
        )
        stop = asyncio.Event()
        running = asyncio.create_task(
            kopf.operator(
                registry=registry,
                settings=settings,
                clusterwide=True,
                standalone=True,
                stop_flag=stop,
            )
        )
        tls = ReloadingTLS(certs.cert_file, certs.key_file)
        tls.reload()
        ours = await webhook.start(admission, "127.0.0.1", 0, tls.front)
        client_tls = ssl.create_default_context(cafile=str(certs.ca_file))
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_tls)
            ) as session:
                via_ours = await _post(
                    session, f"https://127.0.0.1:{ours.addresses[0][1]}/mutate-pods", review
                )
                kopf_url = f"https://127.0.0.1:{kopf_port}/mutate-pods"
                for _ in range(300):  # kopf listens once it has scanned the API's resources
                    try:
                        via_kopf = await _post(session, kopf_url, review)
                        break
                    except aiohttp.ClientConnectorError:
                        await asyncio.sleep(0.1)
                else:
                    raise AssertionError("kopf's webhook server did not start")
        finally:
            await ours.cleanup()
            stop.set()
            await asyncio.wait_for(running, 30)
        return via_ours, via_kopf

    via_ours, via_kopf = asyncio.run(scenario())
    assert via_kopf["allowed"] is True and via_kopf["patchType"] == "JSONPatch"
    assert _patched(pod, via_kopf) == _patched(pod, via_ours)
    assert _patched(pod, via_ours)["metadata"]["annotations"][c.ANNOTATION_INJECTED]
