"""Least privilege you can prove: the chart's ValidatingAdmissionPolicies, rendered by the real
helm and evaluated (cel-python) the way the API server would, against the injector's own
writes (the operator's real propagation patches, the Secret mirror's real Secret) and against
what a compromised injector might try; plus the webhook-only mode without workload rights."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import celpy
import kubernetes_validate
import pytest
from celpy import celtypes

from lumigo_injector.k8s import propagation, rollout
from lumigo_injector.serve.secrets_mirror import plan_secret
from tests.helpers.helm import Helm, find, helm_binary, kinds

NAMESPACE = "lumigo-system"
RELEASE = "lumigo"
FULLNAME = "lumigo-lumigo-injector"
SECRET = "lumigo-credentials"
K8S_VERSIONS = ("1.30.0", "1.37.0")


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(helm_binary(), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> list[dict[str, Any]]:
    return helm.template({"lumigo": {"token": "t0ken"}}, release=RELEASE, namespace=NAMESPACE)


# ------------------------------------------------------------------ the API server's side


class Policy:
    """One ValidatingAdmissionPolicy and its binding, evaluated like the API server does:
    matchConstraints, then matchConditions (all true, else not bound), then variables in
    order, then every validation (false or an error denies: failurePolicy Fail)."""

    def __init__(self, policy: Mapping[str, Any], binding: Mapping[str, Any]) -> None:
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert "matchResources" not in binding["spec"], "the binding covers every namespace"
        self.spec = policy["spec"]
        assert self.spec["failurePolicy"] == "Fail"
        env = celpy.Environment()

        def compile_(expression: str) -> Any:
            return env.program(env.compile(expression))

        self.conditions = [compile_(c["expression"]) for c in self.spec["matchConditions"]]
        self.variables = [
            (v["name"], compile_(v["expression"])) for v in self.spec.get("variables", [])
        ]
        self.validations = [
            (compile_(v["expression"]), v["message"]) for v in self.spec["validations"]
        ]

    def _matches(self, request: Mapping[str, Any]) -> bool:
        resource = request["resource"]
        for rule in self.spec["matchConstraints"]["resourceRules"]:
            if (
                resource["group"] in rule["apiGroups"]
                and resource["resource"] in rule["resources"]
                and request["operation"] in rule["operations"]
                and (rule["apiVersions"] == ["*"] or resource["version"] in rule["apiVersions"])
            ):
                return True
        return False

    def denials(self, request: Mapping[str, Any]) -> list[str] | None:
        """None: the policy does not apply; else the messages of the failed validations."""
        if not self._matches(request):
            return None
        activation: dict[str, Any] = {
            "request": celpy.json_to_cel(json.loads(json.dumps(request))),
            "object": celpy.json_to_cel(request.get("object")),
            "oldObject": celpy.json_to_cel(request.get("oldObject")),
        }
        if not all(_true(p.evaluate(activation)) for p in self.conditions):
            return None
        variables: dict[str, Any] = {}
        for name, program in self.variables:
            activation["variables"] = celtypes.MapType(variables)
            variables[celtypes.StringType(name)] = program.evaluate(activation)
        activation["variables"] = celtypes.MapType(variables)
        return [msg for program, msg in self.validations if not _true(program.evaluate(activation))]


def _true(value: Any) -> bool:
    return isinstance(value, celtypes.BoolType) and bool(value)


def policy(objs: Sequence[Mapping[str, Any]], suffix: str) -> Policy:
    name = f"{FULLNAME}-{suffix}"
    return Policy(
        find(objs, "ValidatingAdmissionPolicy", name),
        find(objs, "ValidatingAdmissionPolicyBinding", name),
    )


def injector_user(objs: Sequence[Mapping[str, Any]]) -> str:
    account = find(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    return f"system:serviceaccount:{NAMESPACE}:{account}"


def review(
    user: str,
    operation: str,
    group: str,
    resource: str,
    namespace: str,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `request` of an AdmissionReview (the fields the policies read)."""
    kind = obj or old or {}
    return {
        "operation": operation,
        "namespace": namespace,
        "name": (kind.get("metadata") or {}).get("name", ""),
        "kind": {"group": group, "version": "v1", "kind": kind.get("kind", "")},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "userInfo": {"username": user, "groups": ["system:serviceaccounts"]},
        "object": obj,
        "oldObject": old,
    }


