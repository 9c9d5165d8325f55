"""The lean DB-API proxies (`_dbapi_proxies`) on pymysql: a real MariaDB at 127.0.0.1:3306,
spans at OTLP. What contrib's proxies do, they do: the app sees contrib's proxy types, a
cursor used as a context manager is itself, every statement is one CLIENT span."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.data_tracing import instrumented, mariadb_connection, receiver, tracing

__all__ = ["receiver"]


@pytest.fixture(scope="module", autouse=True)
def _pymysql() -> Iterator[None]:
    with instrumented("pymysql"):
        yield


@pytest.fixture
def connection() -> Iterator[Any]:
    with mariadb_connection() as conn:
        yield conn


def test_cursors_are_contrib_proxies_sharing_their_connections_tracer(connection: Any) -> None:
    from opentelemetry.instrumentation.dbapi import TracedConnectionProxy, TracedCursorProxy

    assert isinstance(connection, TracedConnectionProxy)
    first, second = connection.cursor(), connection.cursor()
    assert isinstance(first, TracedCursorProxy) and isinstance(second, TracedCursorProxy)
    assert type(first).__name__ == "LeanCursorProxy"
    assert first.__wrapped__ is not second.__wrapped__
    assert first._self_cursor_tracer is second._self_cursor_tracer
    with first as entered:
        assert entered is first
    assert first.__wrapped__.connection is None  # closed on exit, as pymysql does


def test_statements_through_every_method_are_client_spans(
    connection: Any, receiver: OtlpReceiver
) -> None:
    table = f"proxies_{uuid.uuid4().hex[:8]}"
    insert = f"INSERT INTO {table} (id, name) VALUES (%s, %s)"
    with tracing().tracer.start_as_current_span("request"):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40))")
            cursor.executemany(insert, [(1, "ada"), (2, "bob")])
            cursor.execute(f"SELECT name FROM {table} ORDER BY id")
            assert cursor.fetchone() == ("ada",)
            assert cursor.fetchall() == (("bob",),)
            cursor.execute(f"DROP TABLE {table}")
        connection.commit()
    spans = receiver.wait_for_spans(5)
    request = next(s for s in spans if s.name == "request")
    queries = [s for s in spans if s is not request]
    assert [s.name for s in queries] == ["CREATE", "INSERT", "SELECT", "DROP"]
    assert {s.parent_span_id for s in queries} == {request.span_id}
    assert queries[1].attributes["db.statement"] == insert
    assert all(s.kind == "CLIENT" and s.attributes["db.system"] == "mysql" for s in queries)


def test_a_failing_statement_is_an_error_span_that_keeps_nothing(
    connection: Any, receiver: OtlpReceiver
) -> None:
    import pymysql

    cursor = connection.cursor()
    raw = weakref.ref(cursor.__wrapped__)
    with pytest.raises(pymysql.err.ProgrammingError):
        cursor.execute("SELECT * FROM no_such_table_for_proxies")
    span = receiver.wait_for_spans(1, where=lambda s: s.name == "SELECT")[0]
    assert span.status == "ERROR"
    cursor.close()
    del cursor
    gc.disable()
    try:
        assert raw() is None  # no cycle through the exception's frames
    finally:
        gc.enable()


def test_a_replaced_cursor_proxy_factory_is_honoured(connection: Any) -> None:
    from opentelemetry.instrumentation import dbapi

    class Marked(dbapi.TracedCursorProxy):  # type: ignore[misc]
        pass

    original = dbapi.get_traced_cursor_proxy
    dbapi.get_traced_cursor_proxy = lambda cursor, integration, *a, **k: Marked(cursor, integration)
    try:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
        try:
            assert type(conn.cursor()) is Marked
        finally:
            conn.close()
    finally:
        dbapi.get_traced_cursor_proxy = original


def test_suppressed_instrumentation_makes_no_span_either_way(
    connection: Any, receiver: OtlpReceiver
) -> None:
    from opentelemetry import context
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with connection.cursor() as cursor:
        with suppress_instrumentation():
            cursor.execute("SELECT 1")
        token = context.attach(context.set_value("suppress_instrumentation", True))
        try:
            cursor.execute("SELECT 2")  # the plain key contrib also honours
        finally:
            context.detach(token)
        assert cursor.fetchall() == ((2,),)
        cursor.execute("SELECT 3")
    spans = receiver.wait_for_spans(1)
    assert [s.attributes["db.statement"] for s in spans] == ["SELECT 3"]


def test_cursor_attributes_are_the_cursors_read_set_and_patched(connection: Any) -> None:
    from unittest import mock

    with connection.cursor() as cursor:
        raw = cursor.__wrapped__
        cursor.execute("SELECT 1 UNION SELECT 2")
        assert cursor.rowcount == 2 and cursor.description == raw.description
        assert cursor.fetchone() == (1,) and cursor.fetchall() == ((2,),)
        cursor.arraysize = 7
        assert raw.arraysize == 7 and cursor.arraysize == 7
        with mock.patch.object(cursor, "fetchone", return_value=("mocked",)):
            assert cursor.fetchone() == ("mocked",)
        assert "fetchone" not in vars(raw)  # the patch undone on the cursor itself
        with pytest.raises(AttributeError):
            cursor.no_such_attribute_here  # noqa: B018


def test_connection_attributes_are_read_without_contribs_python_lookup(connection: Any) -> None:
    from opentelemetry.instrumentation.dbapi import TracedConnectionProxy

    contribs = TracedConnectionProxy.__dict__["__getattribute__"]
    assert type(connection).__getattribute__ is not contribs
    raw = connection.__wrapped__
    assert connection.get_server_info() == raw.get_server_info()
    assert connection.autocommit_mode == raw.autocommit_mode  # falsy, the connection's
    assert connection.__module__ == raw.__module__
    with pytest.raises(AttributeError):
        connection.no_such_attribute_here  # noqa: B018


def test_db_metrics_are_recorded_only_when_contrib_would_record_some(connection: Any) -> None:
    from opentelemetry.instrumentation.dbapi import CursorTracer

    from lumigo_opentelemetry.instrumentations._dbapi_lean import _metrics_recorder

    tracer = connection.cursor()._self_cursor_tracer
    integration = tracer._db_api_integration
    assert integration._duration_histogram is None  # the default (old) semantic conventions
    assert _metrics_recorder(tracer) is None

    class Recording(CursorTracer):  # type: ignore[misc]
        def _record_metrics(self, *args: Any) -> None:
            pass

    assert _metrics_recorder(Recording(integration)) is not None  # not contrib's own
    mode = integration._sem_conv_opt_in_mode_db
    try:
        from opentelemetry.instrumentation._semconv import _StabilityMode

        integration._sem_conv_opt_in_mode_db = _StabilityMode.DATABASE  # new conventions
        assert _metrics_recorder(CursorTracer(integration)) is not None
    finally:
        integration._sem_conv_opt_in_mode_db = mode
