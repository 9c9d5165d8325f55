"""How each `<!-- doc-test: run NAME -->` block runs, and what it must print or do.

A block runs as written (bash, `set -euo pipefail`) in a fresh directory that looks like a
checkout (every top-level entry of the repository linked in), with the environment stripped
of Python, Lumigo and OTel settings and `UV_PROJECT` pointing at the repository, so `uv run`
works as it does from the checkout. Placeholders such as `<token>` are the only text
replaced, each by a test value; an optional flag written `[--flag]` is used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.docs.doc_blocks import ROOT, DocBlock
from tests.helpers.ecs import FIXTURES, container, env, load, secrets
from tests.helpers.layer_apps import plain_env
from tests.helpers.moto_server import MotoServer, shared_server
from tests.helpers.need import executable, pyenv_python

TOKEN = "t_docs0123456789abcdef"
#: what a reader types for each placeholder the docs use
PLACEHOLDERS = {"<token>": TOKEN}
_PLACEHOLDER = re.compile(r"<[a-zA-Z][^<>|]*>")
_OPTIONAL_FLAG = re.compile(r"\[(--[\w-]+)\]")

#: an app that needs nothing but the OpenTelemetry API the distro brings
APP = """\
from opentelemetry import trace

with trace.get_tracer("docs-app").start_as_current_span("docs-app-work"):
    print("docs app done")
"""


class Workspace:
    """A directory that looks like the checkout, and the environment blocks run with."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        for entry in ROOT.iterdir():
            if not entry.name.startswith("."):
                (where / entry.name).symlink_to(entry)
        self.env = plain_env(UV_PROJECT=str(ROOT))

    def prepend_path(self, directory: Path) -> None:
        self.env["PATH"] = f"{directory}{os.pathsep}{self.env['PATH']}"

    def write(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text)

    def run(
        self, block: DocBlock, values: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the block as written (placeholders filled in); fail the test if it fails."""
        script = _OPTIONAL_FLAG.sub(r"\1", block.text)
        for placeholder, value in {**PLACEHOLDERS, **(values or {})}.items():
            script = script.replace(placeholder, value)
        left = _PLACEHOLDER.findall(script)
        assert not left, f"{block.where}: no test value for placeholders {left}"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (
            f"{block.where} failed ({result.returncode}):\n{_tail(result.stdout)}\n"
            f"{_tail(result.stderr)}"
        )
        return result


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


Scenario = Callable[[DocBlock, Workspace, pytest.FixtureRequest], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(function: Scenario) -> Scenario:
        SCENARIOS[name] = function
        return function

    return register


def _exported_work(receiver: OtlpReceiver, service: str) -> ReceivedSpan:
    """The app's span, as the receiver got it, with the token the block set."""
    [span] = receiver.wait_for_spans(where=lambda s: s.name == "docs-app-work")
    assert span.service == service
    span_posts = [r for r in receiver.requests() if r.span_count]
    assert {r.headers.get("authorization") for r in span_posts} == {f"LumigoToken {TOKEN}"}
    return span


@scenario("manual-activation")
def manual_activation(block: DocBlock, ws: Workspace, request: pytest.FixtureRequest) -> None:
    """README: `pip install ./distro` in a fresh venv (stock pip), env only, spans arrive."""
    python3 = executable("python3")
    subprocess.run([python3, "-m", "venv", str(ws.dir / "venv")], check=True, timeout=300)
    ws.prepend_path(ws.dir / "venv" / "bin")
    ws.write("app.py", APP)
    receiver: OtlpReceiver = request.getfixturevalue("otlp_receiver")
    ws.env.update(LUMIGO_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="50")
    result = ws.run(block)
    assert result.stdout.splitlines()[-1] == "docs app done"
    _exported_work(receiver, "web")


@scenario("layer-only")
def layer_only(block: DocBlock, ws: Workspace, request: pytest.FixtureRequest) -> None:
    """README: build the layer, put its bootstrap on PYTHONPATH, nothing else: spans arrive,
    and LUMIGO_DEBUG's line says the distro started."""
    minor = re.search(r"--python (3\.\d+)", block.text)
    assert minor, f"{block.where}: the block names no --python"
    ws.prepend_path(Path(pyenv_python(minor.group(1))).parent)
    ws.write("app.py", APP)
    receiver: OtlpReceiver = request.getfixturevalue("otlp_receiver")
    ws.env.update(LUMIGO_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="50", LUMIGO_DEBUG="true")
    result = ws.run(block)
    assert result.stdout.splitlines()[-1] == "docs app done"
    debug = [line for line in result.stderr.splitlines() if line.startswith("lumigo-otel layer:")]
    assert len(debug) == 1 and debug[0].startswith(f"lumigo-otel layer: activated py{minor[1]}-")
    assert debug[0].endswith(", started lumigo_opentelemetry"), debug
    _exported_work(receiver, "web")


@scenario("ecs-moto")
def ecs_moto(block: DocBlock, ws: Workspace, request: pytest.FixtureRequest) -> None:
    """README: rewrite a task definition file, then dry-run the live form against moto:
    the file gets the layer and the token reference, the dry run prints a diff and
    registers nothing."""
    server: MotoServer = shared_server()
    ws.env.update(server.env())
    arn = server.client("secretsmanager").create_secret(
        Name=f"lumigo/docs-{uuid.uuid4().hex[:8]}", SecretString=TOKEN
    )["ARN"]
    ecs = server.client("ecs")
    ecs.create_cluster(clusterName="prod")
    if not ecs.describe_services(cluster="prod", services=["web"])["services"]:
        running = ecs.register_task_definition(**load("fargate-awsvpc.json"))["taskDefinition"]
        ecs.create_service(
            cluster="prod", serviceName="web", taskDefinition=running["taskDefinitionArn"]
        )
    before = ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    ws.write("taskdef.json", (FIXTURES / "fargate-awsvpc.json").read_text())
    result = ws.run(block, {"<Secrets Manager or SSM ARN>": arn, "<ARN>": arn})
    injected = json.loads((ws.dir / "injected.json").read_text())
    app = container(injected, "api")
    assert secrets(app)["LUMIGO_TRACER_TOKEN"] == arn
    assert env(app)["PYTHONPATH"].endswith("/bootstrap")
    assert result.stdout.startswith("--- ") and "\n+" in result.stdout, result.stdout
    assert arn not in result.stderr, result.stderr  # the token secret was found
    after = ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    assert after["taskDefinition"] == before["taskDefinition"]


def known(name: str) -> bool:
    return name in SCENARIOS


def run_scenario(block: DocBlock, ws: Workspace, request: pytest.FixtureRequest) -> None:
    SCENARIOS[block.argument](block, ws, request)
