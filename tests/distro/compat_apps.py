"""Run the compatibility fixture app (tests/fixtures/apps/distro/compat_web.py) once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import last_json, run_app, traced_env

GET_HEALTH = ["GET", "/health", None, None]
GET_HELLO = ["GET", "/hello", None, None]


def run_web(
    receiver: OtlpReceiver | None,
    framework: str = "flask",
    calls: list[list[Any]] | None = None,
    **env: str,
) -> dict[str, Any]:
    """Run the app with `calls`, exporting to `receiver`; returns its JSON report
    (plus `stderr`). Fails the test when the app fails."""
    result = run_app(
        "compat_web.py",
        traced_env(receiver, **env),
        {"framework": framework, "calls": calls or [], "import_api": True},
    )
    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    report["stderr"] = result.stderr
    return report


def dumped_spans(path: Path) -> list[dict[str, Any]]:
    """The spans of a LUMIGO_DEBUG_SPANDUMP file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
