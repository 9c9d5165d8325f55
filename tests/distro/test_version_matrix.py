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
    assert _script().main(["--list", "--quick", "--lib", "pymysql"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["oldest", "newest"]
    assert lines[0].split()[2:] == MATRIX["pymysql"]["oldest"]


def test_a_partial_run_keeps_the_other_rows_of_the_table(tmp_path: Path) -> None:
    matrix = _script()
    out = tmp_path / "tested.md"
    first = {
        ("pymongo", "oldest"): matrix.Outcome(
            "pymongo", "oldest", "pymongo==3.12.3", "pymongo 3.12.3", "passed (1 test)", True
        ).line(),
        ("botocore", "newest"): matrix.Outcome(
            "botocore", "newest", "boto3", "boto3 1.44.5", "passed (2 tests)", True
        ).line(),
    }
    out.write_text(matrix.render(first, quick=True))
    kept = matrix.previous_lines(out)
    assert kept == first
    kept[("botocore", "newest")] = kept[("botocore", "newest")].replace("passed", "FAILED")
    text = matrix.render(kept, quick=False)
    body = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    # library order follows the matrix (botocore before pymongo), header first
    assert [line.split("|")[1].strip() for line in body] == ["Library", "botocore", "pymongo"]
    assert "FAILED" in body[1]


def test_the_env_override_pins_a_single_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMIGO_MATRIX_PYMONGO", "pymongo==4.6.* dnspython<3")
    assert rows("pymongo") == [("override", ["pymongo==4.6.*", "dnspython<3"])]
