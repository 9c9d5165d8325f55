"""The CPU benchmark's traffic modes: `same` repeats wrk's request, `varied` sends each
request as a real server sees it (its own query id, request id and incoming trace),
the same requests in every run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.helpers.distro_apps import traced_env

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
DRIVER = BENCHMARKS / "cpu_driver.py"


@pytest.fixture(scope="module")
def driver() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import cpu_driver

        yield cpu_driver
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_same_traffic_is_the_one_request_wrk_sends(driver: ModuleType) -> None:
    parts = {repr(driver.request_parts(n)) for n in range(100)}
    assert parts == {repr(("", 40000, driver.HEADERS))}


def test_a_server_that_closes_connections_sees_a_new_client_port_per_request(
    driver: ModuleType,
) -> None:
    """gunicorn's sync worker (the WSGI apps' server in run.py) closes each connection:
    wrk's next request comes from a new port; the rest of the request stays the same."""
    for traffic in ("same", "varied"):
        parts = [driver.request_parts(n, traffic, per_request_connection=True) for n in range(300)]
        assert len({port for _q, port, _h in parts}) == 300
        kept = [driver.request_parts(n, traffic) for n in range(300)]
        assert [(q, h) for q, _p, h in parts] == [(q, h) for q, _p, h in kept]


def test_varied_traffic_differs_per_request_and_repeats_per_run(driver: ModuleType) -> None:
    requests = [driver.request_parts(n, "varied") for n in range(200)]
    assert requests == [driver.request_parts(n, "varied") for n in range(200)]
    headers = [dict(h) for _q, _p, h in requests]
    assert [q for q, _p, _h in requests] == [f"id={n}" for n in range(200)]
    assert {p for _q, p, _h in requests} == set(range(40000, 40050))
    assert len({h["user-agent"] for h in headers}) == 20
    assert len({h["x-request-id"] for h in headers}) == 200
    traced = [h.get("traceparent") for h in headers]
    assert all(t is None for t in traced[1::2])
    trace_ids = {t.split("-")[1] for t in traced[::2] if t}
    assert len(trace_ids) == 100
    for t in traced[::2]:
        version, trace_id, span_id, flags = t.split("-")
        assert (version, flags, len(trace_id), len(span_id)) == ("00", "01", 32, 16)
        assert int(trace_id, 16) and int(span_id, 16)


def _serve(app: str, traffic: str, receiver: OtlpReceiver, count: int) -> str:
    done = subprocess.run(
        [sys.executable, str(DRIVER), app, str(count), "10", "/hello", traffic],
        env=traced_env(receiver, OTEL_BSP_SCHEDULE_DELAY="3600000"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(BENCHMARKS),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("app", ["flask", "fastapi", "django"])
def test_varied_traffic_reaches_the_server_spans(app: str, driver: ModuleType) -> None:
    """Each traced request shows its own query, request id and (every second one) the
    caller's trace: the span path sees the traffic it is meant to see."""
    count = 20
    with OtlpReceiver() as receiver:
        out = _serve(app, "varied", receiver, count)
        assert f"requests={count} provider=TracerProvider traffic=varied" in out
        spans = receiver.wait_for_spans(
            driver.WARMUP + count, where=lambda s: s.kind == "SERVER", timeout=30
        )
    assert len(spans) == driver.WARMUP + count
    by_id = {}
    for span in spans:
        target = span.attributes.get("http.url") or span.attributes.get("http.target")
        by_id[int(target.rsplit("?id=", 1)[1])] = span
    assert sorted(by_id) == list(range(driver.WARMUP + count))
    for n, span in by_id.items():
        _query, port, headers = driver.request_parts(
            n, "varied", per_request_connection=app != "fastapi"
        )
        assert span.attributes["net.peer.port"] == port  # each request's own client
        sent = dict(headers)
        assert sent["x-request-id"] in span.attributes["http.request.headers"]
        if "traceparent" in sent:
            assert span.trace_id == sent["traceparent"].split("-")[1]
            assert span.parent_span_id == sent["traceparent"].split("-")[2]
        else:
            assert not span.parent_span_id


def test_an_unknown_traffic_mode_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(DRIVER), "flask", "1", "10", "/hello", "bursty"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(BENCHMARKS),
    )
    assert done.returncode != 0 and "traffic must be one of" in done.stderr
