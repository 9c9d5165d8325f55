"""The Helm chart, rendered by the real `helm` binary and checked like a reviewer would.

Every rendered object is validated against the Kubernetes OpenAPI schema for 1.30 (where
webhook matchConditions went GA) and the newest version kubernetes-validate knows. The
webhook's namespaceSelector + CEL matchConditions are evaluated (cel-python) on a grid of
pods and namespaces and compared with the injector's own `wants_injection` decision.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import celpy
import kubernetes_validate
import pytest
import yaml
from celpy import celtypes
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lumigo_injector.spec.inject import wants_injection
from tests.helpers.helm import CHART_DIR, Helm, HelmCluster, find, helm_binary, kinds

NAMESPACE = "lumigo-system"
RELEASE = "lumigo"
FULLNAME = "lumigo-lumigo-injector"
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CERT_MANAGER_KINDS = {"Certificate", "Issuer", "ClusterIssuer"}


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary(), tmp_path_factory.mktemp("helm-home"))


def _ca_and_serving_cert() -> tuple[str, str, str]:
    """A CA and a serving cert signed by it, as PEM: (ca, cert, key)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my-org-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    host = f"{FULLNAME}.{NAMESPACE}.svc"
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return ca.public_bytes(pem).decode(), cert.public_bytes(pem).decode(), key_pem


@pytest.fixture(scope="module")
def byo_ca() -> str:
    return _ca_and_serving_cert()[0]


def scenarios(byo_ca: str) -> dict[str, dict[str, Any]]:
    """Value sets covering every TLS mode and every token mode."""
    return {
        "defaults": {},
        "token": {"lumigo": {"token": "t0ken-value-123"}},
        "existing-secret": {
            "lumigo": {"existingSecret": "my-lumigo", "existingSecretKey": "lumigo-token"}
        },
        "cert-manager": {"tls": {"mode": "certManager"}, "lumigo": {"token": "abc"}},
        "cert-manager-clusterissuer": {
            "tls": {
                "mode": "certManager",
                "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}},
            }
        },
        "secret": {
            "tls": {"mode": "secret", "secret": {"name": "my-webhook-tls", "caBundle": byo_ca}},
            "lumigo": {"existingSecret": "my-lumigo"},
        },
        "tuned": {
            "replicaCount": 3,
            "lumigo": {"token": "abc", "endpoint": "http://otel-collector.observability:4318"},
            "webhook": {"timeoutSeconds": 3, "namespaceOptIn": False, "excludeNamespaces": []},
            "image": {
                "tag": "1.2.3",
                "digest": "sha256:" + "a" * 64,
            },
            "podDisruptionBudget": {"enabled": False},
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:x"}},
            "priorityClassName": "system-cluster-critical",
            "logFormat": "text",
            "logLevel": "debug",
            "delivery": "image-volume",
        },
    }


@pytest.fixture(scope="module")
def value_sets(byo_ca: str) -> dict[str, dict[str, Any]]:
    return scenarios(byo_ca)


_RENDERED: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def render(helm: Helm, value_sets: dict[str, dict[str, Any]]) -> Any:
    def _render(name: str) -> list[dict[str, Any]]:
        if name not in _RENDERED:
            _RENDERED[name] = helm.template(value_sets[name], release=RELEASE, namespace=NAMESPACE)
        return _RENDERED[name]

    return _render


SCENARIOS = list(scenarios("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"))


