"""scripts/mutation.py: it finds the bugs a test suite misses and never leaves a source mutated."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "mutation.py"

CALC = '''\
"""A tiny module to mutate."""


def is_positive(x: int) -> bool:
    return x > 0


def clamp(x: int) -> int:
    if x > 10:
        return 10
    return x
'''

# Checks is_positive fully, clamp only below its bound: the bound's mutants must survive.
TESTS = """\
from calcpkg.calc import clamp, is_positive


def test_is_positive() -> None:
    assert is_positive(1)
    assert not is_positive(0)
    assert not is_positive(-1)


def test_clamp_passes_small_numbers() -> None:
    assert clamp(3) == 3
"""

SLOW_TESTS = """\
import os
import time
from pathlib import Path

from calcpkg.calc import is_positive


def test_waits() -> None:
    if os.environ.get("PYTHONPATH", "").find("mutant-") >= 0:
        Path(os.environ["MUTANT_STARTED"]).write_text("yes")
        time.sleep(120)
    assert is_positive(1)
"""


def _project(tmp_path: Path, tests: str) -> tuple[Path, Path]:
    pkg = tmp_path / "src" / "calcpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "calc.py").write_text(CALC)
    test_file = tmp_path / "test_calc.py"
    test_file.write_text(textwrap.dedent(tests))
    return pkg / "calc.py", test_file


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tmp_path / "src"), MUTANT_STARTED=str(tmp_path / "s"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_counts_killed_and_survived_mutants(tmp_path: Path) -> None:
    source, tests = _project(tmp_path, TESTS)
    before = _digest(source)
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--target",
            str(source),
            "--tests",
            str(tests),
            "--json",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (module,) = json.loads(out.read_text())["modules"]
    assert module["error"] == ""
    assert module["run"] == module["mutants"] > 0
    assert module["killed"] + module["survived"] + module["timeout"] == module["run"]
    survivors = {(s["scope"], s["before"], s["after"]) for s in module["survivors"]}
    # the untested bound survives; every mutant of the fully tested comparison dies
    assert ("clamp", "x > 10", "x >= 10") in survivors
    assert not any(scope == "is_positive" for scope, _, _ in survivors)
    assert "SURVIVED adhoc" in proc.stdout
    assert _digest(source) == before
    assert list((tmp_path / "work").iterdir()) == []


def test_fail_on_survivors_sets_the_exit_status(tmp_path: Path) -> None:
    source, tests = _project(tmp_path, TESTS)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--target",
            str(source),
            "--tests",
            str(tests),
            "--sample",
            "40",
            "--fail-on-survivors",
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_tests_failing_without_a_mutant_are_a_tool_error(tmp_path: Path) -> None:
    source, tests = _project(tmp_path, TESTS + "\n\ndef test_broken() -> None:\n    assert False\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--target",
            str(source),
            "--tests",
            str(tests),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2
    assert "ERROR: tests failed without any mutant" in proc.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_the_source_untouched(tmp_path: Path, sig: int) -> None:
    source, tests = _project(tmp_path, SLOW_TESTS)
    before = _digest(source)
    started = tmp_path / "s"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--target",
            str(source),
            "--tests",
            str(tests),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # the test file writes `s` from inside a mutant run, then sleeps
        for _ in range(1200):
            if started.exists() or proc.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.25)
        assert started.exists(), "no mutant run started"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted: sources untouched" in out
    assert _digest(source) == before
    assert list((tmp_path / "work").iterdir()) == []


def test_rerun_runs_only_the_survivors_of_an_earlier_report(tmp_path: Path) -> None:
    """After tests are added, `--rerun report.json` runs just the earlier survivors."""
    source, tests = _project(tmp_path, TESTS)
    key = f"{os.path.relpath(source.resolve(), ROOT)}::clamp::compare-swap::x > 10 -> x >= 10"
    earlier = tmp_path / "earlier.json"
    survivor = {"key": key, "status": "survived"}
    killed = {"key": key.replace(">= 10", "> 11"), "status": "killed"}
    earlier.write_text(json.dumps({"modules": [{"survivors": [survivor, killed]}]}))
    out = tmp_path / "rerun.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--target", str(source), "--tests", str(tests),
         "--rerun", str(earlier), "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (module,) = json.loads(out.read_text())["modules"]
    assert module["run"] == 1 < module["mutants"]  # the one survivor, nothing else
    assert [s["key"] for s in module["survivors"]] == [key]  # still untested: survives