# ------------------------------------------------------------------ rendering


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_policies_are_valid_kubernetes_objects(
    rendered: list[dict[str, Any]], version: str
) -> None:
    objs = [o for o in rendered if o["kind"].startswith("ValidatingAdmissionPolicy")]
    assert kinds(objs) == [
        f"ValidatingAdmissionPolicy/{FULLNAME}-secrets",
        f"ValidatingAdmissionPolicy/{FULLNAME}-workloads",
        f"ValidatingAdmissionPolicyBinding/{FULLNAME}-secrets",
        f"ValidatingAdmissionPolicyBinding/{FULLNAME}-workloads",
    ]
    for obj in objs:
        assert obj["apiVersion"] == "admissionregistration.k8s.io/v1"
        kubernetes_validate.validate(obj, version, strict=True)


def test_policies_bind_the_service_account_the_chart_runs(helm: Helm) -> None:
    objs = helm.template(
        {"serviceAccount": {"create": False, "name": "corp-injector"}},
        release=RELEASE,
        namespace="tools",
    )
    user = "system:serviceaccount:tools:corp-injector"
    for suffix in ("secrets", "workloads"):
        spec = find(objs, "ValidatingAdmissionPolicy", f"{FULLNAME}-{suffix}")["spec"]
        assert spec["matchConditions"] == [
            {
                "name": "injector-service-account",
                "expression": f"request.userInfo.username == '{user}'",
            }
        ]


def test_policies_can_be_left_out(helm: Helm) -> None:
    objs = helm.template({"admissionPolicies": {"enabled": False}}, release=RELEASE)
    assert not [o for o in objs if o["kind"].startswith("ValidatingAdmissionPolicy")]


# ------------------------------------------------------------------ Secrets


def mirrored_secret(namespace: str) -> dict[str, Any]:
    """The Secret the injector's mirror really creates."""
    plan = plan_secret(None, namespace=namespace, name=SECRET, key="token", token="t0ken")
    assert plan.action == "create" and plan.body is not None
    return plan.body


def secret_cases(user: str) -> dict[str, tuple[dict[str, Any], bool]]:
    ours = mirrored_secret("shop")
    sa_token = copy.deepcopy(ours)
    sa_token["type"] = "kubernetes.io/service-account-token"
    sa_token["metadata"]["annotations"] = {"kubernetes.io/service-account.name": "admin"}
    other_name = copy.deepcopy(ours)
    other_name["metadata"]["name"] = "payments-db"
    unlabelled = copy.deepcopy(ours)
    del unlabelled["metadata"]["labels"]
    users = copy.deepcopy(ours)
    del users["metadata"]["labels"]
    rotated = copy.deepcopy(ours)
    rotated["data"] = {"token": "bmV3"}
    taken_over = copy.deepcopy(users)
    taken_over["metadata"]["labels"] = ours["metadata"]["labels"]
    return {
        "create-ours": (review(user, "CREATE", "", "secrets", "shop", ours), True),
        "rotate-ours": (review(user, "UPDATE", "", "secrets", "shop", rotated, ours), True),
        "sa-token": (review(user, "CREATE", "", "secrets", "shop", sa_token), False),
        "kube-system": (
            review(user, "CREATE", "", "secrets", "kube-system", mirrored_secret("kube-system")),
            False,
        ),
        "other-name": (review(user, "CREATE", "", "secrets", "shop", other_name), False),
        "no-label": (review(user, "CREATE", "", "secrets", "shop", unlabelled), False),
        "users-secret": (review(user, "UPDATE", "", "secrets", "shop", taken_over, users), False),
    }


@pytest.mark.parametrize(
    "case",
    ["create-ours", "rotate-ours", "sa-token", "kube-system", "other-name", "no-label",
     "users-secret"],
)  # fmt: skip
def test_secret_writes_of_the_injector(rendered: list[dict[str, Any]], case: str) -> None:
    request, allowed = secret_cases(injector_user(rendered))[case]
    denials = policy(rendered, "secrets").denials(request)
    assert denials is not None, "the injector's own request is bound"
    assert (denials == []) is allowed, denials


def test_secret_policy_names_the_reason(rendered: list[dict[str, Any]]) -> None:
    secrets = policy(rendered, "secrets")
    request, _ = secret_cases(injector_user(rendered))["sa-token"]
    assert secrets.denials(request) == ["the Lumigo injector writes only Secrets of type Opaque"]
    request, _ = secret_cases(injector_user(rendered))["kube-system"]
    assert secrets.denials(request) == ["the Lumigo injector never writes Secrets in kube-system"]


