"""`lumigo-injector ecs -f`: the file path, as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumigo_injector.ecs.taskdef import normalise
from tests.helpers.ecs import (
    FIXTURES,
    TOKEN_ARN,
    assert_valid_register_request,
    container,
    env,
    load,
    run_cli,
    secrets,
)


def test_file_in_injected_task_definition_out() -> None:
    proc = run_cli(
        "-f",
        str(FIXTURES / "fargate-awsvpc.json"),
        "--token-secret-arn",
        TOKEN_ARN,
        "--endpoint",
        "https://otlp.example.com",
    )
    assert proc.returncode == 0, proc.stderr
    td = json.loads(proc.stdout)
    assert_valid_register_request(td)
    api = container(td, "api")
    assert env(api)["LUMIGO_ENDPOINT"] == "https://otlp.example.com"
    assert secrets(api)["LUMIGO_TRACER_TOKEN"] == TOKEN_ARN
    assert container(td, "lumigo-otel-init")["essential"] is False
    assert "warning: the init image comes from public.ecr.aws" in proc.stderr


def test_describe_output_on_stdin_and_uninject_round_trip(tmp_path: Path) -> None:
    text = (FIXTURES / "describe-output.json").read_text()
    injected = run_cli("-f", "-", "--containers", "notifications", stdin=text)
    assert injected.returncode == 0, injected.stderr
    out = json.loads(injected.stdout)
    assert "taskDefinitionArn" not in out and "revision" not in out
    assert out["tags"] == [{"key": "service", "value": "notifications"}]
    assert_valid_register_request(out)
    path = tmp_path / "injected.json"
    path.write_text(injected.stdout)
    restored = run_cli("-f", str(path), "--uninject")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout) == normalise(load("describe-output.json"))


def test_dry_run_prints_a_unified_diff() -> None:
    proc = run_cli(
        "-f",
        str(FIXTURES / "ec2-bridge.json"),
        "--containers",
        "reports",
        "--token-secret-arn",
        TOKEN_ARN,
        "--dry-run",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("--- ") and lines[1].startswith("+++ ")
    assert '+      "name": "lumigo-otel-init",' in lines
    assert not any(line.startswith("-") and '"cache"' in line for line in lines)
    assert "no executionRoleArn" in proc.stderr


def _bad_files(tmp_path: Path) -> dict[str, tuple[str, str]]:
    unknown = load("fargate-awsvpc.json")
    unknown["containerDefinitions"][0]["envVars"] = [{"name": "A", "value": "1"}]
    return {
        "invalid JSON": ('{"family": "x",', "not valid JSON"),
        "no containers": ('{"family": "x", "containerDefinitions": []}', "has no containers"),
        "unknown field": (json.dumps(unknown), "Unknown parameter in containerDefinitions[0]"),
    }


@pytest.mark.parametrize("case", ["invalid JSON", "no containers", "unknown field"])
def test_bad_files_exit_2_with_a_clear_error_and_empty_stdout(tmp_path: Path, case: str) -> None:
    text, message = _bad_files(tmp_path)[case]
    path = tmp_path / "td.json"
    path.write_text(text)
    proc = run_cli("-f", str(path), "--token-secret-arn", TOKEN_ARN)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "lumigo-injector ecs: error:" in proc.stderr and message in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-secret-arn", "t_plain_token"], "--token-secret-arn must be"),
        (["--containers", "nope"], "no container named 'nope'"),
        (["--service", "web"], "either -f/--file or --service"),
        (["-f", "/nonexistent/td.json"], "No such file"),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str) -> None:
    file_args = [] if "-f" in args else ["-f", str(FIXTURES / "fargate-awsvpc.json")]
    proc = run_cli(*file_args, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert message in proc.stderr
