"""Run the data apps (tests/fixtures/apps/data/) once in an app venv, injected by env only."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.app_venv import REPO, app_env, app_venv
from tests.helpers.versions import rows

APPS = REPO / "tests" / "fixtures" / "apps" / "data"


@dataclass(frozen=True)
class AppRun:
    output: dict[str, Any]
    stderr: str


def run_data_app(
    venv: Path,
    script: str,
    receiver_url: str | None,
    service_name: str,
    env: Mapping[str, str] | None = None,
    argv: list[str] | None = None,
) -> AppRun:
    """Run `script` (or `python <argv>`) to completion; its last stdout line is JSON."""
    args = [str(venv / "bin" / "python"), *(argv or [script])]
    proc = subprocess.run(
        args,
        cwd=APPS,
        env=app_env(venv, receiver_url, service_name, env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return AppRun(output=json.loads(lines[-1]), stderr=proc.stderr)


def installed_version(venv: Path, distribution: str) -> str:
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({distribution!r}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip()


def venv_params(lib: str) -> list[Any]:
    """pytest params (id = row label) of the version rows to test for `lib`."""
    return [pytest.param(reqs, id=label) for label, reqs in rows(lib)]


def venv_for(requirements: list[str], python: str | None = None) -> Path:
    """The app venv with `requirements` and the distro (skips/fails when it can't be built)."""
    return app_venv(list(requirements), python=python)