def test_other_users_are_not_bound(rendered: list[dict[str, Any]]) -> None:
    for user in ("system:serviceaccount:shop:default", "alice@example.com",
                 f"system:serviceaccount:shop:{FULLNAME}"):  # fmt: skip
        request, _ = secret_cases(user)["sa-token"]
        assert policy(rendered, "secrets").denials(request) is None
        deployment = workload("Deployment")
        changed = copy.deepcopy(deployment)
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
        request = review(user, "UPDATE", "apps", "deployments", "shop", changed, deployment)
        assert policy(rendered, "workloads").denials(request) is None


# ------------------------------------------------------------------ workloads

PLURAL = {"Deployment": "deployments", "StatefulSet": "statefulsets",
          "DaemonSet": "daemonsets", "CronJob": "cronjobs"}  # fmt: skip


def workload(kind: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A workload as the API server holds it (defaults, status, managed fields)."""
    template = {
        "metadata": {"labels": {"app": "web"}, "annotations": {"team": "shop"}},
        "spec": {
            "serviceAccountName": "web",
            "containers": [{"name": "web", "image": "shop/web:1.4", "command": ["gunicorn"]}],
        },
    }
    spec: dict[str, Any]
    if kind == "CronJob":
        spec = {
            "schedule": "*/5 * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "metadata": {"labels": {"job": "report"}},
                "spec": {"backoffLimit": 2, "template": template},
            },
        }
    else:
        spec = {"selector": {"matchLabels": {"app": "web"}}, "template": template}
        if kind != "DaemonSet":
            spec["replicas"] = 3
    return {
        "apiVersion": "batch/v1" if kind == "CronJob" else "apps/v1",
        "kind": kind,
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "0b1c",
            "resourceVersion": "41",
            "generation": 7,
            "labels": {"app": "web"},
            "annotations": {"deploy.example.com/owner": "shop", **(annotations or {})},
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": spec,
        "status": {"observedGeneration": 7},
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what a `patch` with application/merge-patch+json does)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def as_stored(new: dict[str, Any]) -> dict[str, Any]:
    """What the API server hands admission after a write: new resourceVersion, managedFields."""
    stored = copy.deepcopy(new)
    stored["metadata"]["resourceVersion"] = "42"
    stored["metadata"]["managedFields"].append({"manager": "kopf", "operation": "Update"})
    return stored


def workloads_denials(
    objs: Sequence[Mapping[str, Any]], kind: str, old: dict[str, Any], patch: dict[str, Any]
) -> list[str] | None:
    new = as_stored(merge_patch(old, patch))
    group = "batch" if kind == "CronJob" else "apps"
    request = review(injector_user(objs), "UPDATE", group, PLURAL[kind], "shop", new, old)
    return policy(objs, "workloads").denials(request)


@pytest.mark.parametrize("kind", list(PLURAL))
def test_the_operators_own_propagation_patches_pass(
    rendered: list[dict[str, Any]], kind: str
) -> None:
    asked = workload(kind, {"lumigo.io/inject": "python"})
    change = propagation.plan(asked, kind)
    assert change is not None
    assert workloads_denials(rendered, kind, asked, change.patch) == []
    # and taking it back once the user removes the annotation
    propagated = merge_patch(asked, change.patch)
    del propagated["metadata"]["annotations"]["lumigo.io/inject"]
    undo = propagation.plan(propagated, kind)
    assert undo is not None
    assert workloads_denials(rendered, kind, propagated, undo.patch) == []


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_the_fleets_restart_and_pause_patches_pass(
    rendered: list[dict[str, Any]], kind: str
) -> None:
    """Catch-up/upgrade restarts (the rollout-restart stamp) and a crash-loop pause are
    writes the policy must let through, or the opt-in fleet actions fail in a real cluster."""
    asked = workload(kind, {"lumigo.io/inject": "python"})
    injected = merge_patch(asked, propagation.plan(asked, kind).patch)  # type: ignore[union-attr]
    restart = rollout.restart_patch(kind, "2026-11-29T21:00:00Z", "missed-pods")
    assert workloads_denials(rendered, kind, injected, restart) == []
    pause = rollout.pause_patch(injected, kind, "crash-loop after injection")
    assert workloads_denials(rendered, kind, injected, pause) == []
    # the stamp is the one foreign template annotation allowed
    other = _template_patch(kind, {"metadata": {"annotations": {"kubectl.kubernetes.io/x": "1"}}})
    assert workloads_denials(rendered, kind, injected, other)


def _template_patch(kind: str, template: dict[str, Any]) -> dict[str, Any]:
    if kind == "CronJob":
        return {"spec": {"jobTemplate": {"spec": {"template": template}}}}
    return {"spec": {"template": template}}


FORBIDDEN = {
    "image": lambda kind: _template_patch(
        kind, {"spec": {"containers": [{"name": "web", "image": "evil/miner:1"}]}}
    ),
    "service-account": lambda kind: _template_patch(
        kind, {"spec": {"serviceAccountName": "cluster-admin"}}
    ),
    "template-label": lambda kind: _template_patch(kind, {"metadata": {"labels": {"x": "1"}}}),
    "template-annotation": lambda kind: _template_patch(
        kind, {"metadata": {"annotations": {"team": "evil"}}}
    ),
    "template-annotation-removed": lambda kind: _template_patch(
        kind, {"metadata": {"annotations": {"team": None}}}
    ),
    "workload-label": lambda kind: {"metadata": {"labels": {"app": "other"}}},
    "workload-annotation": lambda kind: {"metadata": {"annotations": {"owner": "evil"}}},
    "spec-field": lambda kind: (
        {"spec": {"schedule": "* * * * *"}}
        if kind == "CronJob"
        else {"spec": {"minReadySeconds": 9}}
    ),
}


@pytest.mark.parametrize("kind", list(PLURAL))
@pytest.mark.parametrize("change", list(FORBIDDEN))
def test_workload_patches_beyond_lumigo_annotations_are_denied(
    rendered: list[dict[str, Any]], kind: str, change: str
) -> None:
    denials = workloads_denials(rendered, kind, workload(kind), FORBIDDEN[change](kind))
    assert denials, f"{change} on a {kind} was allowed"
    assert len(denials) == 1, denials  # one rule says why; no evaluation error behind it


def test_cronjob_job_template_outside_the_pod_template_is_denied(
    rendered: list[dict[str, Any]],
) -> None:
    for patch in (
        {"spec": {"jobTemplate": {"spec": {"backoffLimit": 100}}}},
        {"spec": {"jobTemplate": {"metadata": {"labels": {"job": "x"}}}}},
    ):
        assert workloads_denials(rendered, "CronJob", workload("CronJob"), patch)


@pytest.mark.parametrize("kind", list(PLURAL))
def test_patches_of_lumigo_annotations_only_pass(rendered: list[dict[str, Any]], kind: str) -> None:
    patch = _template_patch(kind, {"metadata": {"annotations": {"lumigo.io/inject": "false"}}})
    patch["metadata"] = {"annotations": {"lumigo.io/anything": "1"}}
    assert workloads_denials(rendered, kind, workload(kind), patch) == []


def test_the_injector_never_creates_or_deletes_workloads(rendered: list[dict[str, Any]]) -> None:
    user = injector_user(rendered)
    workloads = policy(rendered, "workloads")
    create = review(user, "CREATE", "apps", "deployments", "shop", workload("Deployment"))
    assert workloads.denials(create)
    delete = review(user, "DELETE", "batch", "cronjobs", "shop", None, workload("CronJob"))
    assert workloads.denials(delete)


# ------------------------------------------------------------------ webhook-only mode


def _granted(objs: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    rules = find(objs, "ClusterRole")["rules"]
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_webhook_only_mode_has_no_workload_rights(
    helm: Helm, rendered: list[dict[str, Any]]
) -> None:
    objs = helm.template(
        {"lumigo": {"token": "t0ken"}, "propagation": {"enabled": False}},
        release=RELEASE,
        namespace=NAMESPACE,
    )
    workload_resources = {"deployments", "statefulsets", "daemonsets", "cronjobs"}
    assert not {g for g in _granted(objs) if g[1] in workload_resources}
    assert {g for g in _granted(rendered) if g[1] in workload_resources}, "default propagates"
    env = {
        e["name"]: e.get("value")
        for e in find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["LUMIGO_INJECTOR_PROPAGATION"] == "false"
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(find(objs, "ClusterRole"), version, strict=True)
