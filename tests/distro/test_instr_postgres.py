"""psycopg2 and psycopg 3 in-process against the PostgreSQL at 127.0.0.1:5432; spans at OTLP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.data_tracing import instrumented, one, receiver, tracing
from tests.helpers.need import tcp_service

__all__ = ["receiver"]

DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture(autouse=True)
def _postgres() -> None:
    tcp_service("127.0.0.1", 5432, "PostgreSQL")


@pytest.fixture
def psycopg2_traced() -> Iterator[Any]:
    with instrumented("psycopg2"):
        yield


@pytest.fixture
def psycopg_traced() -> Iterator[Any]:
    with instrumented("psycopg"):
        yield


def _statements(table: str) -> tuple[str, str, str]:
    return (
        f"CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT, password TEXT)",
        f"INSERT INTO {table} (id, name, password) VALUES (%s, %s, %s)",
        f"SELECT name FROM {table} WHERE id = %s",
    )


def _assert_sql_spans(spans: list[Any], parent: Any, expected: list[str]) -> None:
    statements = [s for s in spans if "db.statement" in s.attributes]
    assert [s.attributes["db.statement"] for s in statements] == expected
    for span in statements:
        assert span.kind == "CLIENT"
        assert span.parent_span_id == parent.span_id
        assert span.trace_id == parent.trace_id
        assert span.attributes["db.system"] == "postgresql"
        assert span.attributes["db.name"] == "test"
    # the bound parameters never leave the process
    assert "hunter2" not in str([s.attributes for s in spans])


def test_psycopg2_statements_are_client_spans(psycopg2_traced: None, receiver: Any) -> None:
    import psycopg2

    table = f"users_{uuid.uuid4().hex[:8]}"
    create, insert, select = _statements(table)
    with tracing().tracer.start_as_current_span("request"):
        conn = psycopg2.connect(DSN)
        try:
            with conn.cursor() as cursor:
                cursor.execute(create)
                cursor.execute(insert, (1, "Ada", "hunter2"))
                cursor.execute(select, (1,))
                assert cursor.fetchall() == [("Ada",)]
                cursor.execute(f"DROP TABLE {table}")
            conn.commit()
        finally:
            conn.close()
    spans = receiver.wait_for_spans(5)
    _assert_sql_spans(spans, one(spans, "request"), [create, insert, select, f"DROP TABLE {table}"])
    assert one(spans, "INSERT").attributes["db.statement"] == insert


def test_psycopg2_error_is_an_error_span_and_still_raises(
    psycopg2_traced: None, receiver: Any
) -> None:
    import psycopg2

    conn = psycopg2.connect(DSN)
    try:
        with pytest.raises(psycopg2.errors.UndefinedTable), conn.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_here")
    finally:
        conn.close()
    span = receiver.wait_for_spans(1, where=lambda s: s.name.startswith("SELECT"))[0]
    assert span.status == "ERROR"
    assert span.attributes["db.statement"] == "SELECT * FROM no_such_table_here"


def test_psycopg3_sync_statements_are_client_spans(psycopg_traced: None, receiver: Any) -> None:
    import psycopg

    table = f"users_{uuid.uuid4().hex[:8]}"
    create, insert, select = _statements(table)
    with (
        tracing().tracer.start_as_current_span("request"),
        psycopg.connect(DSN) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute(create)
        cursor.execute(insert, (1, "Ada", "hunter2"))
        cursor.execute(select, (1,))
        assert cursor.fetchall() == [("Ada",)]
        cursor.execute(f"DROP TABLE {table}")
    spans = receiver.wait_for_spans(5)
    _assert_sql_spans(spans, one(spans, "request"), [create, insert, select, f"DROP TABLE {table}"])


def test_psycopg3_async_statements_are_client_spans(psycopg_traced: None, receiver: Any) -> None:
    import psycopg

    table = f"users_{uuid.uuid4().hex[:8]}"
    create, insert, select = _statements(table)

    async def work() -> list[Any]:
        with tracing().tracer.start_as_current_span("request"):
            conn = await psycopg.AsyncConnection.connect(DSN)
            async with conn, conn.cursor() as cursor:
                await cursor.execute(create)
                await cursor.execute(insert, (1, "Ada", "hunter2"))
                await cursor.execute(select, (1,))
                rows = await cursor.fetchall()
                await cursor.execute(f"DROP TABLE {table}")
        return rows

    assert asyncio.run(work()) == [("Ada",)]
    spans = receiver.wait_for_spans(5)
    _assert_sql_spans(spans, one(spans, "request"), [create, insert, select, f"DROP TABLE {table}"])
