"""`GET /metrics` on the health port of a real `lumigo-injector serve`: admissions counted by
namespace and outcome (injected, skipped, failed open) and their latency histogram."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lumigo_injector.spec import names as c
from tests.helpers.kube import (
    KubeEmulator,
    TestCertificates,
    admission_review,
    deployment_pod,
    running_injector,
)

FAULT = "test.lumigo.io/fault"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return found


def test_admissions_are_counted_by_outcome_with_their_latency(tmp_path: Path) -> None:
    with KubeEmulator() as kube:
        kube.create_namespace("shop")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        certs = TestCertificates(tmp_path / "tls")
        env = {"LUMIGO_INJECTOR_TEST_FAULT_LABEL": FAULT}
        with running_injector(kubeconfig, certs, tmp_path, env=env) as injector:
            asked = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
            for _ in range(3):
                injector.review(admission_review(asked, namespace="shop"))
            injector.review(admission_review(deployment_pod("plain"), namespace="shop"))
            broken = deployment_pod(
                "odd", annotations={c.ANNOTATION_INJECT: "python"}, labels={FAULT: "1"}
            )
            answer = injector.review(admission_review(broken, namespace="shop"))
            assert answer["allowed"] is True and "patch" not in answer

            response = injector.health("/metrics")
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            found = samples(response.text)

    def admissions(outcome: str) -> float:
        key = (("namespace", "shop"), ("outcome", outcome))
        return found[("lumigo_injector_admissions_total", key)]

    assert (admissions("injected"), admissions("skipped"), admissions("failed")) == (3, 1, 1)
    count = found[("lumigo_injector_admission_duration_seconds_count", (("namespace", "shop"),))]
    assert count == 5
    total = found[("lumigo_injector_admission_duration_seconds_sum", (("namespace", "shop"),))]
    assert total > 0
