"""A secret written into a SQL statement never reaches the backend, whichever driver.

Each driver runs alone in a fresh app (activated by the environment, nothing else
imported), against the real PostgreSQL or MariaDB; the statements arrive at the real
OTLP receiver with the secret literal masked and everything else kept.
"""

from __future__ import annotations

import uuid

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import run_app, traced_env
from tests.helpers.need import tcp_service

PORTS = {"psycopg": 5432, "psycopg2": 5432, "pymysql": 3306}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "pymysql"])
def test_a_password_literal_in_a_statement_is_masked(driver: str) -> None:
    """A password assigned in an UPDATE and given in an INSERT's rows (by the column list,
    without one, by a SELECT): all masked, the rest of each statement kept as the app wrote
    it, while the database got the real values (the app counts them)."""
    tcp_service("127.0.0.1", PORTS[driver], driver)
    table = f"secrets_{uuid.uuid4().hex[:8]}"
    with OtlpReceiver() as receiver:
        done = run_app("sql_literals.py", traced_env(receiver), {"driver": driver, "table": table})
        assert done.returncode == 0 and "ran 7" in done.stdout, done.stderr
        spans = receiver.wait_for_spans(7)
    assert "passwords 3" in done.stdout, done.stdout  # hunter3 (the UPDATE's), 4 and 5
    statements = [s.attributes["db.statement"] for s in spans if "db.statement" in s.attributes]
    assert len(statements) == 7, statements
    assert not [s for s in statements if "hunter" in s], statements
    update = next(s for s in statements if s.startswith("UPDATE"))
    assert update.startswith(f"UPDATE {table} SET password = ") and update.endswith("WHERE id = 1")
    insert = f"INSERT INTO {table} (id, name, password) VALUES (1, 'Ada', '****'), (2, 'Bob', NULL)"
    assert insert in statements
    assert f"INSERT INTO {table} VALUES ('****', '****', '****')" in statements
    assert f"INSERT INTO {table} (id, name, password) SELECT 4, 'Di', '****'" in statements
    assert f"CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT, password TEXT)" in statements
