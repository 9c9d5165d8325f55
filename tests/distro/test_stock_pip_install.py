"""Manual activation as the README gives it: `python3 -m venv v && v/bin/pip install ./distro`
with the pip that ships with the interpreter (23.2.1 on 3.11/3.12, 24.2 on 3.13) resolves
from PyPI, and a Flask app in that venv is traced by environment alone."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.app_venv import DISTRO
from tests.helpers.layer_apps import (
    TEST_TOKEN,
    AppVenv,
    exercise,
    plain_env,
    write_flask_app,
)
from tests.helpers.need import pyenv_python, tcp_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.mark.parametrize("minor", ["3.11", "3.13"])
def test_stock_pip_installs_the_distro_and_flask_is_traced(
    minor: str, tmp_path: Path, otlp_receiver: Any
) -> None:
    tcp_service("pypi.org", 443, "PyPI")
    python = pyenv_python(minor)
    venv = tmp_path / "v"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    pip_version = subprocess.run(
        [str(venv / "bin" / "pip"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert pip_version.split()[1] in ("23.2.1", "24.2"), pip_version  # the stock pip
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "--no-cache-dir",
         str(DISTRO), "flask"],
        env=plain_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    assert "ResolutionImpossible" not in install.stderr

    script = write_flask_app(tmp_path / "app")
    env = plain_env(
        AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
        LUMIGO_TRACER_TOKEN=TEST_TOKEN,
        LUMIGO_ENDPOINT=otlp_receiver.url,
        OTEL_SERVICE_NAME=f"stock-pip-{minor}",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    run = exercise(AppVenv(venv, minor), script, env, ("/hello/ada",))
    assert run.bodies == [{"hello": "ada", "python": minor}]
    assert run.facts["modules"]["lumigo_opentelemetry"].startswith(str(venv))
    spans = otlp_receiver.wait_for_spans(
        1, timeout=30, where=lambda s: s.service == f"stock-pip-{minor}" and s.kind == "SERVER"
    )
    assert spans[0].attributes.get("http.route") == "/hello/<name>"
