"""The mutation over the corpus of realistic manifests in tests/fixtures/manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from lumigo_injector.k8s.manifests import transform
from lumigo_injector.k8s.mutation import InjectionSettings, inject, uninject
from lumigo_injector.spec.delivery import DELIVERIES, Delivery
from tests.helpers.mutation import (
    FIXTURES,
    container,
    corpus_files,
    env_of,
    expand_env,
    has_image_volume,
    load_file,
    parse_attributes,
    pod_spec,
    versions_for,
    workloads,
)

POD_FIELDS = {
    "metadata.namespace": "prod",
    "metadata.name": "pod-abc",
    "metadata.uid": "uid-abc",
    "spec.nodeName": "node-a",
}
SETTINGS = InjectionSettings(endpoint="http://otel-collector.observability:4318")


def injected(documents: list[dict[str, Any]], settings: InjectionSettings = SETTINGS) -> Any:
    """Inject every document (Lists included) the way `inject -f` does; collect warnings."""
    warnings: list[str] = []

    def mutate(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        result = inject(doc, settings)
        warnings.extend(result.warnings)
        return result.obj, []

    return transform(documents, mutate).documents, warnings


SECRETS = {"shop-db/password": "s3cret"}


def env(obj: dict[str, Any], name: str) -> dict[str, str]:
    return expand_env(env_of(obj, name), POD_FIELDS, SECRETS)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("inject_all", [False, True], ids=["annotated", "all"])
@pytest.mark.parametrize("delivery", DELIVERIES)
def test_corpus_output_is_valid_idempotent_and_reversible(
    path: Path, inject_all: bool, delivery: Delivery
) -> None:
    """kubernetes-validate's own `validate`: image-volume pods against 1.35 and 1.37, init
    container pods against 1.28, 1.30 and the newest."""
    documents = load_file(path)
    settings = InjectionSettings(inject_all=inject_all, delivery=delivery)
    out, _ = injected(documents, settings)
    again, _ = injected(out, settings)
    assert again == out
    for before, after in zip(workloads(documents), workloads(out), strict=True):
        if after != before:
            assert has_image_volume(after) is (delivery == "image-volume")
        for version in versions_for(after):
            kubernetes_validate.validate(after, version, strict=True)
        assert uninject(after) == before


def test_multi_container_deployment_injects_every_app_container_only() -> None:
    (deployment,), _ = injected(load_file(FIXTURES / "deployment-multi-container.yaml"))
    original = load_file(FIXTURES / "deployment-multi-container.yaml")[0]
    spec = pod_spec(deployment)
    assert [ic["name"] for ic in spec["initContainers"]] == [
        "wait-for-db",
        "migrate",
        "log-shipper",
        "lumigo-otel-init",
    ]
    assert spec["initContainers"][:3] == pod_spec(original)["initContainers"]
    for name in ("api", "worker", "nginx"):
        values = env(deployment, name)
        # api loads env from a ConfigMap: its PYTHONPATH, if any, is kept after ours.
        inherit = ":$(PYTHONPATH)" if name == "api" else ""
        assert values["PYTHONPATH"] == "/lumigo-otel/bootstrap" + inherit
        assert values["OTEL_SERVICE_NAME"] == "shop"
        assert values["LUMIGO_ENDPOINT"] == "http://otel-collector.observability:4318"
        attributes = parse_attributes(values["OTEL_RESOURCE_ATTRIBUTES"])
        assert attributes["k8s.deployment.name"] == "shop"
        assert attributes["k8s.container.name"] == name
    api = container(deployment, "api")
    assert api["envFrom"] == container(original, "api")["envFrom"]
    assert api["volumeMounts"][0] == {"name": "cache", "mountPath": "/var/cache/shop"}
    assert env(deployment, "api")["DB_PASSWORD"] == "s3cret"


def test_existing_env_is_extended_not_replaced() -> None:
    (deployment,), _ = injected(load_file(FIXTURES / "deployment-existing-env.yaml"))
    values = env(deployment, "billing")
    assert values["PYTHONPATH"] == "/lumigo-otel/bootstrap:/srv/billing/src:/srv/vendor"
    assert values["AUTOWRAPT_BOOTSTRAP"] == "my_company_patches,lumigo_opentelemetry"
    assert values["OTEL_SERVICE_NAME"] == "billing"
    attributes = parse_attributes(values["OTEL_RESOURCE_ATTRIBUTES"])
    assert attributes["deployment.environment"] == "prod"
    assert attributes["k8s.pod.name"] == "billing-static"  # the user's key wins
    assert attributes["k8s.pod.uid"] == "uid-abc"
    token = next(e for e in env_of(deployment, "billing") if e["name"] == "LUMIGO_TRACER_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "billing-lumigo",
        "key": "lumigo-token",
        "optional": True,
    }
    assert container(deployment, "billing")["securityContext"]["readOnlyRootFilesystem"] is True


def test_value_from_pythonpath_container_is_left_alone() -> None:
    original = load_file(FIXTURES / "deployment-pythonpath-valuefrom.yaml")
    (deployment,), warnings = injected(original)
    assert container(deployment, "renderer") == container(original[0], "renderer")
    assert env(deployment, "scheduler")["PYTHONPATH"] == "/lumigo-otel/bootstrap"
    assert any("renderer" in w and "PYTHONPATH" in w for w in warnings)


def test_container_names_and_service_name_from_workload_annotations() -> None:
    original = load_file(FIXTURES / "deployment-container-names.yaml")
    (deployment,), _ = injected(original)
    assert env(deployment, "indexer")["OTEL_SERVICE_NAME"] == "search-indexer"
    assert container(deployment, "envoy") == container(original[0], "envoy")


def test_opt_out_and_unannotated_workloads() -> None:
    opt_out = load_file(FIXTURES / "deployment-opt-out.yaml")
    plain = load_file(FIXTURES / "deployment-unannotated.yaml")
    everything = InjectionSettings(inject_all=True)
    assert injected(opt_out, everything)[0] == opt_out
    assert injected(plain)[0] == plain
    (forced,), _ = injected(plain, everything)
    assert env(forced, "plain")["OTEL_SERVICE_NAME"] == "plain"


@pytest.mark.parametrize(
    ("file", "container_name", "expected"),
    [
        ("statefulset.yaml", "ledger", {"k8s.statefulset.name": "ledger"}),
        ("daemonset.yaml", "agent", {"k8s.daemonset.name": "node-agent"}),
        ("job.yaml", "reindex", {"k8s.job.name": "reindex"}),
        ("cronjob.yaml", "report", {"k8s.cronjob.name": "nightly-report"}),
        (
            "replicaset.yaml",
            "web",
            {"k8s.replicaset.name": "web-7d4b9c", "k8s.deployment.name": "web"},
        ),
    ],
)
def test_workload_attribute_per_kind(
    file: str, container_name: str, expected: dict[str, str]
) -> None:
    (obj,), _ = injected(load_file(FIXTURES / file))
    attributes = parse_attributes(env(obj, container_name)["OTEL_RESOURCE_ATTRIBUTES"])
    assert {k: attributes.get(k) for k in expected} == expected


def test_pods_bare_and_as_admitted() -> None:
    bare, admitted = injected(load_file(FIXTURES / "pod.yaml"))[0]
    assert env(bare, "shell")["OTEL_SERVICE_NAME"] == "debug-shell"
    assert env(admitted, "web")["OTEL_SERVICE_NAME"] == "web"


def test_list_items_are_injected_and_other_kinds_pass_through() -> None:
    documents = load_file(FIXTURES / "list.yaml") + load_file(FIXTURES / "non-workloads.yaml")
    out, _ = injected(documents)
    deployment, service = out[0]["items"]
    assert env(deployment, "api")["PYTHONPATH"] == "/lumigo-otel/bootstrap"
    assert service == documents[0]["items"][1]
    assert out[1:] == documents[1:]
