"""scripts/version_matrix.py: row selection and the table it writes (no test runs here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.versions import MATRIX, labels, rows

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "version_matrix.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("version_matrix", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["version_matrix"] = module
    spec.loader.exec_module(module)
    return module


def test_every_library_has_oldest_and_newest_rows_and_tests_to_run() -> None:
    matrix = _script()
    assert set(matrix.LIBRARIES) == set(MATRIX)
    for lib, spec in matrix.LIBRARIES.items():
        assert labels(lib)[0] == "oldest" and labels(lib)[-1] == "newest"
        for test_file in spec.tests:
            assert (SCRIPT.parents[1] / test_file).is_file(), test_file


def test_list_prints_the_quick_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--list", "--quick", "--lib", "pymysql", "--python", "3.11"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines] == [["oldest", "3.11"], ["newest", "3.11"]]
    assert lines[0].split()[3:] == MATRIX["pymysql"]["oldest"]


def test_the_plan_runs_every_row_on_every_interpreter_asked_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    matrix = _script()
    found, _absent = matrix.available_pythons(("3.9", "3.11"))
    assert matrix.main(["--list", "--quick", "--lib", "redis", "--python", "3.9",
                        "--python", "3.11"]) == 0  # fmt: skip
    planned = [tuple(line.split()[1:3]) for line in capsys.readouterr().out.splitlines()]
    assert planned == [(row, py) for row in ("oldest", "newest") for py in found]


def test_a_partial_run_keeps_the_other_rows_of_the_table(tmp_path: Path) -> None:
    matrix = _script()
    out = tmp_path / "tested.md"
    first = {
        ("pymongo", "oldest", "3.9"): matrix.Outcome(
            "pymongo", "oldest", "3.9", "pymongo==3.12.3", "pymongo 3.12.3", "passed (1 test)",
            True, "2026-11-29",
        ).line(),
        ("botocore", "newest", "3.13"): matrix.Outcome(
            "botocore", "newest", "3.13", "boto3", "boto3 1.44.5", "passed (2 tests)", True
        ).line(),
        ("botocore", "newest", "3.9"): matrix.Outcome(
            "botocore", "newest", "3.9", "boto3", "boto3 1.44.5", "passed (2 tests)", True
        ).line(),
    }  # fmt: skip
    out.write_text(matrix.render(first, ["3.14"]))
    kept = matrix.previous_lines(out)
    assert kept == first
    assert "2026-11-29" in kept[("pymongo", "oldest", "3.9")]  # a kept row keeps its date
    kept[("botocore", "newest", "3.13")] = kept[("botocore", "newest", "3.13")].replace(
        "passed", "FAILED"
    )
    text = matrix.render(kept, ["3.14"])
    assert "No rows for CPython 3.10, 3.11, 3.12, 3.14 (3.14: not installed" in text
    body = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    # library order follows the matrix (botocore before pymongo), then the interpreter
    cells = [[c.strip() for c in line.split("|")[1:4]] for line in body]
    assert cells == [
        ["Library", "Row", "Python"],
        ["botocore", "newest", "3.9"],
        ["botocore", "newest", "3.13"],
        ["pymongo", "oldest", "3.9"],
    ]
    assert "FAILED" in body[2]


def test_the_env_override_pins_a_single_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMIGO_MATRIX_PYMONGO", "pymongo==4.6.* dnspython<3")
    assert rows("pymongo") == [("override", ["pymongo==4.6.*", "dnspython<3"])]
