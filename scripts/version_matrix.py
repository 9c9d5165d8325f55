"""Run the instrumentation tests across the library version matrix; write the table.

    uv run python scripts/version_matrix.py            # every row of tests/helpers/versions.py
    uv run python scripts/version_matrix.py --quick    # oldest and newest rows (what CI runs)
    uv run python scripts/version_matrix.py --lib pymongo --lib pymysql
    uv run python scripts/version_matrix.py --python 3.9 --python 3.13
    uv run python scripts/version_matrix.py --list     # print the rows, run nothing

For each (library, row, interpreter) it runs that library's end-to-end tests with the row
pinned (env `LUMIGO_MATRIX_<LIB>`) in app venvs of that CPython (env `LUMIGO_MATRIX_PYTHON`;
default: every CPython of `PYTHONS` this machine has), reads the versions the row really
installed from the app venv the tests used, and writes docs/tested-versions.md (rows not
run this time are kept from the existing file, with their date). Exit code 1 when any row
failed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.versions import MATRIX, labels  # noqa: E402

OUTPUT = REPO / "docs" / "tested-versions.md"
#: the CPython minors the layer supports, the interpreters the matrix runs on by default
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


@dataclass(frozen=True)
class Library:
    tests: tuple[str, ...]  # the end-to-end test files that read the library's rows
    report: tuple[str, ...]  # distributions whose installed version goes in the table
    extra: tuple[str, ...] = ()  # what those tests add to the row's requirements
    select: str = ""  # a pytest `-k` expression when the files hold other libraries' cases


LIBRARIES: dict[str, Library] = {
    "flask": Library(
        ("tests/distro/test_instr_flask.py",), ("Flask", "Werkzeug"), ("gunicorn>=22",)
    ),
    "fastapi": Library(
        ("tests/distro/test_instr_fastapi.py",), ("fastapi", "starlette", "uvicorn")
    ),
    "botocore": Library(("tests/distro/test_instr_botocore_app.py",), ("boto3", "botocore")),
    "pymongo": Library(("tests/distro/test_instr_pymongo_app.py",), ("pymongo",)),
    "pymysql": Library(("tests/distro/test_instr_pymysql_app.py",), ("PyMySQL",)),
}
# the issue-14 libraries share one end-to-end file; `select` picks the library's cases
_NEW_APPS = "tests/distro/test_instr_new_apps.py"
LIBRARIES.update(
    {
        "django": Library((_NEW_APPS,), ("Django", "psycopg"), select="django"),
        "psycopg2": Library((_NEW_APPS,), ("psycopg2-binary",), select="psycopg2"),
        "psycopg": Library((_NEW_APPS,), ("psycopg",), select="psycopg and not psycopg2"),
        "redis": Library((_NEW_APPS,), ("redis",), select="redis"),
        "pika": Library((_NEW_APPS,), ("pika",), select="pika"),
        "grpc": Library((_NEW_APPS,), ("grpcio",), select="grpc"),
        "httpx": Library((_NEW_APPS,), ("httpx",), select="httpx"),
        "requests": Library((_NEW_APPS,), ("requests", "urllib3"), select="requests"),
        "langchain": Library((_NEW_APPS,), ("langchain-core",), select="langchain"),
    }
)


@dataclass(frozen=True)
class Outcome:
    library: str
    row: str
    python: str
    requirements: str
    installed: str
    result: str
    ok: bool
    date: str = ""

    def line(self) -> str:
        date = self.date or datetime.date.today().isoformat()
        cells = (
            self.library, self.row, self.python, f"`{self.requirements}`", self.installed,
            self.result, date,
        )  # fmt: skip
        return "| " + " | ".join(cells) + " |"


def available_pythons(wanted: tuple[str, ...] = PYTHONS) -> tuple[list[str], list[str]]:
    """(found, missing): which of the CPython minors `wanted` this machine has."""
    from tests.helpers.need import pyenv_python

    found, absent = [], []
    for minor in wanted:
        try:
            pyenv_python(minor)
        except BaseException:  # `missing()` skips (or fails on CI): here it only means absent
            absent.append(minor)
        else:
            found.append(minor)
    return found, absent


def installed_versions(requirements: list[str], lib: Library, python: str) -> str:
    """The versions the row resolved to, read from the (cached) venv the tests used."""
    from tests.helpers.app_venv import app_venv

    try:
        venv = app_venv([*requirements, *lib.extra], python=python)
    except Exception as exc:  # unresolvable row: reported, not fatal
        return f"not installable ({str(exc).splitlines()[0][:80]})"
    code = (
        "import importlib.metadata as m, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try: print(name, m.version(name))\n"
        "    except m.PackageNotFoundError: print(name, '-')\n"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *lib.report],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return ", ".join(line.strip() for line in proc.stdout.splitlines() if line.strip())


def run_tests(name: str, requirements: list[str], lib: Library, python: str) -> tuple[str, bool]:
    """Run the library's tests with the row pinned in app venvs of CPython `python`;
    a summary and whether it passed."""
    pinned = {f"LUMIGO_MATRIX_{name.upper()}": " ".join(requirements)}
    env = dict(os.environ, LUMIGO_MATRIX_PYTHON=python, **pinned)
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        proc = subprocess.run(
            [*argv, f"--junitxml={junit}", *lib.tests, *(("-k", lib.select) if lib.select else ())],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if not junit.exists():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
            return f"error: {' '.join(tail)[:100]}", False
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        total = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
    if failed:
        return f"FAILED ({failed} of {_tests(total)})", False
    if total and skipped == total:
        return f"skipped ({_tests(total)})", proc.returncode == 0
    return f"passed ({_tests(total - skipped)})", proc.returncode == 0


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


def previous_lines(path: Path) -> dict[tuple[str, str, str], str]:
    """Table lines of an existing file, keyed by (library, row, python)."""
    found: dict[tuple[str, str, str], str] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 7 and cells[0] in MATRIX:
            found[(cells[0], cells[1], cells[2])] = line
    return found


def render(lines: dict[tuple[str, str, str], str], missing_pythons: list[str]) -> str:
    order = {lib: i for i, lib in enumerate(MATRIX)}

    def key(item: tuple[tuple[str, str, str], str]) -> tuple[int, int, tuple[int, ...]]:
        (lib, row, python), _line = item
        rows = labels(lib) if lib in MATRIX else ()
        minor = tuple(int(part) for part in python.split(".") if part.isdigit())
        return order.get(lib, 99), rows.index(row) if row in rows else 99, minor

    body = "\n".join(line for _k, line in sorted(lines.items(), key=key))
    run = {python for (_lib, _row, python) in lines}
    no_rows = [p for p in PYTHONS if p not in run]
    absent = [p for p in missing_pythons if p in no_rows]
    note = ""
    if no_rows:
        note = f" No rows for CPython {', '.join(no_rows)}"
        if absent:
            note += f" ({', '.join(absent)}: not installed on the machine of the last run)"
        note += "."
    return f"""# Tested library versions

