"""Upstream's settings on real apps: LUMIGO_ENABLE_TRACES, LUMIGO_DISABLE_INSTRUMENTATION
(upstream's ids and its README's library names), LUMIGO_TAG, LUMIGO_CONTAINER_NAME,
LUMIGO_ENDPOINT given as a collector base URL, and the dependency report's body."""

from __future__ import annotations

import pytest

from lumigo_devtools.receiver import OtlpReceiver
from tests.distro.compat_apps import GET_HELLO, run_web
from tests.helpers.distro_apps import TOKEN, last_json, run_app, traced_env


def test_enable_traces_false_instruments_and_sends_nothing(otlp_receiver: OtlpReceiver) -> None:
    report = run_web(otlp_receiver, "flask", [GET_HELLO], LUMIGO_ENABLE_TRACES="false")
    assert report["calls"][0]["body"] == "hello"
    assert "LUMIGO_ENABLE_TRACES is false" in report["stderr"]
    # the app exited (its exit flush is done): nothing was sent
    assert otlp_receiver.spans() == [] and otlp_receiver.requests() == []


@pytest.mark.parametrize("name", ["fastapi", "fast-api", "FastAPI"])
def test_disable_instrumentation_accepts_upstreams_names(
    name: str, otlp_receiver: OtlpReceiver
) -> None:
    run_web(otlp_receiver, "fastapi", [GET_HELLO], LUMIGO_DISABLE_INSTRUMENTATION=name)
    (client,) = otlp_receiver.wait_for_spans(1, where=lambda s: s.kind == "CLIENT")
    assert client.scope == "opentelemetry.instrumentation.requests"  # requests still traced
    # FastAPI is not instrumented by the distro (the app has exited: all spans are here).
    # FastAPI >= 0.16x traces itself natively once a tracer provider exists (scope
    # `fastapi`); with our instrumentation off, that is left as FastAPI does it.
    ours = [
        s for s in otlp_receiver.spans() if s.scope.startswith("opentelemetry.") and s != client
    ]
    assert ours == []
    assert not any(
        "http.request.headers" in s.attributes for s in otlp_receiver.spans() if s.kind == "SERVER"
    )


def test_disable_instrumentation_takes_a_list(otlp_receiver: OtlpReceiver) -> None:
    report = run_web(
        otlp_receiver,
        "flask",
        [GET_HELLO],
        LUMIGO_DISABLE_INSTRUMENTATION="requests, flask,grpc,kafka-python",
    )
    assert report["calls"][0]["body"] == "hello"
    assert otlp_receiver.spans() == []


def test_tag_and_container_name_are_resource_attributes(otlp_receiver: OtlpReceiver) -> None:
    run_web(
        otlp_receiver,
        "flask",
        [GET_HELLO],
        LUMIGO_TAG="checkout-team",
        LUMIGO_CONTAINER_NAME="orders",
    )
    for span in otlp_receiver.wait_for_spans(2):
        assert span.resource["lumigo.tag"] == "checkout-team"
        assert span.resource["k8s.container.name"] == "orders"


def test_a_tag_with_a_semicolon_is_refused_with_a_warning(otlp_receiver: OtlpReceiver) -> None:
    report = run_web(otlp_receiver, "flask", [GET_HELLO], LUMIGO_TAG="a;b")
    assert "LUMIGO_TAG='a;b' contains ';'" in report["stderr"]
    assert all("lumigo.tag" not in s.resource for s in otlp_receiver.wait_for_spans(2))


@pytest.mark.parametrize("suffix", ["", "/", "/v1/traces"])
def test_lumigo_endpoint_as_a_collector_base_url_or_a_traces_url(
    suffix: str, otlp_receiver: OtlpReceiver
) -> None:
    # the Helm chart's example: `http://otel-collector.observability:4318`
    run_web(None, "flask", [GET_HELLO], LUMIGO_ENDPOINT=otlp_receiver.base_url + suffix)
    assert len(otlp_receiver.wait_for_spans(2)) == 2
    assert {r.path for r in otlp_receiver.requests()} == {"/v1/traces"}


def test_the_dependency_report_body_is_upstreams(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(
        None,
        LUMIGO_DEPENDENCIES_ENDPOINT=f"{otlp_receiver.base_url}/v1/dependencies",
        OTEL_BSP_SCHEDULE_DELAY="600000",
        LUMIGO_TAG="checkout-team",
        DB_PASSWORD="hunter2",
    )
    result = run_app("report_threads.py", env, argv=["wait-report"])
    assert result.returncode == 0, result.stderr
    assert last_json(result.stdout)["threads_at_start"]
    (report,) = otlp_receiver.wait_for_dependencies()
    assert set(report) == {"resourceAttributes", "dependencies"}
    resource = report["resourceAttributes"]
    assert resource["service.name"] == "distro-test-app"
    assert resource["lumigo.tag"] == "checkout-team"
    assert "process.environ" not in resource and "hunter2" not in str(report)
    names = {d["name"].lower() for d in report["dependencies"]}
    assert {"opentelemetry-sdk", "lumigo_opentelemetry"} <= names
    (request,) = [r for r in otlp_receiver.requests() if r.path == "/v1/dependencies"]
    assert request.headers["authorization"] == f"LumigoToken {TOKEN}"
