"""The public API upstream documents (`tracer_provider`, `logger_provider`,
`lumigo_wrapped`, `create_programmatic_error`, `add_execution_tags`), used by a real Flask
app, checked at the OTLP receiver and in the span dump; execution tags reach a MariaDB
span started after them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from tests.distro.compat_apps import dumped_spans, run_web
from tests.helpers.need import tcp_service


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One app run calling GET /tags; its spans at the receiver and in the dump."""
    dump = tmp_path_factory.mktemp("api") / "spans.jsonl"
    with OtlpReceiver() as receiver:
        report = run_web(
            receiver, "flask", [["GET", "/tags", None, None]], LUMIGO_DEBUG_SPANDUMP=str(dump)
        )
        spans = receiver.wait_for_spans(4)
    return {"report": report, "spans": spans, "dump": dumped_spans(dump)}


def by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


def test_the_documented_names_import(tagged: dict[str, Any]) -> None:
    api = tagged["report"]["api"]
    assert api["tracer_provider"] == "TracerProvider"
    assert api["logger_provider"] == "DisabledLoggerProvider"  # logs are off by default
    for name in ("lumigo_wrapped", "create_programmatic_error", "add_execution_tags", "init"):
        assert api[name] == "function"


def test_lumigo_wrapped_records_arguments_and_result_masked(tagged: dict[str, Any]) -> None:
    spans = tagged["spans"]
    root = by_name(spans, "LumigoRoot")
    server = by_name(spans, "GET /tags")
    assert root.scope == "lumigo" and root.parent_span_id == server.span_id
    assert json.loads(root.attributes["input_args"]) == ["A-1"]
    assert json.loads(root.attributes["input_kwargs"]) == {
        "quantity": 2,
        "api_key": "****",
        # JSON after other text in an argument: its secret key masked, the rest kept
        "note": 'login failed for {"password": "****"}',
    }
    assert json.loads(root.attributes["return_value"]) == {"sku": "A-1", "total": 84}


def test_execution_tags_on_the_span_and_the_spans_started_after(tagged: dict[str, Any]) -> None:
    spans = tagged["spans"]
    for name in ("GET /tags", "LumigoRoot", "child"):
        attributes = by_name(spans, name).attributes
        assert attributes["lumigo.execution_tags.tenant"] == "acme", name
        assert attributes["lumigo.execution_tags.plan"] == ["pro", "gold"], name
        # a key with '.' breaks upstream's documented rule: skipped
        assert not any("bad" in key for key in attributes), name
    assert "execution tag key 'bad.key'" in tagged["report"]["stderr"]
    # the test's own client span (another context) gets none
    client = [s for s in spans if s.kind == "CLIENT"]
    assert client and not any("lumigo.execution_tags.tenant" in s.attributes for s in client)


def test_a_programmatic_error_is_a_span_event_with_lumigo_type(tagged: dict[str, Any]) -> None:
    (server,) = [s for s in tagged["dump"] if s["name"] == "GET /tags"]
    events = [(e["name"], e["attributes"]) for e in server["events"]]
    assert events == [("user not found", {"lumigo.type": "UserError"})]


def test_execution_tags_reach_a_mariadb_span(otlp_receiver: OtlpReceiver) -> None:
    tcp_service("127.0.0.1", 3306, "MariaDB")
    report = run_web(otlp_receiver, "fastapi", [["GET", "/mysql", None, None]])
    assert json.loads(report["calls"][0]["body"]) == {"value": 2}
    spans = otlp_receiver.wait_for_spans(2, where=lambda s: s.name in ("SELECT", "GET /mysql"))
    query = by_name(spans, "SELECT")
    assert query.attributes["db.system"] == "mysql"
    assert query.attributes["lumigo.execution_tags.tenant"] == "acme"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"k" * 50: "v"}, {"k" * 50: "v"}),
        ({"k" * 51: "v"}, {}),
        ({"long": "x" * 100}, {"long": "x" * 70}),
        ({"n": 3, "flag": True}, {"n": "3", "flag": "true"}),
        ({f"t{i}": "v" for i in range(60)}, {f"t{i}": "v" for i in range(50)}),
        ({"": "v", "empty": "  ", "none": None}, {}),
    ],
)
def test_execution_tag_limits(tags: dict[str, Any], expected: dict[str, Any]) -> None:
    from lumigo_opentelemetry.execution_tags import valid_tags

    assert valid_tags(tags) == expected
