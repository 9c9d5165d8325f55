"""Pure parts of the distro: ECS mapping, exit-bounded exporter, span dump, report payload."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from lumigo_opentelemetry._activation import DisabledTracerProvider
from lumigo_opentelemetry.config import authorization_header
from lumigo_opentelemetry.dependencies import installed_distributions, report_payload
from lumigo_opentelemetry.export.otlp import DeadlineExporter
from lumigo_opentelemetry.export.spandump import SpanDumpProcessor, append_line
from lumigo_opentelemetry.masking import Masking
from lumigo_opentelemetry.resources.ecs import attributes_from_documents, ecs_attributes
from lumigo_opentelemetry.resources.process import environ_attribute
from lumigo_opentelemetry.version import __version__

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "fixtures" / "apps" / "distro"


def _doc(name: str) -> dict[str, object]:
    return dict(json.loads((APPS / name).read_text()))


def test_version_matches_the_distribution_metadata() -> None:
    pyproject = (REPO / "distro" / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert match and match.group(1) == __version__


def test_ecs_ec2_documents() -> None:
    attrs = attributes_from_documents(_doc("ecs_container_ec2.json"), _doc("ecs_task_ec2.json"))
    assert attrs["aws.ecs.cluster.arn"] == "arn:aws:ecs:eu-west-1:123456789012:cluster/shop"
    assert attrs["aws.ecs.launchtype"] == "ec2"
    assert attrs["container.name"] == "orders-api"


def test_ecs_labels_fill_in_for_a_missing_task_document() -> None:
    attrs = attributes_from_documents(_doc("ecs_container_fargate.json"), {})
    assert attrs["aws.ecs.task.family"] == "billing"
    assert attrs["aws.ecs.task.revision"] == "31"
    assert attrs["aws.ecs.cluster.arn"] == "arn:aws:ecs:us-east-2:123456789012:cluster/payments"
    assert "aws.ecs.launchtype" not in attrs


def test_ecs_odd_values_are_left_out() -> None:
    attrs = attributes_from_documents({"Name": {"no": "string"}, "Labels": []}, {"Cluster": "c"})
    assert attrs == {"cloud.provider": "aws", "cloud.platform": "aws_ecs"}


def test_no_ecs_variable_means_no_lookup() -> None:
    assert ecs_attributes({}) == {}
    assert ecs_attributes({"ECS_CONTAINER_METADATA_URI_V4": " "}) == {}


class _Recorder(SpanExporter):
    def __init__(self, results: Sequence[SpanExportResult]) -> None:
        self.results = list(results)
        self.calls = 0
        self.shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        return self.results.pop(0)

    def shutdown(self) -> None:
        self.shut = True


OK, FAIL = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


def test_deadline_exporter_passes_everything_through_before_exit() -> None:
    inner = _Recorder([FAIL, OK, OK])
    exporter = DeadlineExporter(lambda: inner)
    assert [exporter.export([]) for _ in range(3)] == [FAIL, OK, OK]
    assert inner.calls == 3


def test_deadline_exporter_keeps_sending_to_a_healthy_backend_at_exit() -> None:
    inner = _Recorder([OK, OK, OK])
    exporter = DeadlineExporter(lambda: inner)
    exporter.start_deadline(60)
    assert [exporter.export([]) for _ in range(3)] == [OK, OK, OK]


def test_deadline_exporter_gives_up_after_a_failure_at_exit() -> None:
    inner = _Recorder([OK, FAIL, OK])
    exporter = DeadlineExporter(lambda: inner)
    exporter.start_deadline(60)
    assert [exporter.export([]) for _ in range(4)] == [OK, FAIL, FAIL, FAIL]
    assert inner.calls == 2
    exporter.shutdown()
    assert inner.shut


def test_deadline_exporter_drops_after_the_deadline() -> None:
    inner = _Recorder([OK])
    exporter = DeadlineExporter(lambda: inner)
    exporter.start_deadline(0)
    assert exporter.export([]) is FAIL and inner.calls == 0


def test_deadline_exporter_swallows_exporter_exceptions() -> None:
    class Boom(_Recorder):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            raise RuntimeError("boom")

    assert DeadlineExporter(lambda: Boom([])).export([]) is FAIL


def test_authorization_header() -> None:
    assert authorization_header("t_123") == "LumigoToken t_123"


def test_span_dump_lines(tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    provider = TracerProvider(resource=Resource({"service.name": "unit"}))
    provider.add_span_processor(SpanDumpProcessor(str(dump)))
    tracer = provider.get_tracer("unit")
    with tracer.start_as_current_span("outer") as span:
        span.set_attribute("multi", "line\nbreak")
        with tracer.start_as_current_span("inner"):
            pass
    lines = dump.read_text().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["name"] for d in docs] == ["inner", "outer"]
    assert docs[1]["attributes"]["multi"] == "line\nbreak"
    assert docs[0]["resource"]["attributes"]["service.name"] == "unit"


def test_append_line_from_many_threads(tmp_path: Path) -> None:
    target = str(tmp_path / "t.jsonl")
    line = (json.dumps({"x": "z" * 70000}) + "\n").encode()

    def write() -> None:
        for _ in range(20):
            append_line(target, line)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    content = Path(target).read_bytes().split(b"\n")
    assert len(content) == 81 and all(json.loads(c) for c in content[:-1])


def test_unwritable_span_dump_never_raises(tmp_path: Path) -> None:
    processor = SpanDumpProcessor(str(tmp_path / "no" / "such" / "dir.jsonl"))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("unit").start_as_current_span("s"):
        pass  # nothing raised


def test_report_payload() -> None:
    payload = report_payload({"service.name": "s", "tags": ("a", "b")})
    assert payload["resourceAttributes"] == {"service.name": "s", "tags": ["a", "b"]}
    names = [p["name"].lower() for p in payload["dependencies"]]
    assert "opentelemetry-sdk" in names and len(names) == len(set(names))
    json.dumps(payload)  # serialisable


def test_installed_distributions_are_sorted_pairs() -> None:
    packages = installed_distributions()
    assert packages == sorted(packages, key=lambda p: p["name"].lower())
    assert all(set(p) == {"name", "version"} for p in packages)


def test_environ_attribute_masks_values_only() -> None:
    text = environ_attribute(Masking.default(), {"DB_PASSWORD": "p", "HOME": "/root"})
    assert json.loads(text) == {"DB_PASSWORD": "****", "HOME": "/root"}


def test_disabled_provider_is_safe() -> None:
    provider = DisabledTracerProvider()
    assert provider.force_flush() and provider.force_flush(5)
    with provider.get_tracer("x").start_as_current_span("s") as span:
        assert not span.is_recording()
    provider.shutdown()


def test_deadline_exporter_builds_the_real_exporter_lazily_once() -> None:
    built: list[_Recorder] = []

    def factory() -> _Recorder:
        built.append(_Recorder([OK, OK]))
        return built[-1]

    exporter = DeadlineExporter(factory)
    assert built == []
    assert exporter.export([]) is OK and exporter.export([]) is OK
    assert len(built) == 1


def test_deadline_exporter_survives_a_failing_factory() -> None:
    calls = []

    def factory() -> SpanExporter:
        calls.append(1)
        raise ImportError("no HTTP stack")

    exporter = DeadlineExporter(factory)
    assert exporter.export([]) is FAIL and exporter.export([]) is FAIL
    assert calls == [1]
    exporter.shutdown()
