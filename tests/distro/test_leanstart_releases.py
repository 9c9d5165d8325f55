"""The lean span start starts what the SDK's `start_span` starts on every release it reads.

`test_leanstart.py` compares the two on the SDK installed here (the newest supported);
the releases before it set the random-trace-id flag in other ways (`_leanstart.py`), so
the same comparison runs again in a venv per older release. A release the lean start
reads wrongly, or no longer recognises, fails here rather than in a user's traces.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.app_venv import REPO, app_venv

RELEASES = ["1.41.0", "1.42.0", "1.43.0", "1.44.0"]
HERE = Path(__file__).resolve().parent


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_lean_start_equals_the_sdks_start_span_on_older_releases(release: str) -> None:
    venv = app_venv(
        [
            f"opentelemetry-api=={release}",
            f"opentelemetry-sdk=={release}",
            f"opentelemetry-exporter-otlp-proto-http=={release}",
            "pytest",
            str(REPO / "devtools"),
        ]
    )
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [python, "-c", "import opentelemetry.sdk.version as v; print(v.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert installed == release
    # the module's own conftest-free tests (they assert the lean start is in use)
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
         str(HERE / "test_leanstart.py")],
        cwd=str(REPO),
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