Each row ran the library's end-to-end tests (an unmodified app in its own venv of the
given CPython, injected by environment variables only; spans checked at a real OTLP/HTTP
receiver; PostgreSQL, Redis, RabbitMQ and MariaDB real servers) with the requested
versions. Generated by `uv run python scripts/version_matrix.py` (`--quick`: oldest and
newest rows; `--python`: the interpreters); the last column is the day the row ran. An
unpinned requirement resolves to the newest release that supports that interpreter, so
the installed version can differ between interpreters. CI runs the `oldest` and `newest`
row of each library on CPython 3.11.{note}

| Library | Row | Python | Requested | Installed | Result | Date |
|---|---|---|---|---|---|---|
{body}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the oldest and newest rows")
    parser.add_argument("--lib", action="append", choices=sorted(LIBRARIES), help="repeatable")
    parser.add_argument(
        "--python", action="append", choices=PYTHONS, help="CPython minor; repeatable"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args(argv)

    selected = args.lib or list(LIBRARIES)
    found, absent = available_pythons(tuple(args.python or PYTHONS))
    plan = [
        (name, label, python, MATRIX[name][label])
        for name in selected
        for label in labels(name)
        if not args.quick or label in ("oldest", "newest")
        for python in found
    ]
    if args.list:
        for name, label, python, reqs in plan:
            print(f"{name:9} {label:7} {python:5} {' '.join(reqs)}")
        return 0
    if absent:
        print(f"CPython {', '.join(absent)} not found: no rows for it", flush=True)
    _found, not_installed = available_pythons(PYTHONS)

    lines = previous_lines(args.output)
    all_ok = True
    for name, label, python, reqs in plan:
        lib = LIBRARIES[name]
        print(f"== {name} {label} py{python}: {' '.join(reqs)}", flush=True)
        result, ok = run_tests(name, reqs, lib, python)
        installed = installed_versions(reqs, lib, python)
        outcome = Outcome(name, label, python, " ".join(reqs), installed, result, ok)
        print(f"   {outcome.installed}: {outcome.result}", flush=True)
        lines[(name, label, python)] = outcome.line()
        all_ok = all_ok and ok
        # written after every row: a long run that is stopped keeps what it measured
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(lines, not_installed))
    print(f"wrote {args.output}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
