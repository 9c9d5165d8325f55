"""`lumigo-injector inject -f` as a real subprocess over the manifest corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lumigo_injector.k8s.manifests import load_documents
from tests.helpers.mutation import (
    FIXTURES,
    INVALID_FIXTURES,
    assert_valid,
    container,
    corpus_files,
    env_of,
    load_file,
    pod_template,
    workloads,
)

PROG = "lumigo-injector inject"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI in a fresh interpreter (what `uv run lumigo-injector` runs)."""
    return subprocess.run(
        [sys.executable, "-m", "lumigo_injector.cli", "inject", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


def ok(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = run(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result


def yaml_corpus() -> str:
    """Every YAML file of the corpus, as one multi-document stream."""
    return "\n---\n".join(p.read_text() for p in corpus_files() if p.suffix == ".yaml")


@pytest.fixture(scope="module")
def corpus_injected() -> tuple[str, str]:
    """(input, stdout) of one run over the whole corpus from stdin."""
    text = yaml_corpus()
    return text, ok("-f", "-", stdin=text).stdout


def is_injected(obj: dict[str, Any]) -> bool:
    return "lumigo.io/injected" in (pod_template(obj).get("metadata") or {}).get("annotations", {})


def test_corpus_from_stdin_injects_annotated_workloads_only(
    corpus_injected: tuple[str, str],
) -> None:
    text, out = corpus_injected
    before, _ = load_documents(text)
    after, _ = load_documents(out)
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert (old["kind"], old.get("metadata", {}).get("name")) == (
            new["kind"],
            new.get("metadata", {}).get("name"),
        )
    injected = {
        (w["kind"], (w.get("metadata") or {}).get("name") or w["metadata"].get("generateName"))
        for w in workloads(after)
        if is_injected(w)
    }
    assert injected == {
        ("Deployment", "shop"),
        ("Deployment", "billing"),
        ("Deployment", "reports"),
        ("Deployment", "search"),
        ("Deployment", "api"),
        ("StatefulSet", "ledger"),
        ("DaemonSet", "node-agent"),
        ("Job", "reindex"),
        ("CronJob", "nightly-report"),
        ("ReplicaSet", "web-7d4b9c"),
        ("Pod", "debug-shell"),
        ("Pod", "web-7d4b9c-"),
    }
    for workload in workloads(after):
        assert_valid(workload)
    non_workloads = [d for d in before if d["kind"] in {"ConfigMap", "Service", "Ingress"}]
    assert all(d in after for d in non_workloads)


def test_notes_and_warnings_go_to_stderr(corpus_injected: tuple[str, str]) -> None:
    text = yaml_corpus()
    result = ok("-f", "-", stdin=text)
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{PROG}: warning: Deployment/reports:") and "'renderer'" in line
        for line in lines
    ), result.stderr
    assert f"{PROG}: ServiceMonitor/shop: custom resource, passed through unchanged" in lines
    assert any("Deployment/plain" in line and "--all" in line for line in lines)
    quiet = ok("-f", "-", "--quiet", stdin=text)
    assert quiet.stdout == result.stdout
    assert all(": warning: " in line for line in quiet.stderr.splitlines())


def test_uninject_round_trip_gives_back_the_input(corpus_injected: tuple[str, str]) -> None:
    text, out = corpus_injected
    restored = ok("-f", "-", "--uninject", stdin=out).stdout
    # Compared as Kubernetes reads YAML (an unquoted date stays a string).
    assert load_documents(restored) == load_documents(text)


def test_injecting_injected_output_changes_nothing(
    corpus_injected: tuple[str, str], tmp_path: Path
) -> None:
    _, out = corpus_injected
    path = tmp_path / "injected.yaml"
    path.write_text(out)
    assert ok("-f", str(path)).stdout == out


def test_all_injects_unannotated_but_never_opted_out() -> None:
    plain = FIXTURES / "deployment-unannotated.yaml"
    opted_out = FIXTURES / "deployment-opt-out.yaml"
    assert not is_injected(yaml.safe_load(ok("-f", str(plain)).stdout))
    assert is_injected(yaml.safe_load(ok("-f", str(plain), "--all").stdout))
    out = yaml.safe_load(ok("-f", str(opted_out), "--all").stdout)
    assert out == load_file(opted_out)[0]


def test_settings_flags_reach_the_spec() -> None:
    result = ok(
        "-f",
        str(FIXTURES / "job.yaml"),
        "--init-image",
        "registry.local/lumigo-init:9.9",
        "--secret-name",
        "ops-lumigo",
        "--secret-key",
        "api-token",
        "--endpoint",
        "http://collector.observability:4318",
    )
    job = yaml.safe_load(result.stdout)
    (init,) = pod_template(job)["spec"]["initContainers"]
    assert init["image"] == "registry.local/lumigo-init:9.9"
    env = {e["name"]: e for e in env_of(job, "reindex")}
    assert env["LUMIGO_TRACER_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "ops-lumigo",
        "key": "api-token",
        "optional": True,
    }
    assert env["LUMIGO_ENDPOINT"]["value"] == "http://collector.observability:4318"


def test_json_in_json_out() -> None:
    out = ok("-f", str(FIXTURES / "deployment.json")).stdout
    deployment = json.loads(out)
    assert is_injected(deployment)
    python_path = next(e for e in env_of(deployment, "catalog") if e["name"] == "PYTHONPATH")
    assert python_path["value"] == "/lumigo-otel/bootstrap:/opt/catalog"
    back = json.loads(ok("-f", "-", "--uninject", stdin=out).stdout)
    assert back == json.loads((FIXTURES / "deployment.json").read_text())


def test_yaml_strings_that_look_like_other_types_survive() -> None:
    out = yaml.safe_load(ok("-f", str(FIXTURES / "cronjob.yaml")).stdout)
    report_date = next(e for e in env_of(out, "report") if e["name"] == "REPORT_DATE")
    assert report_date["value"] == "2024-01-31"
    assert container(out, "report")["args"] == ["python", "-m", "reports.nightly"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-f", str(INVALID_FIXTURES / "broken.yaml")], None, "started at line 5, column 17"),
        (["-f", str(INVALID_FIXTURES / "broken.json")], None, "invalid JSON at line 1"),
        (["-f", str(INVALID_FIXTURES / "unknown-kind.yaml")], None, "unknown kind 'Deploymnet'"),
        (["-f", str(INVALID_FIXTURES / "no-kind.yaml")], None, "document 2: object has no kind"),
        (["-f", str(INVALID_FIXTURES / "not-an-object.yaml")], None, "not a Kubernetes object"),
        (["-f", str(INVALID_FIXTURES / "missing.yaml")], None, "missing.yaml: no such file"),
        (["-f", str(INVALID_FIXTURES)], None, "is a directory"),
        (["-f", "-"], "kind: Pod\napiVersion: v1\n---\n: : :\n", "invalid YAML"),
    ],
    ids=["yaml", "json", "unknown-kind", "no-kind", "not-object", "missing", "directory", "stdin"],
)
def test_bad_input_exits_2_with_message_and_empty_stdout(
    args: list[str], stdin: str | None, message: str
) -> None:
    result = run(*args, stdin=stdin)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{PROG}: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_argument_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert result.stdout == ""
    assert "-f/--filename" in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "lumigo-injector"
    result = subprocess.run(
        [str(script), "inject", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert "--uninject" in result.stdout and "--all" in result.stdout


def test_enable_logs_annotation_and_container_names_through_the_cli() -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "annotations": {"lumigo.io/inject": "python", "lumigo.io/enable-logs": "true"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "api", "image": "python:3.12"},
                        {
                            "name": "worker",
                            "image": "python:3.12",
                            "env": [{"name": "LUMIGO_ENABLE_LOGS", "value": "false"}],
                        },
                    ]
                },
            },
        },
    }
    text = yaml.safe_dump(manifest, sort_keys=False)
    injected = ok("-f", "-", stdin=text).stdout
    out = yaml.safe_load(injected)
    api = {e["name"]: e.get("value") for e in env_of(out, "api")}
    worker = {e["name"]: e.get("value") for e in env_of(out, "worker")}
    assert api["LUMIGO_ENABLE_LOGS"] == "true" and api["LUMIGO_CONTAINER_NAME"] == "api"
    assert worker["LUMIGO_ENABLE_LOGS"] == "false"  # the container's own value stays
    assert worker["LUMIGO_CONTAINER_NAME"] == "worker"
    assert yaml.safe_load(ok("-f", "-", stdin=injected).stdout) == out  # idempotent
    assert yaml.safe_load(ok("-f", "-", "--uninject", stdin=injected).stdout) == manifest


