"""The operator's pure decisions: template propagation, the token Secret plan, the Event
target, and the settings of `serve`."""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

import pytest

from lumigo_injector.commands.serve import add_arguments, from_args
from lumigo_injector.k8s.propagation import injects_in_namespace, plan
from lumigo_injector.serve import operator
from lumigo_injector.serve.events import involved_object
from lumigo_injector.serve.namespaces import NamespaceDirectory, opt_in_view
from lumigo_injector.serve.secrets_mirror import encode, plan_secret
from lumigo_injector.spec import names as c
from lumigo_injector.spec.names import ANNOTATION_TEMPLATE_PREVIOUS


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what the API server does with kopf's patch)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def deployment(
    annotations: dict[str, str] | None = None, template: dict[str, str] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
    }
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if template is not None:
        obj["spec"]["template"]["metadata"]["annotations"] = template
    return obj


def converge(obj: dict[str, Any], kind: str = "Deployment") -> dict[str, Any]:
    for _ in range(3):
        change = plan(obj, kind)
        if change is None:
            return obj
        obj = merge(obj, change.patch)
    raise AssertionError("plan() does not converge")


def test_annotation_propagates_and_removal_restores_the_original() -> None:
    original = deployment()
    annotated = merge(original, {"metadata": {"annotations": {c.ANNOTATION_INJECT: " Python "}}})

    injected = converge(annotated)
    assert injected["spec"]["template"]["metadata"]["annotations"] == {
        c.ANNOTATION_INJECT: "python"
    }
    assert plan(injected, "Deployment") is None  # idempotent

    removed = merge(injected, {"metadata": {"annotations": {c.ANNOTATION_INJECT: None}}})
    assert converge(removed) == original


def test_user_template_value_comes_back_and_user_owned_python_stays() -> None:
    opted_out = converge(
        deployment({c.ANNOTATION_INJECT: "python"}, {c.ANNOTATION_INJECT: "false"})
    )
    assert opted_out["metadata"]["annotations"][ANNOTATION_TEMPLATE_PREVIOUS] == "false"
    back = converge(merge(opted_out, {"metadata": {"annotations": {c.ANNOTATION_INJECT: None}}}))
    assert back == deployment(template={c.ANNOTATION_INJECT: "false"})

    users_own = deployment(None, {c.ANNOTATION_INJECT: "python"})
    assert plan(users_own, "Deployment") is None


def test_workload_opt_out_and_unknown_values() -> None:
    assert converge(deployment({c.ANNOTATION_INJECT: "false"}))["spec"]["template"]["metadata"][
        "annotations"
    ] == {c.ANNOTATION_INJECT: "false"}
    assert plan(deployment({c.ANNOTATION_INJECT: "java"}), "Deployment") is None


def test_enable_logs_propagates_with_inject_and_each_comes_back_on_its_own() -> None:
    logs, inject_ = c.ANNOTATION_ENABLE_LOGS, c.ANNOTATION_INJECT
    original = deployment({"team": "shop"}, {logs: "false"})
    annotated = merge(original, {"metadata": {"annotations": {inject_: "python", logs: " TRUE "}}})

    both = converge(annotated)
    assert both["spec"]["template"]["metadata"]["annotations"] == {inject_: "python", logs: "true"}
    assert plan(both, "Deployment") is None

    # Taking logs away gives the template the user's "false" back; injection stays.
    no_logs = converge(merge(both, {"metadata": {"annotations": {logs: None}}}))
    assert no_logs["spec"]["template"]["metadata"]["annotations"] == {
        inject_: "python",
        logs: "false",
    }
    assert c.ANNOTATION_ENABLE_LOGS_TEMPLATE_PREVIOUS not in no_logs["metadata"]["annotations"]
    back = converge(merge(no_logs, {"metadata": {"annotations": {inject_: None}}}))
    assert back == original


def test_enable_logs_alone_propagates_and_leaves_no_trace_when_removed() -> None:
    original = deployment()
    annotated = merge(original, {"metadata": {"annotations": {c.ANNOTATION_ENABLE_LOGS: "true"}}})
    on = converge(annotated)
    assert on["spec"]["template"]["metadata"]["annotations"] == {c.ANNOTATION_ENABLE_LOGS: "true"}
    off = merge(on, {"metadata": {"annotations": {c.ANNOTATION_ENABLE_LOGS: None}}})
    assert converge(off) == original
    assert plan(deployment({c.ANNOTATION_ENABLE_LOGS: "yes please"}), "Deployment") is None


