"""The exporter's exit deadline: only failures *at exit* make it drop the remaining batches.

A backend that failed once while the app was running must still receive the spans flushed at
exit; after a failure at exit the rest is dropped (and counted in one warning).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from lumigo_devtools.receiver import OtlpReceiver
from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.export.otlp import DeadlineExporter, build_batch_processor, build_exporter

OK, FAIL = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


class _Backend(SpanExporter):
    """Answers each batch with the next scripted result and keeps what it accepted."""

    def __init__(self, results: Sequence[SpanExportResult]) -> None:
        self.results = list(results)
        self.accepted: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.results.pop(0)
        if result is OK:
            self.accepted += [span.name for span in spans]
        return result


def _spans(*names: str) -> list[ReadableSpan]:
    return [ReadableSpan(name=name) for name in names]


def test_a_failure_while_running_does_not_drop_the_batches_at_exit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = _Backend([FAIL, OK, OK, OK])
    with caplog.at_level(logging.WARNING, logger="lumigo_opentelemetry"):
        exporter = DeadlineExporter(lambda: backend)
        assert exporter.export(_spans("lost-while-running")) is FAIL
        assert exporter.export(_spans("running")) is OK
        exporter.start_deadline(60)
        assert exporter.export(_spans("exit-1")) is OK
        assert exporter.export(_spans("exit-2")) is OK
        exporter.shutdown()
    assert backend.accepted == ["running", "exit-1", "exit-2"]
    assert caplog.text == ""  # nothing dropped, the exporter built once: no warning at all


def test_after_a_failure_at_exit_the_rest_is_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = _Backend([OK, FAIL])
    exporter = DeadlineExporter(lambda: backend)
    exporter.start_deadline(60)
    assert exporter.export(_spans("a")) is OK
    assert exporter.export(_spans("b")) is FAIL
    assert exporter.export(_spans("c", "d")) is FAIL
    assert exporter.export(_spans("e")) is FAIL
    with caplog.at_level(logging.WARNING, logger="lumigo_opentelemetry"):
        exporter.shutdown()
    assert backend.accepted == ["a"]
    # b failed and c, d, e were never sent: all four are counted (the failed batch too)
    assert "dropped 4 spans at exit" in caplog.text


def test_spans_at_exit_without_an_exporter_are_counted_in_the_exit_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the real exporter cannot be built, what reaches it at exit is reported as
    dropped (the failures while running were already reported when the build failed)."""

    def factory() -> SpanExporter:
        raise ImportError("no HTTP stack")

    exporter = DeadlineExporter(factory)
    assert exporter.export(_spans("while-running")) is FAIL
    exporter.start_deadline(60)
    assert exporter.export(_spans("exit-1", "exit-2")) is FAIL
    with caplog.at_level(logging.WARNING, logger="lumigo_opentelemetry"):
        exporter.shutdown()
    assert "dropped 2 spans at exit" in caplog.text


def test_a_fork_builds_the_exporter_first_and_both_sides_keep_exporting() -> None:
    """gunicorn-style pre-fork: the exporter is built before the fork (never inside a child
    that inherited a half-done import) and neither side hangs on the exporter's lock."""
    built: list[int] = []

    def factory() -> _Backend:
        built.append(os.getpid())
        return _Backend([OK] * 4)

    exporter = DeadlineExporter(factory)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: export once, report, leave without pytest's cleanup
        try:
            answer = b"1" if exporter.export(_spans("child")) is OK else b"0"
            os.write(write_end, answer)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert built == [os.getpid()]  # built by the forking process, before the fork
        results: list[SpanExportResult] = []
        worker = threading.Thread(target=lambda: results.append(exporter.export(_spans("p"))))
        worker.start()
        worker.join(60)
        assert results == [OK], "the parent hangs on the exporter after a fork"
        ready, _, _ = select.select([read_end], [], [], 60)
        assert ready and os.read(read_end, 1) == b"1", "the child hangs on the exporter"
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a hung child must not hang the test run
        os.waitpid(pid, 0)


def _real_span(name: str) -> ReadableSpan:
    provider = TracerProvider()
    recorded: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            recorded.extend(spans)
            return OK

    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    provider.get_tracer("test").start_span(name).end()
    return recorded[0]


