"""The chart's Deployment really starts: its rendered command line and environment are run
as a subprocess against kmock's Kubernetes emulator, then probed like the kubelet would.

Only what a cluster supplies is substituted: free ports (rendered in via values, so the
chart's own port wiring is exercised), the mounted TLS Secret (a directory with tls.crt and
tls.key), the downward-API namespace and the token Secret the chart rendered. Every API call
the process makes is then checked against the chart's ClusterRole.
"""

from __future__ import annotations

import base64
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import need
from tests.helpers.controllers import Cluster, deployment
from tests.helpers.helm import Helm, find, helm_binary
from tests.helpers.kube import (
    InjectorProcess,
    KubeEmulator,
    TestCertificates,
    admission_review,
    decode_patch,
    deployment_pod,
    free_port,
    start_injector,
    wait_for,
)

NAMESPACE = "lumigo-system"
TOKEN = "t_0123456789abcdef"
APP_NAMESPACE = "shop"


def _resolve_env(
    env: Sequence[Mapping[str, Any]], objs: Sequence[Mapping[str, Any]], paths: Mapping[str, Path]
) -> dict[str, str]:
    """The environment the kubelet would give the container."""
    secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
    resolved: dict[str, str] = {}
    for var in env:
        if "value" in var:
            value = str(var["value"])
            for mount in sorted(paths, key=len, reverse=True):
                if value.startswith(mount + "/"):
                    value = str(paths[mount]) + value[len(mount) :]
                    break
            resolved[var["name"]] = value
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace"
            resolved[var["name"]] = NAMESPACE
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = secrets.get(ref["name"])
            if secret is None:
                assert ref.get("optional") is True, f"{ref['name']} is required but not rendered"
                continue
            resolved[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        else:
            raise AssertionError(f"unexpected env source {source}")
    return resolved


def _executable(command: Sequence[str]) -> list[str]:
    """The rendered command, with the console script taken from this environment."""
    head, *rest = command
    local = Path(sys.executable).with_name(head)
    found = str(local) if local.exists() else shutil.which(head)
    if not found:
        need.missing(f"`{head}` (the chart's container command) is not installed")
        raise AssertionError  # unreachable
    return [found, *rest]


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def chart_injector(
    kube: KubeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[InjectorProcess, list[dict[str, Any]]]]:
    tmp = tmp_path_factory.mktemp("chart-serve")
    helm = Helm(helm_binary(), tmp / "helm-home")
    port, health_port = free_port(), free_port()
    objs = helm.template(
        {
            "lumigo": {"token": TOKEN, "endpoint": "http://collector.observability:4318"},
            "webhook": {"port": port},
            "healthPort": health_port,
            # The fleet's opt-in restarts on, and quick, so the RBAC check covers their calls.
            "catchUp": {"restart": True},
            "rollback": {"enabled": True},
            "fleet": {"checkInterval": 0.3, "actionInterval": 0},
        },
        release="lumigo",
        namespace=NAMESPACE,
    )
    pod = find(objs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    certs = TestCertificates(tmp / "tls")
    scratch = tmp / "scratch"
    scratch.mkdir()
    local = {"tls": certs.directory, "tmp": scratch}
    paths = {m["mountPath"]: local[m["name"]] for m in container["volumeMounts"]}
    env = _resolve_env(container["env"], objs, paths)
    kube.create_namespace(APP_NAMESPACE)
    kube.create_namespace(NAMESPACE)
    injector = start_injector(
        kube.write_kubeconfig(tmp / "kubeconfig"),
        certs,
        tmp,
        command=_executable([*container["command"], *container.get("args", [])]),
        env={**env, "TMPDIR": str(scratch)},
        port=port,
        health_port=health_port,
    )
    try:
        yield injector, objs
    finally:
        injector.stop()


def _inject_and_mirror(
    kube: KubeEmulator, injector: InjectorProcess, namespace: str
) -> list[dict[str, Any]]:
    """Admit an annotated pod in `namespace`; wait for the mirrored token Secret there."""
    injector.wait_ready()
    pod = deployment_pod("web", annotations={"lumigo.io/inject": "python"})
    response = injector.review(admission_review(pod, namespace=namespace))
    assert response["allowed"] is True
    patch = decode_patch(response)
    assert patch, response
    path = f"/api/v1/namespaces/{namespace}/secrets/lumigo-credentials"
    wait_for(lambda: kube.get(path), timeout=20, what=f"mirrored token Secret in {namespace}")
    return patch


def test_rendered_command_becomes_ready(
    chart_injector: tuple[InjectorProcess, list[dict[str, Any]]],
) -> None:
    injector, objs = chart_injector
    container = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == injector.health_port and ports["webhook"] == injector.port
    injector.wait_ready()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        answer = injector.health(container[probe]["httpGet"]["path"])
        assert answer.status_code == 200, (probe, answer.text)


def test_rendered_settings_reach_the_injected_pod(
    kube: KubeEmulator, chart_injector: tuple[InjectorProcess, list[dict[str, Any]]]
) -> None:
    injector, objs = chart_injector
    patch = _inject_and_mirror(kube, injector, APP_NAMESPACE)
    container = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    init_image = next(
        e["value"] for e in container["env"] if e["name"] == "LUMIGO_INJECTOR_INIT_IMAGE"
    )
    dumped = repr(patch)
    assert init_image in dumped, "the chart's initImage is what injected pods run"
    assert "http://collector.observability:4318" in dumped, "lumigo.endpoint reaches the app"
    assert TOKEN not in dumped, "the token never appears in a pod spec"
    # `delivery: auto` against kmock's Kubernetes 1.26: the init container copies the layer
    added = [op["value"] for op in patch if op["op"] == "add"]
    assert any("lumigo-otel-init" in repr(value) for value in added), "init container on 1.26"

    # the token from the chart's Secret is mirrored into the app namespace
    secret = kube.get(f"/api/v1/namespaces/{APP_NAMESPACE}/secrets/lumigo-credentials")
    assert secret is not None
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN


# ------------------------------------------------------------------------------------------
# RBAC: every API call the running injector made is granted by the rendered ClusterRole
# ------------------------------------------------------------------------------------------


def _api_call(method: str, url: str) -> tuple[str, str, str, str | None] | None:
    """(group, resource, verb, name) of a Kubernetes API request; None for discovery."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if not segments or segments[0] not in ("api", "apis"):
        return None
    if segments[0] == "api":
        group, rest = "", segments[2:]
    else:
        if len(segments) < 3:
            return None
        group, rest = segments[1], segments[3:]
    if not rest:
        return None  # discovery of a group version
    if rest[0] == "kmock-namespaces":  # the harness's routing of cluster-scoped namespaces
        rest = ["namespaces", *rest[1:]]
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]  # namespaced resource: namespaces/NS/RESOURCE[/NAME]
    resource, name = rest[0], (rest[1] if len(rest) > 1 else None)
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    query = parse_qs(parts.query)
    verb = {
        "GET": "get" if name else ("watch" if query.get("watch") in (["true"], ["1"]) else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }[method.upper()]
    return group, resource, verb, name


def _allowed(rules: Sequence[Mapping[str, Any]], call: tuple[str, str, str, str | None]) -> bool:
    group, resource, verb, name = call
    for rule in rules:
        if group not in rule["apiGroups"] or resource not in rule["resources"]:
            continue
        if verb not in rule["verbs"]:
            continue
        names = rule.get("resourceNames")
        if names and name not in names:
            continue
        return True
    return False


def test_every_api_call_is_granted_by_the_chart_rbac(
    kube: KubeEmulator, chart_injector: tuple[InjectorProcess, list[dict[str, Any]]]
) -> None:
    injector, objs = chart_injector
    kube.create_namespace("billing")
    _inject_and_mirror(kube, injector, "billing")  # admission, Event, Secret create + read
    # A Deployment whose pods started while the webhook was down: reported and restarted.
    cluster = Cluster(kube, ["billing"])
    kube.create(
        "/apis/apps/v1/namespaces/billing/deployments",
        deployment(
            "ledger",
            annotations={"lumigo.io/inject": "python"},
            template_annotations={"lumigo.io/inject": "python"},
        ),
    )
    cluster.step()
    wait_for(
        lambda: (
            "kubectl.kubernetes.io/restartedAt"
            in (kube.get("/apis/apps/v1/namespaces/billing/deployments/ledger") or {})["spec"][
                "template"
            ]["metadata"].get("annotations", {})
        ),
        timeout=30,
        what="the catch-up restart",
    )
    wait_for(
        lambda: [e for e in kube.events("billing") if e["reason"] == "LumigoMissedPods"],
        what="the missed-pods Event",
    )
    rules = find(objs, "ClusterRole")["rules"]
    made_by_injector = set()
    for request in list(kube.handler):
        if str(request.headers.get("User-Agent", "")).startswith("python-requests"):
            continue  # the test's own setup and reads
        call = _api_call(str(request.method.value), str(request.url))
        if call is not None:
            made_by_injector.add(call)
    assert ("", "secrets", "create", None) in made_by_injector, sorted(made_by_injector)
    assert ("", "pods", "watch", None) in made_by_injector, sorted(made_by_injector)
    assert ("apps", "deployments", "patch", "ledger") in made_by_injector
    denied = sorted(c for c in made_by_injector if not _allowed(rules, c))
    assert not denied, f"calls the chart's ClusterRole does not grant: {denied}"


def test_without_a_token_the_rendered_injector_still_injects(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    helm = Helm(helm_binary(), tmp_path / "helm-home")
    port, health_port = free_port(), free_port()
    objs = helm.template({"webhook": {"port": port}, "healthPort": health_port})
    container = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    certs = TestCertificates(tmp_path / "tls")
    env = _resolve_env(container["env"], objs, {"/tls": certs.directory, "/tmp": tmp_path})
    assert "LUMIGO_TRACER_TOKEN" not in env
    kube.create_namespace("tokenless")
    injector = start_injector(
        kube.write_kubeconfig(tmp_path / "kubeconfig"),
        certs,
        tmp_path,
        command=_executable([*container["command"], *container.get("args", [])]),
        env=env,
        port=port,
        health_port=health_port,
    )
    try:
        injector.wait_ready()
        pod = deployment_pod("api", annotations={"lumigo.io/inject": "python"})
        response = injector.review(admission_review(pod, namespace="tokenless"))
        assert response["allowed"] is True and decode_patch(response)
    finally:
        injector.stop()
    assert kube.get("/api/v1/namespaces/tokenless/secrets/lumigo-credentials") is None


def test_namespace_label_opt_in_is_honoured(
    kube: KubeEmulator, chart_injector: tuple[InjectorProcess, list[dict[str, Any]]]
) -> None:
    """The chart's second webhook entry sends every pod of a namespace labelled
    lumigo.io/inject=python; the injector must inject them (and respect a pod's opt-out)."""
    injector, _ = chart_injector
    injector.wait_ready()
    kube.create(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "labelled", "labels": {"lumigo.io/inject": "python"}},
        },
    )
    plain = injector.review(admission_review(deployment_pod("api"), namespace="labelled"))
    assert decode_patch(plain), plain
    opted_out = deployment_pod("batch", annotations={"lumigo.io/inject": "false"})
    response = injector.review(admission_review(opted_out, namespace="labelled"))
    assert response["allowed"] is True and not decode_patch(response)


def test_webhook_only_mode_injects_without_touching_workloads(tmp_path: Path) -> None:
    """`propagation.enabled: false`: the rendered injector still injects and mirrors the
    token, watches and patches no workload, and stays within its smaller ClusterRole."""
    helm = Helm(helm_binary(), tmp_path / "helm-home")
    port, health_port = free_port(), free_port()
    objs = helm.template(
        {
            "lumigo": {"token": TOKEN},
            "propagation": {"enabled": False},
            "webhook": {"port": port},
            "healthPort": health_port,
        },
        namespace=NAMESPACE,
    )
    container = find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    certs = TestCertificates(tmp_path / "tls")
    env = _resolve_env(container["env"], objs, {"/tls": certs.directory, "/tmp": tmp_path})
    with KubeEmulator() as kube:
        kube.create_namespace(NAMESPACE)
        kube.create_namespace("shop")
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"lumigo.io/inject": "python"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]},
                },
            },
        }
        kube.create("/apis/apps/v1/namespaces/shop/deployments", deployment)
        injector = start_injector(
            kube.write_kubeconfig(tmp_path / "kubeconfig"),
            certs,
            tmp_path,
            command=_executable([*container["command"], *container.get("args", [])]),
            env=env,
            port=port,
            health_port=health_port,
        )
        try:
            # The operator's watches are up once a namespace opt-in reaches the mirror.
            _inject_and_mirror(kube, injector, "shop")
            kube.create(
                "/api/v1/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "opted", "labels": {"lumigo.io/inject": "python"}},
                },
            )
            wait_for(
                lambda: kube.get("/api/v1/namespaces/opted/secrets/lumigo-credentials"),
                timeout=20,
                what="token Secret mirrored on a namespace opt-in",
            )
        finally:
            injector.stop()
        calls = {
            call
            for request in list(kube.handler)
            if not str(request.headers.get("User-Agent", "")).startswith("python-requests")
            and (call := _api_call(str(request.method.value), str(request.url))) is not None
        }
        stored = kube.get("/apis/apps/v1/namespaces/shop/deployments/web")
    assert ("", "namespaces", "watch", None) in calls, sorted(calls)
    touched = sorted(c for c in calls if c[0] in ("apps", "batch"))
    assert not touched, f"webhook-only injector touched workloads: {touched}"
    assert stored is not None
    assert "annotations" not in stored["spec"]["template"]["metadata"]
    rules = find(objs, "ClusterRole")["rules"]
    denied = sorted(c for c in calls if not _allowed(rules, c))
    assert not denied, f"calls the chart's ClusterRole does not grant: {denied}"
