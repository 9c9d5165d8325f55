"""pymysql instrumentation in-process: the MariaDB at 127.0.0.1:3306, spans at OTLP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.data_tracing import instrumented, mariadb_connection, one, receiver, tracing

__all__ = ["receiver"]


@pytest.fixture(scope="module", autouse=True)
def _pymysql() -> Iterator[None]:
    with instrumented("pymysql"):
        yield


@pytest.fixture
def connection() -> Iterator[Any]:
    with mariadb_connection() as conn:
        yield conn


def test_statements_are_client_spans_carrying_the_sql(
    connection: Any, receiver: OtlpReceiver
) -> None:
    table = f"users_{uuid.uuid4().hex[:8]}"
    create = f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40), password VARCHAR(40))"
    insert = f"INSERT INTO {table} (id, name, password) VALUES (%s, %s, %s)"
    select = f"SELECT name FROM {table} WHERE id = %s"
    with tracing().tracer.start_as_current_span("request"):
        with connection.cursor() as cursor:
            cursor.execute(create)
            cursor.execute(insert, (1, "Ada", "hunter2"))
            cursor.execute(select, (1,))
            assert cursor.fetchall() == (("Ada",),)
            cursor.execute(f"DROP TABLE {table}")
        connection.commit()

    spans = receiver.wait_for_spans(5)
    request = one(spans, "request")
    statements = [s for s in spans if s.name != "request"]
    assert [s.attributes["db.statement"] for s in statements] == [
        create,
        insert,
        select,
        f"DROP TABLE {table}",
    ]
    for span in statements:
        assert span.kind == "CLIENT"
        assert span.parent_span_id == request.span_id
        assert span.attributes["db.system"] == "mysql"
        assert span.attributes["db.name"] == "test"
        assert span.attributes["net.peer.name"] == "127.0.0.1"
    assert one(statements, "INSERT").attributes["db.statement"] == insert
    # bound parameters are not part of the statement
    assert "hunter2" not in str([s.attributes for s in spans])


def test_a_failing_statement_is_an_error_span_and_still_raises(
    connection: Any, receiver: OtlpReceiver
) -> None:
    import pymysql

    with pytest.raises(pymysql.err.ProgrammingError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")
    span = receiver.wait_for_spans(1, where=lambda s: s.name == "SELECT")[0]
    assert span.status == "ERROR"
    assert span.attributes["db.statement"] == "SELECT * FROM no_such_table_here"