def _container(objs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    pod = find(objs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def _env(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


# ------------------------------------------------------------------------------------------
# lint and schema validity
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict_passes(helm: Helm, value_sets: dict[str, Any], scenario: str) -> None:
    proc = helm.lint(value_sets[scenario])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def _null_paths(node: Any, path: str = "") -> list[str]:
    """Keys rendered without a value (`annotations:` with nothing under it)."""
    if node is None:
        return [path]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _null_paths(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _null_paths(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_is_valid_kubernetes(render: Any, scenario: str) -> None:
    objs = render(scenario)
    assert objs
    for obj in objs:
        assert not _null_paths(obj), f"{obj['kind']} renders empty keys: {_null_paths(obj)}"
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "lumigo-injector", obj["kind"]
        assert labels.get("app.kubernetes.io/instance") == RELEASE
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        assert labels.get("app.kubernetes.io/version")
        assert labels.get("helm.sh/chart", "").startswith("lumigo-injector-")
        if obj["kind"] in CERT_MANAGER_KINDS:
            assert obj["apiVersion"] == "cert-manager.io/v1"
            continue  # a CRD kind: checked field by field in the cert-manager tests
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_validator_is_not_a_rubber_stamp(render: Any) -> None:
    """The same validation rejects a webhook with a misspelt field."""
    hook = json.loads(json.dumps(find(render("defaults"), "MutatingWebhookConfiguration")))
    hook["webhooks"][0]["failurPolicy"] = "Ignore"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hook, "1.30.0", strict=True)


def test_chart_declares_kubernetes_1_30_or_newer(helm: Helm) -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.30.0-0"
    old = helm.template_raw(kube_version="1.29.9")
    assert old.returncode != 0
    assert "kubeVersion" in old.stderr or ">=1.30.0-0" in old.stderr, old.stderr
    assert helm.template_raw(kube_version="1.30.0").returncode == 0


def test_default_render_object_list(render: Any) -> None:
    assert kinds(render("defaults")) == [
        f"ClusterRole/{FULLNAME}",
        f"ClusterRoleBinding/{FULLNAME}",
        f"Deployment/{FULLNAME}",
        f"MutatingWebhookConfiguration/{FULLNAME}",
        f"PodDisruptionBudget/{FULLNAME}",
        f"Secret/{FULLNAME}-tls",
        f"Service/{FULLNAME}",
        f"ServiceAccount/{FULLNAME}",
        f"ValidatingAdmissionPolicy/{FULLNAME}-secrets",
        f"ValidatingAdmissionPolicy/{FULLNAME}-workloads",
        f"ValidatingAdmissionPolicyBinding/{FULLNAME}-secrets",
        f"ValidatingAdmissionPolicyBinding/{FULLNAME}-workloads",
    ]
    for obj in render("defaults"):
        cluster_scoped = obj["kind"] in {
            "ClusterRole",
            "ClusterRoleBinding",
            "MutatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }
        assert ("namespace" in obj["metadata"]) is not cluster_scoped, obj["kind"]
        if not cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE


# ------------------------------------------------------------------------------------------
# the webhook: fails open, reaches only pods that ask for injection
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["defaults", "tuned", "cert-manager", "secret"])
def test_webhook_fails_open_and_points_at_the_service(render: Any, scenario: str) -> None:
    objs = render(scenario)
    hooks = find(objs, "MutatingWebhookConfiguration")["webhooks"]
    service = find(objs, "Service")
    container = _container(objs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (svc_port,) = service["spec"]["ports"]
    assert ports[svc_port["targetPort"]] == int(_env(container)["LUMIGO_INJECTOR_PORT"]["value"])
    timeout = 3 if scenario == "tuned" else 5
    assert len(hooks) == (1 if scenario == "tuned" else 2)
    for hook in hooks:
        assert hook["failurePolicy"] == "Ignore"
        assert hook["sideEffects"] == "NoneOnDryRun"  # as docs/operator.md says
        assert hook["timeoutSeconds"] == timeout
        assert hook["reinvocationPolicy"] == "IfNeeded"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["rules"] == [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert hook["clientConfig"]["service"] == {
            "name": service["metadata"]["name"],
            "namespace": NAMESPACE,
            "path": "/mutate-pods",
            "port": svc_port["port"],
        }
        assert hook["matchConditions"], "every entry must filter pods with CEL"


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _cel_functions() -> dict[str, Any]:
    # Kubernetes' CEL environment includes cel-go's strings extension; these two are used.
    return {
        "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
        "trim": lambda s: celtypes.StringType(str(s).strip()),
    }


class WebhookModel:
    """Which webhook entries the API server would call for a pod in a namespace."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        env = celpy.Environment()
        self.entries = []
        for hook in config["webhooks"]:
            programs = [
                env.program(env.compile(cond["expression"]), functions=_cel_functions())
                for cond in hook["matchConditions"]
            ]
            self.entries.append((hook["name"], hook["namespaceSelector"], programs))

    def called(
        self, pod: Mapping[str, Any], ns_name: str, ns_labels: Mapping[str, str]
    ) -> list[str]:
        labels = {"kubernetes.io/metadata.name": ns_name, **ns_labels}
        activation = {"object": celpy.json_to_cel(json.loads(json.dumps(pod)))}
        hits = []
        for name, selector, programs in self.entries:
            if not _selector_matches(selector, labels):
                continue
            if all(bool(p.evaluate(activation)) for p in programs):
                hits.append(name)
        return hits


POD_ANNOTATIONS: list[dict[str, str] | None] = [
    None,
    {},
    {"team": "shop"},
    {"lumigo.io/inject": "python"},
    {"lumigo.io/inject": "Python "},
    {"lumigo.io/inject": "false"},
    {"lumigo.io/inject": "java"},
    {"lumigo.io/inject": ""},
    {"lumigo.io/injected": "0.1.0", "lumigo.io/inject": "python"},
]
NS_LABELS: list[dict[str, str]] = [
    {},
    {"lumigo.io/inject": "python"},
    {"lumigo.io/inject": "Python"},
    {"lumigo.io/inject": "false"},
    {"team": "a"},
]


def _pod(annotations: dict[str, str] | None) -> dict[str, Any]:
    # Pods created by a ReplicaSet arrive without a name (generateName only).
    meta: dict[str, Any] = {"generateName": "web-7d4b9c-", "labels": {"app": "web"}}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": []}}


@pytest.mark.parametrize("scenario", ["defaults", "tuned"])
def test_only_pods_that_ask_for_injection_reach_the_webhook(render: Any, scenario: str) -> None:
    """namespaceSelector + matchConditions select exactly what the injector would inject,
    at most one entry per pod, and never kube-system or the injector's own namespace."""
    model = WebhookModel(find(render(scenario), "MutatingWebhookConfiguration"))
    opt_in = scenario != "tuned"
    mismatches = []
    for ns_name in ("shop", "kube-system", NAMESPACE):
        for ns_labels in NS_LABELS:
            for pod_annotations in POD_ANNOTATIONS:
                pod = _pod(pod_annotations)
                called = model.called(pod, ns_name, ns_labels)
                assert len(called) <= 1, (ns_labels, pod_annotations, called)
                # The namespace opt-in is a label (webhooks cannot select on annotations):
                # the injector must read it like a namespace annotation.
                wanted = wants_injection(pod["metadata"], ns_labels if opt_in else {}, False)
                if ns_name == NAMESPACE or (scenario == "defaults" and ns_name == "kube-system"):
                    wanted = False
                if bool(called) != wanted:
                    mismatches.append((ns_name, ns_labels, pod_annotations, called, wanted))
    assert not mismatches


def test_namespace_selector_excludes_system_and_release_namespaces(render: Any) -> None:
    for hook in find(render("defaults"), "MutatingWebhookConfiguration")["webhooks"]:
        (by_name,) = [
            e
            for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        ]
        assert by_name["operator"] == "NotIn"
        assert {"kube-system", NAMESPACE} <= set(by_name["values"])
    # even with an empty exclusion list the release namespace stays excluded
    for hook in find(render("tuned"), "MutatingWebhookConfiguration")["webhooks"]:
        exprs = hook["namespaceSelector"]["matchExpressions"]
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": [NAMESPACE],
        } in exprs


# ------------------------------------------------------------------------------------------
# the Deployment
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["defaults", "tuned"])
def test_pod_meets_restricted_pod_security(render: Any, scenario: str) -> None:
    objs = render(scenario)
    pod = find(objs, "Deployment")["spec"]["template"]["spec"]
    container = _container(objs)
    psc, csc = pod["securityContext"], container["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc.get("privileged") is False
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(forbidden)
    for volume in pod["volumes"]:
        assert set(volume) <= {"name", "secret", "emptyDir"}, volume
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == int(
            _env(container)["LUMIGO_INJECTOR_HEALTH_PORT"]["value"]
        )
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/tls"]["readOnly"] is True
    assert "/tmp" in mounts  # writable scratch space on a read-only root filesystem


def test_two_replicas_spread_across_nodes_with_a_pdb(render: Any) -> None:
    objs = render("defaults")
    deployment = find(objs, "Deployment")
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert _selector_matches(spec["selector"], pod_labels)
    pod = spec["template"]["spec"]
    hostname_spread = [
        c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == "kubernetes.io/hostname"
    ]
    assert hostname_spread and hostname_spread[0]["maxSkew"] == 1
    assert _selector_matches(hostname_spread[0]["labelSelector"], pod_labels)
    (anti,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _selector_matches(anti["podAffinityTerm"]["labelSelector"], pod_labels)
    pdb = find(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert _selector_matches(pdb["spec"]["selector"], pod_labels)
    service = find(objs, "Service")
    assert _selector_matches({"matchLabels": service["spec"]["selector"]}, pod_labels)
    assert "PodDisruptionBudget" not in {o["kind"] for o in render("tuned")}


def test_images_are_pinned_and_passed_to_the_injector(render: Any) -> None:
    container = _container(render("defaults"))
    repo, tag = container["image"].rsplit(":", 1)
    assert repo.endswith("/lumigo-injector") and tag not in ("", "latest")
    init_image = _env(container)["LUMIGO_INJECTOR_INIT_IMAGE"]["value"]
    assert init_image.rsplit(":", 1)[1] not in ("", "latest")
    assert "lumigo-otel-python-init" in init_image
    tuned = _container(render("tuned"))
    assert tuned["image"] == "public.ecr.aws/lumigo/lumigo-injector:1.2.3@sha256:" + "a" * 64


def test_container_runs_serve_with_the_contract_settings(render: Any) -> None:
    container = _container(render("tuned"))
    assert [*container["command"], *container["args"]] == ["lumigo-injector", "serve"]
    env = _env(container)
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["LUMIGO_INJECTOR_PORT"]["value"] == "9443"
    assert env["LUMIGO_INJECTOR_HEALTH_PORT"]["value"] == "8080"
    assert env["LUMIGO_INJECTOR_TLS_CERT_FILE"]["value"] == "/tls/tls.crt"
    assert env["LUMIGO_INJECTOR_TLS_KEY_FILE"]["value"] == "/tls/tls.key"
    assert env["LUMIGO_INJECTOR_SECRET_NAME"]["value"] == "lumigo-credentials"
    assert env["LUMIGO_INJECTOR_SECRET_KEY"]["value"] == "token"
    assert env["LUMIGO_INJECTOR_LOG_FORMAT"]["value"] == "text"
    assert env["LUMIGO_INJECTOR_LOG_LEVEL"]["value"] == "debug"
    assert env["LUMIGO_ENDPOINT"]["value"] == "http://otel-collector.observability:4318"
    assert env["LUMIGO_INJECTOR_DELIVERY"]["value"] == "image-volume"
    assert "LUMIGO_ENDPOINT" not in _env(_container(render("defaults")))
    assert _env(_container(render("defaults")))["LUMIGO_INJECTOR_DELIVERY"]["value"] == "auto"


# ------------------------------------------------------------------------------------------
# RBAC
# ------------------------------------------------------------------------------------------


def _rules(objs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in find(objs, "ClusterRole")["rules"]]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rbac_has_no_wildcards_and_no_secret_reads(render: Any, scenario: str) -> None:
    objs = render(scenario)
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")]
    binding = find(objs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == find(objs, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": find(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"],
            "namespace": NAMESPACE,
        }
    ]
    dangerous = {"escalate", "bind", "impersonate", "delete", "deletecollection"}
    for rule in _rules(objs):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), rule
        assert not dangerous & set(rule["verbs"]), rule
        assert not {"pods/exec", "configmaps", "serviceaccounts/token"} & set(rule["resources"]), (
            rule
        )
        if "pods" in rule["resources"]:  # the fleet checks read pods, never change them
            assert rule["resources"] == ["pods"] and rule["verbs"] == ["list", "watch"], rule
        assert "admissionregistration.k8s.io" not in rule["apiGroups"], rule
        if "secrets" in rule["resources"]:
            assert rule["resources"] == ["secrets"]
            if "resourceNames" in rule:
                assert rule["resourceNames"] == ["lumigo-credentials"]
                assert set(rule["verbs"]) <= {"get", "patch"}
            else:
                assert rule["verbs"] == ["create"], "create is the only unnamed Secret verb"
    secret_rules = [r for r in _rules(objs) if "secrets" in r["resources"]]
    has_token = scenario not in ("defaults", "cert-manager-clusterissuer")
    assert bool(secret_rules) is has_token, "Secret access exists only for mirroring a token"


def test_rbac_covers_what_the_operator_does(render: Any) -> None:
    granted: set[tuple[str, str, str]] = set()
    for rule in _rules(render("token")):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    granted.add((group, resource, verb))
    needed = {
        ("", "namespaces", "get"),
        ("", "namespaces", "watch"),
        ("", "events", "create"),
        ("", "secrets", "create"),
        ("", "secrets", "get"),
        ("", "secrets", "patch"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
    }
    for group, resource in (
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "cronjobs"),
    ):
        needed |= {(group, resource, v) for v in ("get", "list", "watch", "patch")}
    assert needed <= granted, needed - granted


# ------------------------------------------------------------------------------------------
# TLS, three ways
# ------------------------------------------------------------------------------------------


def _b64_pem(value: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(value))


def test_helm_tls_cabundle_issued_the_serving_cert(render: Any) -> None:
    objs = render("defaults")
    hooks = find(objs, "MutatingWebhookConfiguration")["webhooks"]
    secret = find(objs, "Secret", f"{FULLNAME}-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}, "the CA key is not kept"
    assert {h["clientConfig"]["caBundle"] for h in hooks} == {secret["data"]["ca.crt"]}
    ca = _b64_pem(hooks[0]["clientConfig"]["caBundle"])
    serving = _b64_pem(secret["data"]["tls.crt"])
    assert serving.issuer == ca.subject
    serving.verify_directly_issued_by(ca)  # raises if the signature does not check out
    key = serialization.load_pem_private_key(base64.b64decode(secret["data"]["tls.key"]), None)
    assert key.public_key().public_numbers() == serving.public_key().public_numbers()  # type: ignore[union-attr]
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{FULLNAME}.{NAMESPACE}.svc" in sans.get_values_for_type(x509.DNSName)
    now = dt.datetime.now(dt.timezone.utc)
    assert serving.not_valid_before_utc <= now < serving.not_valid_after_utc
    assert serving.not_valid_after_utc - now > dt.timedelta(days=3000)
    deployment = find(objs, "Deployment")
    tls_volumes = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert tls_volumes[0]["secret"]["secretName"] == secret["metadata"]["name"]


def _released(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as a previous helm release left it in the cluster (ownership metadata)."""
    obj = json.loads(json.dumps(obj))
    obj["metadata"].setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE}
    )
    return obj


def test_upgrade_keeps_the_generated_certificate(helm: Helm, render: Any, tmp_path: Path) -> None:
    """`lookup` finds the installed Secret: no new CA, no caBundle churn on upgrade."""
    installed = find(render("defaults"), "Secret", f"{FULLNAME}-tls")
    fresh = find(helm.template(namespace=NAMESPACE, release=RELEASE), "Secret", f"{FULLNAME}-tls")
    assert fresh["data"]["ca.crt"] != installed["data"]["ca.crt"], "each install makes a new CA"

    cluster = HelmCluster(tmp_path)
    cluster.add(_released(installed))
    with cluster:
        proc = helm.template_raw(
            {"replicaCount": 3}, release=RELEASE, namespace=NAMESPACE, cluster=cluster
        )
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    upgraded = find(objs, "Secret", f"{FULLNAME}-tls")
    assert upgraded["data"] == installed["data"]
    for hook in find(objs, "MutatingWebhookConfiguration")["webhooks"]:
        assert hook["clientConfig"]["caBundle"] == installed["data"]["ca.crt"]


def test_upgrade_replaces_an_incomplete_certificate_secret(
    helm: Helm, render: Any, tmp_path: Path
) -> None:
    installed = find(render("defaults"), "Secret", f"{FULLNAME}-tls")
    broken = _released(installed)
    del broken["data"]["ca.crt"]
    cluster = HelmCluster(tmp_path)
    cluster.add(broken)
    with cluster:
        proc = helm.template_raw(release=RELEASE, namespace=NAMESPACE, cluster=cluster)
    assert proc.returncode == 0, proc.stderr
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    regenerated = find(objs, "Secret", f"{FULLNAME}-tls")
    assert set(regenerated["data"]) == {"ca.crt", "tls.crt", "tls.key"}
    assert regenerated["data"]["tls.crt"] != installed["data"]["tls.crt"]
    ca = _b64_pem(regenerated["data"]["ca.crt"])
    _b64_pem(regenerated["data"]["tls.crt"]).verify_directly_issued_by(ca)


def test_secret_tls_uses_the_given_secret_and_ca(render: Any, byo_ca: str) -> None:
    objs = render("secret")
    assert not [o for o in objs if o["kind"] == "Secret"], "nothing to create in this mode"
    for hook in find(objs, "MutatingWebhookConfiguration")["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode().strip() == byo_ca.strip()
    volumes = find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "tls",
        "secret": {"secretName": "my-webhook-tls", "defaultMode": 0o440},
    } in volumes


def test_cert_manager_tls_chain(render: Any) -> None:
    objs = render("cert-manager")
    hook = find(objs, "MutatingWebhookConfiguration")
    assert all("caBundle" not in h["clientConfig"] for h in hook["webhooks"])
    serving = find(objs, "Certificate", f"{FULLNAME}-serving")
    assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{FULLNAME}-serving"
    )
    volumes = find(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "tls",
        "secret": {"secretName": serving["spec"]["secretName"], "defaultMode": 0o440},
    } in volumes
    assert f"{FULLNAME}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    assert "server auth" in serving["spec"]["usages"]
    # serving cert <- CA Issuer <- CA Certificate <- self-signed Issuer
    ca_issuer = find(objs, "Issuer", serving["spec"]["issuerRef"]["name"])
    ca_cert = find(objs, "Certificate", f"{FULLNAME}-ca")
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    assert ca_cert["spec"]["isCA"] is True
    assert "selfSigned" in find(objs, "Issuer", ca_cert["spec"]["issuerRef"]["name"])["spec"]
    assert not [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-tls")]

    own = render("cert-manager-clusterissuer")
    assert [o["kind"] for o in own if o["kind"] in CERT_MANAGER_KINDS] == ["Certificate"]
    assert find(own, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }


# ------------------------------------------------------------------------------------------
# the token
# ------------------------------------------------------------------------------------------


def test_token_value_becomes_a_secret_read_by_the_injector_only(render: Any) -> None:
    objs = render("token")
    secret = find(objs, "Secret", f"{FULLNAME}-token")
    assert base64.b64decode(secret["data"]["token"]).decode() == "t0ken-value-123"
    ref = _env(_container(objs))["LUMIGO_TRACER_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{FULLNAME}-token", "key": "token", "optional": True}
    # the token itself appears nowhere but in that Secret
    others = [o for o in objs if o is not secret]
    assert "t0ken-value-123" not in yaml.safe_dump_all(others)


def test_existing_secret_is_referenced_not_created(render: Any) -> None:
    objs = render("existing-secret")
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Secret"] == [f"{FULLNAME}-tls"]
    ref = _env(_container(objs))["LUMIGO_TRACER_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "my-lumigo", "key": "lumigo-token", "optional": True}


def test_without_a_token_the_injector_still_runs_and_notes_say_so(helm: Helm, render: Any) -> None:
    objs = render("defaults")
    assert "LUMIGO_TRACER_TOKEN" not in _env(_container(objs))
    assert kinds(objs).count(f"Secret/{FULLNAME}-tls") == 1
    proc = helm.run(
        "install", RELEASE, str(CHART_DIR), "-n", NAMESPACE, "--dry-run=client", check=True
    )
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "no Lumigo token is configured" in notes
    assert "kubectl annotate deployment" in notes and "lumigo.io/inject=python" in notes
    with_token = helm.run(
        "install",
        RELEASE,
        str(CHART_DIR),
        "-n",
        NAMESPACE,
        "--dry-run=client",
        "--set",
        "lumigo.token=abc",
        check=True,
    )
    assert "no Lumigo token" not in with_token.stdout.split("NOTES:", 1)[1]


# ------------------------------------------------------------------------------------------
# bad values are rejected with a message naming the problem
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["imag.tag=1"], "'imag' not allowed"),
        (["webhook.timeoutSecond=5"], "'timeoutSecond' not allowed"),
        (["lumigo.tokn=abc"], "'tokn' not allowed"),
        (["webhook.timeoutSeconds=60"], "/webhook/timeoutSeconds"),
        (["tls.mode=vault"], "/tls/mode"),
        (["tls.mode=secret"], "/tls/secret/name"),
        (["tls.mode=secret", "tls.secret.name=x", "tls.secret.caBundle=bm90LXBlbQ=="], "caBundle"),
        (["replicaCount=0"], "/replicaCount"),
        (["logFormat=xml"], "/logFormat"),
        (["logLevel=verbose"], "/logLevel"),
        (["delivery=copy"], "/delivery"),
        (["lumigo.endpoint=collector:4318"], "/lumigo/endpoint"),
        (["image.tag=latest"], 'not "latest"'),
        (["initImage.tag=latest"], 'not "latest"'),
        (["image.digest=sha256:abc"], "/image/digest"),
    ],
)
def test_bad_values_fail_with_a_clear_message(helm: Helm, sets: list[str], message: str) -> None:
    proc = helm.template_raw(sets=sets)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


# ------------------------------------------------------------------------------------------
# documentation and schema stay in step with values.yaml
# ------------------------------------------------------------------------------------------


def _schema_leaves(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    props = node.get("properties")
    if not props or prefix == "resources":
        return [prefix]
    leaves: list[str] = []
    for key, child in props.items():
        leaves += _schema_leaves(child, f"{prefix}.{key}" if prefix else key)
    return leaves


def _value_leaves(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict) or not node or prefix in ("resources",):
        return [prefix]
    leaves: list[str] = []
    for key, child in node.items():
        path = f"{prefix}.{key}" if prefix else key
        free_form = path in ("podSecurityContext", "securityContext")
        leaves += [path] if free_form else _value_leaves(child, path)
    return leaves


def test_every_value_is_in_the_schema_and_the_readme() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    readme = (CHART_DIR / "README.md").read_text()
    schema_leaves = set(_schema_leaves(schema)) - {"global"}
    value_leaves = set(_value_leaves(values))
    assert value_leaves == schema_leaves
    undocumented = sorted(k for k in value_leaves if f"| `{k}` |" not in readme)
    assert not undocumented
