"""`serve` picks the layer delivery from the API server's version (`auto`) or its settings.

Each case runs `lumigo-injector serve` as a subprocess against a kmock emulator whose
`/version` answers the given Kubernetes version, then sends real AdmissionReviews.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from lumigo_injector.spec import names as c
from tests.helpers.kube import (
    KubeEmulator,
    TestCertificates,
    admission_review,
    decode_patch,
    deployment_pod,
    running_injector,
    start_injector,
)
from tests.helpers.mutation import assert_valid


def admitted(injector: Any, pod: dict[str, Any], namespace: str) -> dict[str, Any]:
    response = injector.review(admission_review(pod, namespace=namespace))
    assert response["allowed"] is True
    patched: dict[str, Any] = jsonpatch.apply_patch(pod, decode_patch(response), in_place=False)
    return patched


def delivery_of(pod: dict[str, Any]) -> str:
    """What the pod got: read from its `lumigo-otel` volume (and checked for consistency)."""
    spec = pod["spec"]
    [volume] = [v for v in spec.get("volumes") or [] if v["name"] == c.VOLUME_NAME]
    inits = [i["name"] for i in spec.get("initContainers") or []]
    [mount] = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == c.VOLUME_NAME]
    if "image" in volume:
        assert inits == [] and mount["subPath"] == c.LAYER_IMAGE_SUBPATH
        return "image-volume"
    assert inits == [c.INIT_CONTAINER_NAME] and "subPath" not in mount
    return "init-container"


@pytest.mark.parametrize(
    ("server", "argv", "env", "expected"),
    [
        ("1.35.0", [], {}, "image-volume"),  # auto, the default
        ("1.34.2", [], {}, "init-container"),
        ("1.37.1", ["--delivery", "init-container"], {}, "init-container"),
        ("1.30.4", [], {"LUMIGO_INJECTOR_DELIVERY": "image-volume"}, "image-volume"),
    ],
    ids=["auto-1.35", "auto-1.34", "flag-on-1.37", "env-on-1.30"],
)
def test_operator_delivery_by_server_version_flag_or_env(
    server: str, argv: list[str], env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    with KubeEmulator(server_version=server) as kube:
        kube.create_namespace("shop")
        kube.create_namespace("legacy", {c.ANNOTATION_DELIVERY: "init-container"})
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        certs = TestCertificates(tmp_path / "tls")
        with running_injector(kubeconfig, certs, tmp_path, extra_argv=argv, env=env) as injector:
            pod = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
            out = admitted(injector, pod, "shop")
            assert delivery_of(out) == expected
            assert_valid(out)  # 1.35 and 1.37 schemas for an image volume, 1.28/1.30 otherwise
            volume = next(v for v in out["spec"]["volumes"] if v["name"] == c.VOLUME_NAME)
            if expected == "image-volume":
                assert volume["image"] == {
                    "reference": c.DEFAULT_INIT_IMAGE,
                    "pullPolicy": "IfNotPresent",
                }
            # the namespace annotation overrides the operator; the pod's overrides both
            assert delivery_of(admitted(injector, pod, "legacy")) == "init-container"
            asks = {c.ANNOTATION_INJECT: "python", c.ANNOTATION_DELIVERY: "image-volume"}
            pod_asks = deployment_pod("api", annotations=asks)
            assert delivery_of(admitted(injector, pod_asks, "legacy")) == "image-volume"
            [line] = [r for r in injector.log_records() if r.get("delivery")]
        assert line["delivery"] == expected
        configured = "auto" if not (argv or env) else expected
        assert line["configured"] == configured
        if configured == "auto":
            assert line["server_version"] == ".".join(server.split(".")[:2])
            assert "/version" in kube.requested_paths()


def test_unreadable_server_version_means_init_container(tmp_path: Path) -> None:
    """A /version answer without a usable version: the safe choice, said in the log."""
    with KubeEmulator(server_version="x.y.z") as kube:
        kube.create_namespace("shop")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        certs = TestCertificates(tmp_path / "tls")
        with running_injector(kubeconfig, certs, tmp_path) as injector:
            pod = deployment_pod("web", annotations={c.ANNOTATION_INJECT: "python"})
            assert delivery_of(admitted(injector, pod, "shop")) == "init-container"
            [line] = [r for r in injector.log_records() if r.get("delivery")]
    assert line["server_version"] is None and line["configured"] == "auto"


def test_bad_delivery_value_is_a_usage_error(tmp_path: Path) -> None:
    with KubeEmulator() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        certs = TestCertificates(tmp_path / "tls")
        env = {"LUMIGO_INJECTOR_DELIVERY": "copy"}
        injector = start_injector(kubeconfig, certs, tmp_path, env=env)
        assert injector.process is not None
        assert injector.process.wait(60) == 2
        assert "LUMIGO_INJECTOR_DELIVERY: invalid choice 'copy'" in injector.logs()


def test_delivery_setting_from_flag_or_environment() -> None:
    import argparse

    from lumigo_injector.commands.serve import add_arguments, from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_args(parser.parse_args([]), {}).cluster.delivery == "auto"
    env = {"LUMIGO_INJECTOR_DELIVERY": " Image-Volume "}
    assert from_args(parser.parse_args([]), env).cluster.delivery == "image-volume"
    flag = parser.parse_args(["--delivery", "init-container"])
    assert from_args(flag, env).cluster.delivery == "init-container"  # the flag wins
