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
from typing import Any

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


def _project(tmp_path: Path, tests: str, module: str = CALC) -> tuple[Path, Path]:
    pkg = tmp_path / "src" / "calcpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "calc.py").write_text(module)
    test_file = tmp_path / "test_calc.py"
    test_file.write_text(textwrap.dedent(tests))
    return pkg / "calc.py", test_file


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=str(tmp_path / "src"),
        MUTANT_STARTED=str(tmp_path / "s"),
        MUTATION_LOG=str(tmp_path / "ran.log"),
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_report_counts_killed_and_survived_mutants(tmp_path: Path, jobs: str) -> None:
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
            "--jobs",
            jobs,
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
    # results print in the file's order, however many run at once
    shown = [int(line.split(":")[1].split()[0]) for line in proc.stdout.splitlines()
             if line.startswith(("  killed", "  survived"))]  # fmt: skip
    assert len(shown) == module["run"] and shown == sorted(shown)
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


# Test selection: each mutant runs only the tests that execute its lines (a coverage map built
# by the baseline run), the full list when the line runs at import, and a survivor of the
# selected tests is confirmed with the full list. Each test logs its name and pytest's pid.
CALC_WITH_LIMIT = """\
LIMIT = 10


def is_positive(x: int) -> bool:
    return x > 0


def clamp(x: int) -> int:
    if x > LIMIT:
        return LIMIT
    return x
"""

LOGGED_TESTS = """\
import os
import subprocess
import sys

{top_import}


def _ran(name: str) -> None:
    if "mutant-" in os.environ.get("PYTHONPATH", ""):
        with open(os.environ["MUTATION_LOG"], "a") as log:
            log.write(f"{{os.getpid()}} {{name}}\\n")


def test_small() -> None:
    {inner_import}
    _ran("small")
    assert clamp(3) == 3


def test_big() -> None:  # runs clamp's bound in-process but checks nothing
    {inner_import}
    _ran("big")
    clamp(50)


def test_positive() -> None:
    {inner_import}
    _ran("positive")
    assert is_positive(1)
    assert not is_positive(0)


def test_subprocess() -> None:  # checks the bound where coverage does not look
    _ran("subprocess")
    code = "from calcpkg.calc import clamp; assert clamp(50) == 10"
    subprocess.run([sys.executable, "-c", code], check=True)
"""

IMPORT = "from calcpkg.calc import clamp, is_positive"
ALL_TESTS = ["small", "big", "positive", "subprocess"]


def _logged(
    tmp_path: Path, module: str, lazy: bool, *keys: str
) -> tuple[dict[str, Any], list[list[str]]]:
    """Run the mutants named by `keys`; the report and the tests each pytest run ran, in order."""
    tests_text = LOGGED_TESTS.format(
        top_import="" if lazy else IMPORT, inner_import=IMPORT if lazy else "pass"
    )
    source, tests = _project(tmp_path, tests_text, module)
    rel = os.path.relpath(source.resolve(), ROOT)
    earlier = tmp_path / "earlier.json"
    survivors = [{"key": f"{rel}::{key}", "status": "survived"} for key in keys]
    earlier.write_text(json.dumps({"modules": [{"survivors": survivors}]}))
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--target", str(source), "--tests", str(tests),
         "--rerun", str(earlier), "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (report,) = json.loads(out.read_text())["modules"]
    runs: list[list[str]] = []
    last = ""
    for line in (tmp_path / "ran.log").read_text().splitlines():
        pid, name = line.split()
        if pid != last:
            runs.append([])
            last = pid
        runs[-1].append(name)
    return report, runs


def test_a_mutant_runs_only_the_tests_that_execute_its_line(tmp_path: Path) -> None:
    report, runs = _logged(
        tmp_path, CALC_WITH_LIMIT, False, "is_positive::compare-swap::x > 0 -> x >= 0"
    )
    assert (report["run"], report["killed"]) == (1, 1)
    assert runs == [["positive"]]  # not small and big, which come first in the file


@pytest.mark.parametrize(
    ("module", "lazy", "key"),
    [
        # a module constant, imported inside the first test: its line is in that test's
        # record, yet every test reads it
        (CALC_WITH_LIMIT, True, "::off-by-one::10 -> 11"),
        # a function body run at import (collection) as well as by test_positive
        (CALC_WITH_LIMIT + "\nZERO_IS_POSITIVE = is_positive(0)\n", False,
         "is_positive::compare-swap::x > 0 -> x >= 0"),
    ],
)  # fmt: skip
def test_a_line_run_at_import_runs_the_full_test_list(
    tmp_path: Path, module: str, lazy: bool, key: str
) -> None:
    report, runs = _logged(tmp_path, module, lazy, key)
    assert (report["run"], report["killed"]) == (1, 1)
    assert len(runs) == 1  # one run, of the full list, up to the first failure (-x)
    assert runs[0] == ALL_TESTS[: len(runs[0])]
    assert runs[0][0] == "small"


def test_a_survivor_of_the_selected_tests_is_confirmed_with_the_full_list(
    tmp_path: Path,
) -> None:
    report, runs = _logged(
        tmp_path,
        CALC_WITH_LIMIT,
        False,
        "clamp::compare-swap::x > LIMIT -> x >= LIMIT",  # equivalent: survives everything
        "clamp::return-none::return LIMIT -> return None",  # only the subprocess test sees it
    )
    assert (report["run"], report["killed"], report["survived"]) == (2, 1, 1)
    assert [s["after"] for s in report["survivors"]] == ["x >= LIMIT"]
    assert runs == [["small", "big"], ALL_TESTS, ["big"], ALL_TESTS]
