"""Golden test: the lean DB-API query path against opentelemetry-instrumentation-dbapi's.

The same queries (real MariaDB through pymysql, real PostgreSQL through psycopg and
psycopg2) go once through the distro's lean `traced_execution` and once through
contrib's own; span names, kinds, attributes (in recorded order, masking and the length
limit included), dropped counts, events, status and parentage must be identical. Runs in
this repo's environment and in an app venv holding the oldest OpenTelemetry releases the
distro supports (SDK 1.41, contrib 0.62b0: no DB metrics hook yet).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.helpers.app_venv import app_venv
from tests.helpers.need import tcp_service
from tests.helpers.web_apps import run_golden

PORTS = {"pymysql": 3306, "psycopg": 5432, "psycopg2": 5432}
OLDEST = [
    "opentelemetry-api==1.41.0",
    "opentelemetry-sdk==1.41.0",
    "opentelemetry-instrumentation==0.62b0",
    "pymysql",
    "psycopg[binary]",
    "psycopg2-binary",
]


def _run(python: str, mode: str, driver: str, table: str) -> dict[str, Any]:
    return run_golden(python, "dbapi_golden.py", mode, driver, table)


def _compare(python: str, driver: str) -> None:
    tcp_service("127.0.0.1", PORTS[driver], driver)
    table = f"golden_{uuid.uuid4().hex[:8]}"  # made and dropped by each run in turn
    lean, contrib = _run(python, "lean", driver, table), _run(python, "contrib", driver, table)
    assert [s["name"] for s in lean["spans"]] == [s["name"] for s in contrib["spans"]]
    for ours, reference in zip(lean["spans"], contrib["spans"]):
        assert ours == reference
    # what the comparison covered
    assert contrib["memo_size"] == 0 and lean["memo_size"] > 0  # the two paths did differ
    assert not lean["secret_in_memo"]
    queries = [s for s in lean["spans"] if s["kind"] == "CLIENT"]
    assert len(queries) == 12  # 13 executions, one suppressed
    statements = [s["attributes"]["db.statement"] for s in queries]
    updates = [s for s in statements if s.startswith("UPDATE")]
    assert len(updates) == 2 and not [s for s in updates if "hunter2" in s]
    assert max(len(s) for s in statements) == 120  # the long query, cut at the limit
    assert [s["parent"] for s in queries if s["name"] == "SELECT"][:2] == ["span:request"] * 2
    failed = queries[-2]
    assert failed["status"][0] == "ERROR" and [e[0] for e in failed["events"]] == ["exception"]
    assert queries[0]["attribute_order"][:3] == ["db.system", "db.name", "db.statement"]


@pytest.mark.parametrize("driver", ["pymysql", "psycopg", "psycopg2"])
def test_lean_db_spans_equal_contrib_here(driver: str) -> None:
    _compare(sys.executable, driver)


@pytest.mark.slow
@pytest.mark.parametrize("driver", ["pymysql", "psycopg", "psycopg2"])
def test_lean_db_spans_equal_contrib_on_the_oldest_opentelemetry(driver: str) -> None:
    python = str(app_venv(list(OLDEST)) / "bin" / "python")
    versions = subprocess.run(
        [
            python,
            "-c",
            "from importlib.metadata import version as v;"
            "print(v('opentelemetry-sdk'), v('opentelemetry-instrumentation-dbapi'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert versions == ["1.41.0", "0.62b0"]
    _compare(python, driver)