def test_delivery_flag_switches_injected_output_and_uninjects_exactly() -> None:
    """`--delivery image-volume` over output injected by the init container: a clean switch."""
    text = yaml_corpus()
    by_copy = ok("-f", "-", stdin=text).stdout
    by_volume = ok("-f", "-", "--delivery", "image-volume", stdin=text).stdout
    assert ok("-f", "-", "--delivery", "image-volume", stdin=by_copy).stdout == by_volume
    assert ok("-f", "-", stdin=by_volume).stdout == by_copy
    for workload in workloads(load_documents(by_volume)[0]):
        if not is_injected(workload):
            continue
        spec = pod_template(workload)["spec"]
        [volume] = [v for v in spec["volumes"] if v["name"] == "lumigo-otel"]
        assert volume["image"]["pullPolicy"] == "IfNotPresent"
        assert "lumigo-otel-init" not in [i["name"] for i in spec.get("initContainers") or []]
        assert_valid(workload)  # against the 1.35 and 1.37 schemas
    restored = ok("-f", "-", "--uninject", stdin=by_volume).stdout
    assert load_documents(restored) == load_documents(text)
    bad = run("-f", "-", "--delivery", "copy", stdin=text)
    assert bad.returncode == 2 and "invalid choice: 'copy'" in bad.stderr
