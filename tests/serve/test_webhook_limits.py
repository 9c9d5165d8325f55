"""The webhook holds its memory: hostile and oversized reviews over real HTTPS against
`lumigo-injector serve` (a subprocess, kmock as the API server). Each case checks the answer,
and the module checks that the process stays within the chart's memory limit and that its
log stays small."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lumigo_injector.serve.mirror_later import MirrorLater
from lumigo_injector.serve.namespaces import NamespaceDirectory
from lumigo_injector.spec import names as c
from tests.helpers.kube import (
    InjectorProcess,
    KubeEmulator,
    TestCertificates,
    admission_review,
    decode_patch,
    deployment_pod,
    running_injector,
)

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def chart_memory_limit() -> int:
    values = yaml.safe_load((ROOT / "charts/lumigo-injector/values.yaml").read_text())
    limit = str(values["resources"]["limits"]["memory"])
    assert limit.endswith("Mi"), limit
    return int(limit[:-2]) * MiB


def rss(injector: InjectorProcess) -> int:
    assert injector.process is not None
    status = Path(f"/proc/{injector.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.create_namespace("shop", {c.ANNOTATION_INJECT: "python"})
        yield emulator


@pytest.fixture(scope="module")
def injector(
    kube: KubeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InjectorProcess]:
    workdir = tmp_path_factory.mktemp("limits")
    certs = TestCertificates(workdir / "tls")
    kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
    with running_injector(kubeconfig, certs, workdir) as process:
        yield process
        # after every case of the module: within the chart's limit, and a short log
        assert rss(process) < chart_memory_limit()
        assert process.log_path.stat().st_size < 2 * MiB


def still_injects(injector: InjectorProcess) -> None:
    pod = deployment_pod("after", annotations={c.ANNOTATION_INJECT: "python"})
    assert decode_patch(injector.review(admission_review(pod, namespace="shop")))


def review_with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    review = admission_review(deployment_pod("web"), namespace="shop")
    target: Any = review
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return review


MEGABYTE_NAME = "n" * MiB


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("request", "namespace"), "request.namespace"),
        (("request", "uid"), "request.uid"),
        (("request", "object", "metadata", "generateName"), "metadata.generateName"),
        (("request", "object", "metadata", "name"), "metadata.name"),
        (
            ("request", "object", "metadata", "ownerReferences", 0, "name"),
            "metadata.ownerReferences[].name",
        ),
    ],
)
def test_names_longer_than_kubernetes_allows_are_malformed(
    injector: InjectorProcess, path: tuple[str | int, ...], field: str
) -> None:
    at_limit = injector.post(review_with(path, "a" * 253))
    assert at_limit.status_code == 200

    answer = injector.post(review_with(path, "a" * 254))
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        f"malformed AdmissionReview: {field} is 254 characters long (at most 253)"
    )


def test_many_megabyte_names_leave_memory_and_log_bounded(injector: InjectorProcess) -> None:
    log_before = injector.log_path.stat().st_size
    for n in range(47):
        answer = injector.post(review_with(("request", "namespace"), MEGABYTE_NAME + str(n)))
        assert answer.status_code == 400
    assert rss(injector) < chart_memory_limit()
    assert injector.log_path.stat().st_size - log_before < 47 * 1024  # a short line each
    still_injects(injector)


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    piece = b" " * size
    for _ in range(total // size):
        yield piece


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_bodies_are_refused_and_not_kept(
    injector: InjectorProcess, declared: bool
) -> None:
    body = 20 * MiB
    for _ in range(20):
        data: Any = b" " * body if declared else _chunks(body)
        answer = injector.http.post(
            injector.webhook_url,
            data=data,
            headers={"Content-Type": "application/json"},
            verify=str(injector.ca_file),
            timeout=30,
        )
        assert answer.status_code == 413
        assert "request body over" in answer.json()["error"]
    assert rss(injector) < chart_memory_limit()
    still_injects(injector)


def nested(path: tuple[str | int, ...], depth: int) -> bytes:
    """A review with lists nested `depth` deep at `path` (written as text: too deep for json)."""
    text = json.dumps(review_with(path, "NESTED-HERE"))
    return text.replace('"NESTED-HERE"', "[" * depth + "1" + "]" * depth).encode()


def test_deep_nesting_is_malformed_not_a_server_error(injector: InjectorProcess) -> None:
    deep_body = injector.post(b"[" * 100_000 + b"]" * 100_000)
    deep_review = injector.post(nested(("request", "options"), 1100))
    deep_pod = injector.post(nested(("request", "object", "spec", "extra"), 300))
    fine_pod = injector.post(nested(("request", "object", "spec", "extra"), 200))

    assert deep_body.status_code == 400 and "nests too deep" in deep_body.json()["error"]
    assert deep_review.status_code == 400 and "nests too deep" in deep_review.json()["error"]
    assert deep_pod.status_code == 400
    assert deep_pod.json()["error"] == (
        "malformed AdmissionReview: request.object nests deeper than 254 levels"
    )
    assert fine_pod.status_code == 200
    still_injects(injector)


def test_a_record_over_the_annotation_limit_admits_the_pod_unchanged(
    injector: InjectorProcess, kube: KubeEmulator
) -> None:
    pod = deployment_pod("many", annotations={c.ANNOTATION_INJECT: "python"})
    template = pod["spec"]["containers"][0]
    pod["spec"]["containers"] = [
        dict(copy.deepcopy(template), name=f"worker-{n:04d}-" + "x" * 40) for n in range(3000)
    ]

    response = injector.review(admission_review(pod, namespace="shop"))

    assert response["allowed"] is True and "patch" not in response
    (warning,) = response["warnings"]
    assert "over the API server's limit of 262144" in warning
    small = dict(pod, spec=dict(pod["spec"], containers=pod["spec"]["containers"][:3]))
    assert decode_patch(injector.review(admission_review(small, namespace="shop")))


def test_failed_namespace_lookups_are_remembered_within_a_bound() -> None:
    def unreadable(name: str) -> None:
        raise ConnectionError(f"cannot read {name}")

    directory = NamespaceDirectory(unreadable, max_failed=100)

    async def look_up_many() -> list[Any]:
        return [await directory.get(f"ns-{n}") for n in range(500)]

    assert asyncio.run(look_up_many()) == [{}] * 500
    assert directory.failed_count == 100


def test_secret_checks_started_by_admissions_are_one_per_namespace_and_bounded() -> None:
    async def scenario() -> tuple[list[str], int]:
        release = asyncio.Event()
        started: list[str] = []

        async def ensure(namespace: str) -> None:
            started.append(namespace)
            await release.wait()

        later = MirrorLater(ensure, wanted=lambda _: True, limit=10)
        for n in range(5000):  # 5,000 injected pods in 1,000 namespaces at once
            later(f"ns-{n % 1000}")
        await asyncio.sleep(0)
        in_flight = later.in_flight
        release.set()
        while later.in_flight:
            await asyncio.sleep(0.01)
        later("ns-999")  # room again: a later pod of another namespace gets its check
        while later.in_flight:
            await asyncio.sleep(0.01)
        return started, in_flight

    started, in_flight = asyncio.run(scenario())
    assert in_flight == 10
    assert started == [f"ns-{n}" for n in range(10)] + ["ns-999"]