def test_cronjob_template_is_inside_the_job_template() -> None:
    cronjob = {
        "metadata": {"name": "nightly", "annotations": {c.ANNOTATION_INJECT: "python"}},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
    }
    done = converge(copy.deepcopy(cronjob), "CronJob")
    pod_meta = done["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    assert pod_meta["annotations"] == {c.ANNOTATION_INJECT: "python"}
    with pytest.raises(ValueError, match="unsupported workload kind"):
        plan(cronjob, "Job")


def test_the_operator_looks_only_at_workloads_with_something_to_propagate_or_take_back() -> None:
    """kopf's `when=` filter: a workload it rejects is never propagated to nor restored."""
    looks_at = operator._concerns_us("Deployment")

    def sees(annotations: dict[str, str], template: dict[str, str] | None = None) -> bool:
        return looks_at(body=deployment(annotations, template))

    assert sees({c.ANNOTATION_INJECT: "false"})  # an opt-out is copied onto the template
    assert sees({c.ANNOTATION_ENABLE_LOGS: "true"})
    assert sees({ANNOTATION_TEMPLATE_PREVIOUS: ""})  # annotation removed: restore the template
    assert sees({c.ANNOTATION_ENABLE_LOGS_TEMPLATE_PREVIOUS: "false"})
    assert sees({c.ANNOTATION_INJECT_PAUSED: "1.2.3"})  # a rollback takes the template back
    assert sees({}, {c.ANNOTATION_INJECT: "python"})  # the template alone asks: Secret needed
    assert not sees({"team": "shop"}, {"team": "shop"})
    assert not sees({}, {c.ANNOTATION_INJECT: "false"})


def test_an_unknown_workload_value_is_warned_about_once_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = operator._workload_handler("Deployment", ctx=None)  # type: ignore[arg-type]
    unknown = deployment({c.ANNOTATION_INJECT: " Java "})
    known = deployment({c.ANNOTATION_INJECT: " Python "})
    patches: list[dict[str, Any]] = []

    async def scenario() -> None:
        for body in (unknown, unknown, known):
            patches.append({})
            await handle(type="MODIFIED", body=body, patch=patches[-1], name="web", namespace=None)

    caplog.set_level(logging.WARNING, logger="lumigo_injector.operator")
    asyncio.run(scenario())
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "unknown lumigo.io/inject value 'java'" in warning
    assert patches[:2] == [{}, {}]
    template = patches[2]["spec"]["template"]["metadata"]["annotations"]
    assert template == {c.ANNOTATION_INJECT: "python"}


def test_a_template_keeps_its_other_annotations_when_ours_comes_and_goes() -> None:
    original = deployment({"team": "shop"}, {"prometheus.io/scrape": "true"})
    annotated = merge(original, {"metadata": {"annotations": {c.ANNOTATION_INJECT: "python"}}})
    injected = converge(annotated)
    assert injected["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        c.ANNOTATION_INJECT: "python",
    }
    removed = merge(injected, {"metadata": {"annotations": {c.ANNOTATION_INJECT: None}}})
    assert converge(removed) == original


def test_a_workload_whose_template_alone_asks_needs_the_secret_in_its_namespace() -> None:
    asks_on_template = deployment(None, {c.ANNOTATION_INJECT: "python"})
    asks_on_workload = deployment({c.ANNOTATION_INJECT: "python"})
    assert injects_in_namespace(asks_on_template, "Deployment")
    assert injects_in_namespace(asks_on_workload, "Deployment")
    assert not injects_in_namespace(deployment({c.ANNOTATION_INJECT: "false"}), "Deployment")
    assert not injects_in_namespace(deployment(None, {c.ANNOTATION_INJECT: "no"}), "Deployment")


def test_a_paused_workload_keeps_its_template_uninjected_and_its_logs_setting() -> None:
    logs, inject_ = c.ANNOTATION_ENABLE_LOGS, c.ANNOTATION_INJECT
    asking = deployment({inject_: "python", logs: "true"})
    paused = merge(asking, {"metadata": {"annotations": {c.ANNOTATION_INJECT_PAUSED: "crash"}}})
    held = converge(paused)
    assert held["spec"]["template"]["metadata"]["annotations"] == {inject_: "false", logs: "true"}
    # the pause lifted: injection is tried again
    resumed = merge(held, {"metadata": {"annotations": {c.ANNOTATION_INJECT_PAUSED: None}}})
    template = converge(resumed)["spec"]["template"]["metadata"]["annotations"]
    assert template == {inject_: "python", logs: "true"}


def test_secret_plan() -> None:
    args = {"namespace": "shop", "name": "lumigo-credentials", "key": "token", "token": "t1"}
    created = plan_secret(None, **args)
    assert created.action == "create" and created.body
    assert created.body["data"] == {"token": encode("t1")}
    assert created.body["metadata"]["labels"] == {c.LABEL_MANAGED_BY: c.MANAGED_BY_VALUE}

    assert plan_secret(created.body, **args).action == "keep"
    rotated = plan_secret(created.body, **{**args, "token": "t2"})
    assert rotated.action == "update" and rotated.body == {"data": {"token": encode("t2")}}
    users = {"metadata": {"name": "lumigo-credentials"}, "data": {"token": encode("mine")}}
    assert plan_secret(users, **args).action == "foreign"


def test_event_target_for_pods_with_and_without_names() -> None:
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-1",
        "uid": "u",
        "controller": True,
    }
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}
    unnamed = {"metadata": {"generateName": "web-1-", "ownerReferences": [other, owner]}}

    assert involved_object({"metadata": {"name": "solo"}}, "ns") == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "solo",
        "namespace": "ns",
    }
    assert involved_object(unnamed, "ns") == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-1",
        "namespace": "ns",
        "uid": "u",
    }
    assert involved_object({"metadata": {"generateName": "x-"}}, "ns")["kind"] == "Namespace"
    # references without a kind or a name are passed over, the controller among them too
    nameless = {"kind": "ReplicaSet", "controller": True}
    refs = [nameless, {"name": "n", "controller": True}, "junk", other]
    found = involved_object({"metadata": {"ownerReferences": refs}}, "ns")
    assert found == {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": "ns"}
    refs = [{**owner, "name": ""}, other, owner]
    assert involved_object({"metadata": {"ownerReferences": refs}}, "ns")["name"] == "web-1"


def parse(argv: list[str], env: dict[str, str]) -> Any:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(argv), env)


