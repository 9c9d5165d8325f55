"""The lean DB-API spans of a real MariaDB query, through the distro's early-encoding
processor (so the encoder's `ATTRIBUTES_HINT` path), decoded at the OTLP receiver: a
query repeated on a connection is exported with the same pairs, in the same order, as
its first span (encoded the general way), and another query with its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.otlp import build_batch_processor, build_exporter
from lumigo_opentelemetry.export.skip import SkipExportFilter
from tests.helpers.data_tracing import CONFIG
from tests.helpers.need import tcp_service


@pytest.fixture
def provider(otlp_receiver: OtlpReceiver) -> Iterator[TracerProvider]:
    from lumigo_opentelemetry.instrumentations import pymysql as ours

    config = Config(token="t_db", endpoint=otlp_receiver.url)
    processor = build_batch_processor(config, build_exporter(config))
    made = TracerProvider(resource=Resource.create({"service.name": "db"}))
    made.add_span_processor(SkipExportFilter(processor))
    ours.uninstrument()
    ours.instrument(CONFIG, made)
    try:
        yield made
    finally:
        ours.uninstrument()
        made.shutdown()


def test_repeated_queries_are_exported_with_their_first_spans_pairs(
    provider: TracerProvider, otlp_receiver: OtlpReceiver
) -> None:
    tcp_service("127.0.0.1", 3306, "MariaDB")
    import pymysql

    connection: Any = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database="test"
    )
    try:
        for query in ["SELECT 1 + %s"] * 3 + ["SELECT 2 + %s"] + ["SELECT 1 + %s"] * 2:
            with connection.cursor() as cursor:
                cursor.execute(query, (1,))
                cursor.fetchall()
    finally:
        connection.close()
    provider.force_flush()
    spans = otlp_receiver.wait_for_spans(6, where=lambda s: "db.statement" in s.attributes)
    pairs = [list(s.attributes.items()) for s in spans]
    assert [dict(p)["db.statement"] for p in pairs] == ["SELECT 1 + %s"] * 3 + ["SELECT 2 + %s"] + [
        "SELECT 1 + %s"
    ] * 2
    first = pairs[0]
    assert [key for key, _ in first][:2] == ["db.system", "db.name"]
    assert dict(first)["net.peer.port"] == 3306 and dict(first)["db.system"] == "mysql"
    assert all(p == first for i, p in enumerate(pairs) if i != 3)
    assert pairs[3] == [(k, "SELECT 2 + %s" if k == "db.statement" else v) for k, v in first]
    assert {s.kind for s in spans} == {"CLIENT"} and {s.name for s in spans} == {"SELECT"}
    encoder: Any = provider._active_span_processor._span_processors[0].inner._encoder
    assert len(encoder._hints) == 2  # one per query plan: its later spans took its fields