def test_the_built_exporter_sends_to_the_endpoint_with_the_token(
    otlp_receiver: OtlpReceiver,
) -> None:
    config = Config.from_environ(
        {"LUMIGO_TRACER_TOKEN": "t_abc", "LUMIGO_ENDPOINT": otlp_receiver.url}
    )
    exporter = build_exporter(config)
    assert exporter.export([_real_span("sent")]) is OK
    exporter.shutdown()
    assert [span.name for span in otlp_receiver.spans()] == ["sent"]
    (request,) = otlp_receiver.requests()
    assert request.headers["authorization"] == "LumigoToken t_abc"


def test_without_a_token_nothing_is_sent_and_the_app_is_told_once(
    otlp_receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    config = Config.from_environ({"LUMIGO_ENDPOINT": otlp_receiver.url})
    with caplog.at_level(logging.WARNING, logger="lumigo_opentelemetry"):
        exporter = build_exporter(config)
        assert exporter.export([_real_span("a")]) is FAIL
        assert exporter.export([_real_span("b")]) is FAIL
    assert otlp_receiver.requests() == []
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "LUMIGO_TRACER_TOKEN" in warnings[0]


@pytest.mark.parametrize(
    ("environ", "spans", "largest"),
    [({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2"}, 5, 2), ({}, 600, 512)],
)
def test_batches_follow_the_batch_size_setting_or_its_default(
    environ: dict[str, str], spans: int, largest: int
) -> None:
    sizes: list[int] = []

    class Sizes(SpanExporter):
        def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
            sizes.append(len(batch))
            return OK

    processor = build_batch_processor(Config.from_environ(environ), Sizes())
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    for n in range(spans):
        tracer.start_span(f"s{n}").end()
    provider.shutdown()  # flushes what is queued
    assert sum(sizes) == spans and max(sizes) == largest


def test_a_fork_leaves_no_error_behind_in_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pre-forking server forks many times: the exporter's fork handlers must not print
    "Exception ignored in ..." into the app's stderr at every fork."""
    ignored: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: ignored.append(info.exc_value))
    exporter = DeadlineExporter(lambda: _Backend([OK] * 2))
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert ignored == []
    assert exporter.export(_spans("after-fork")) is OK


def test_spans_beyond_the_queue_setting_are_dropped_while_the_backend_is_busy() -> None:
    """OTEL_BSP_MAX_QUEUE_SIZE bounds what waits in memory while an export is stuck."""
    exporting, release = threading.Event(), threading.Event()
    accepted: list[str] = []

    class Busy(SpanExporter):
        def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
            exporting.set()
            release.wait(60)
            accepted.extend(span.name for span in batch)
            return OK

    environ = {"OTEL_BSP_MAX_QUEUE_SIZE": "2", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1"}
    provider = TracerProvider()
    provider.add_span_processor(build_batch_processor(Config.from_environ(environ), Busy()))
    tracer = provider.get_tracer("test")
    tracer.start_span("first").end()
    assert exporting.wait(60), "the first span was never exported"
    for n in range(10):  # the backend holds the first batch: only two of these fit the queue
        tracer.start_span(f"queued-{n}").end()
    release.set()
    provider.shutdown()
    assert accepted[0] == "first" and len(accepted) == 3


@pytest.mark.parametrize(
    ("environ", "seconds"), [({"OTEL_BSP_SCHEDULE_DELAY": "1234"}, 1.234), ({}, 5.0)]
)
def test_the_batch_worker_waits_the_delay_setting_or_its_default(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], seconds: float
) -> None:
    """OTEL_BSP_SCHEDULE_DELAY is how long spans wait for their batch: read off the worker's
    own clock (its timed waits) rather than a wall clock."""
    timed_waits: list[float] = []
    waiting = threading.Event()

    class RecordingEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            if timeout is not None:
                timed_waits.append(timeout)
                waiting.set()
            return super().wait(timeout)

    with monkeypatch.context() as patch:
        patch.setattr(threading, "Event", RecordingEvent)
        processor = build_batch_processor(Config.from_environ(environ), _Backend([]))
    try:
        assert waiting.wait(60), "the batch worker never waited"
    finally:
        processor.shutdown()
    assert timed_waits[0] == seconds