def test_settings_flags_win_over_environment() -> None:
    env = {
        "LUMIGO_INJECTOR_PORT": "8443",
        "LUMIGO_INJECTOR_TLS_CERT_FILE": "/certs/a.crt",
        "LUMIGO_TRACER_TOKEN": " tk-123 ",
        "POD_NAMESPACE": "lumigo",
        "LUMIGO_ENDPOINT": "",
    }
    settings = parse(["--port", "9000", "--log-format", "TEXT"], env)

    assert settings.listen.port == 9000 and settings.logs.format == "text"
    assert settings.tls.cert_file == Path("/certs/a.crt")
    assert settings.cluster.token == "tk-123" and "tk-123" not in repr(settings)
    assert settings.injection.endpoint is None
    assert settings.cluster.never_injected("lumigo")
    assert settings.cluster.never_injected("kube-system")
    assert not settings.cluster.never_injected("shop")
    assert settings.injection.secret_name == c.DEFAULT_SECRET_NAME


def test_bad_settings_name_the_culprit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="LUMIGO_INJECTOR_HEALTH_PORT: port out of range"):
        parse([], {"LUMIGO_INJECTOR_HEALTH_PORT": "70000"})
    with pytest.raises(SystemExit):
        parse(["--log-format", "xml"], {})
    assert "--log-format" in capsys.readouterr().err


def test_namespace_directory_prefers_the_watch_and_falls_back_to_one_read() -> None:
    reads: list[str] = []

    def fetch(name: str) -> dict[str, str] | None:
        reads.append(name)
        if name == "broken":
            raise RuntimeError("API down")
        return None if name == "missing" else {c.ANNOTATION_INJECT: "python"}

    async def scenario() -> None:
        directory = NamespaceDirectory(fetch)
        directory.update("watched", {c.ANNOTATION_INJECT: "false", "other": 1})  # type: ignore[dict-item]
        assert await directory.get("watched") == {c.ANNOTATION_INJECT: "false"}
        assert await directory.get("fresh") == {c.ANNOTATION_INJECT: "python"}
        assert await directory.get("fresh") == {c.ANNOTATION_INJECT: "python"}  # cached
        assert await directory.get("broken") == {} and await directory.get("broken") == {}
        assert await directory.get("missing") == {}
        directory.forget("watched")
        assert await directory.get("watched") == {c.ANNOTATION_INJECT: "python"}

    asyncio.run(scenario())
    assert reads == ["fresh", "broken", "missing", "watched"]  # failures are not retried at once


def test_namespace_label_counts_unless_an_annotation_says_otherwise() -> None:
    labelled = {"labels": {c.ANNOTATION_INJECT: "python"}}
    both = {
        "labels": {c.ANNOTATION_INJECT: "python"},
        "annotations": {c.ANNOTATION_INJECT: "false"},
    }

    assert opt_in_view(labelled) == {c.ANNOTATION_INJECT: "python"}
    assert opt_in_view(both) == {c.ANNOTATION_INJECT: "false"}
    assert opt_in_view({}) == {}
