"""The resource every span carries: service, SDK, distro, runtime, masked environ, ECS, k8s."""

from __future__ import annotations

import json
import platform
from importlib.metadata import version

import pytest

from lumigo_devtools.receiver import OtlpReceiver, ReceivedSpan
from lumigo_opentelemetry.version import __version__
from tests.helpers.distro_apps import (
    APPS,
    HangingServer,
    distro_lines,
    json_server,
    run_app,
    traced_env,
)

K8S = {
    "k8s.namespace.name": "shop",
    "k8s.pod.name": "orders-5d8f7c9b4-x2x7q",
    "k8s.pod.uid": "0d3f4c1e-7b2a-4c9d-8e6f-1a2b3c4d5e6f",
    "k8s.deployment.name": "orders",
    "k8s.container.name": "api",
}


def _one_span(receiver: OtlpReceiver, env: dict[str, str]) -> tuple[ReceivedSpan, str]:
    result = run_app("emit_spans.py", env, {"spans": 1, "flush": True})
    assert result.returncode == 0, result.stderr
    return receiver.wait_for_spans(1)[0], result.stderr


def test_resource_attributes(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(
        otlp_receiver,
        OTEL_RESOURCE_ATTRIBUTES=",".join(f"{k}={v}" for k, v in K8S.items()),
        DB_PASSWORD="hunter2",
        STRIPE_API_KEY="sk_live_abc",
        MY_Secret_Thing="s3cr3t",
        PLAIN_SETTING="visible",
    )

    span, _ = _one_span(otlp_receiver, env)

    res = span.resource
    assert res["service.name"] == "distro-test-app"
    assert res["telemetry.sdk.language"] == "python"
    assert res["telemetry.sdk.name"] == "opentelemetry"
    assert res["telemetry.sdk.version"] == version("opentelemetry-sdk")
    assert res["lumigo.distro.version"] == __version__
    assert res["process.runtime.name"] == "cpython"
    assert res["process.runtime.version"] == platform.python_version()
    assert res["process.runtime.description"].startswith(platform.python_version())
    for key, value in K8S.items():
        assert res[key] == value
    environ = json.loads(res["process.environ"])
    assert environ["PLAIN_SETTING"] == "visible"
    assert environ["OTEL_SERVICE_NAME"] == "distro-test-app"
    for secret in ("DB_PASSWORD", "STRIPE_API_KEY", "MY_Secret_Thing"):
        assert environ[secret] == "****"
    assert "hunter2" not in json.dumps(res)
    assert "cloud.platform" not in res


def test_service_name_from_resource_attributes_alone(otlp_receiver: OtlpReceiver) -> None:
    env = traced_env(otlp_receiver, OTEL_RESOURCE_ATTRIBUTES="service.name=from-attrs,team=a")
    del env["OTEL_SERVICE_NAME"]

    span, _ = _one_span(otlp_receiver, env)

    assert span.service == "from-attrs"
    assert span.resource["team"] == "a"


@pytest.mark.parametrize(
    ("setting", "masked", "visible", "warns"),
    [
        ('["plain_.*"]', ["PLAIN_SETTING"], ["DB_PASSWORD"], False),
        # matched at the start of the key (as upstream): "ALSO" also masks "ALSO_NOT"
        ('["^db_.*", "ALSO"]', ["DB_PASSWORD", "ALSO", "ALSO_NOT"], ["PLAIN_SETTING"], False),
        ('["^db_.*", "ALSO$"]', ["DB_PASSWORD", "ALSO"], ["PLAIN_SETTING", "ALSO_NOT"], False),
        # an invalid setting fails closed: every value is masked
        ("[not json", ["DB_PASSWORD", "PLAIN_SETTING"], [], True),
        ('["(unclosed"]', ["DB_PASSWORD", "PLAIN_SETTING"], [], True),
        ('{"a": 1}', ["DB_PASSWORD", "PLAIN_SETTING"], [], True),
    ],
)
def test_masking_regex_setting(
    otlp_receiver: OtlpReceiver, setting: str, masked: list[str], visible: list[str], warns: bool
) -> None:
    env = traced_env(
        otlp_receiver,
        LUMIGO_SECRET_MASKING_REGEX=setting,
        DB_PASSWORD="hunter2",
        PLAIN_SETTING="visible",
        ALSO="x",
        ALSO_NOT="y",
    )

    span, stderr = _one_span(otlp_receiver, env)

    environ = json.loads(span.resource["process.environ"])
    for key in masked:
        assert environ[key] == "****", key
    for key in visible:
        assert environ[key] != "****", key
    warnings = distro_lines(stderr, "WARNING")
    if warns:
        assert len(warnings) == 1
        assert "LUMIGO_SECRET_MASKING_REGEX" in warnings[0]
    else:
        assert warnings == []


def _ecs_routes(flavour: str) -> dict[str, tuple[int, bytes]]:
    return {
        "/v4/abc": (200, (APPS / f"ecs_container_{flavour}.json").read_bytes()),
        "/v4/abc/task": (200, (APPS / f"ecs_task_{flavour}.json").read_bytes()),
    }


ECS_EXPECTED = {
    "ec2": {
        "cloud.provider": "aws",
        "cloud.platform": "aws_ecs",
        "container.name": "orders-api",
        "container.id": "3f9c0e1d2b7a4c5e8f60123456789abcdef0123456789abcdef0123456789ab",
        "aws.ecs.container.arn": (
            "arn:aws:ecs:eu-west-1:123456789012:container/9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
        ),
        "aws.ecs.cluster.arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/shop",
        "aws.ecs.launchtype": "ec2",
        "aws.ecs.task.arn": (
            "arn:aws:ecs:eu-west-1:123456789012:task/shop/5d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"
        ),
        "aws.ecs.task.family": "orders",
        "aws.ecs.task.revision": "7",
        "cloud.region": "eu-west-1",
        "cloud.account.id": "123456789012",
        "cloud.availability_zone": "eu-west-1b",
    },
    "fargate": {
        "cloud.provider": "aws",
        "cloud.platform": "aws_ecs",
        "container.name": "billing-worker",
        "container.id": "c0ffee00aa11bb22cc33dd44ee55ff66-1122334455",
        "aws.ecs.container.arn": (
            "arn:aws:ecs:us-east-2:123456789012:container/payments/"
            "c0ffee00aa11bb22cc33dd44ee55ff66/4d3c2b1a-0f9e-4d8c-b7a6-958473625140"
        ),
        "aws.ecs.cluster.arn": "arn:aws:ecs:us-east-2:123456789012:cluster/payments",
        "aws.ecs.launchtype": "fargate",
        "aws.ecs.task.arn": (
            "arn:aws:ecs:us-east-2:123456789012:task/payments/c0ffee00aa11bb22cc33dd44ee55ff66"
        ),
        "aws.ecs.task.family": "billing",
        "aws.ecs.task.revision": "31",
        "cloud.region": "us-east-2",
        "cloud.account.id": "123456789012",
        "cloud.availability_zone": "us-east-2a",
    },
}


@pytest.mark.parametrize("flavour", ["ec2", "fargate"])
def test_ecs_attributes_from_the_metadata_endpoint(
    otlp_receiver: OtlpReceiver, flavour: str
) -> None:
    with json_server(_ecs_routes(flavour)) as base:
        env = traced_env(otlp_receiver, ECS_CONTAINER_METADATA_URI_V4=f"{base}/v4/abc")
        span, stderr = _one_span(otlp_receiver, env)

    for key, value in ECS_EXPECTED[flavour].items():
        assert span.resource.get(key) == value, key
    assert span.service == "distro-test-app"
    assert distro_lines(stderr, "WARNING") == []


@pytest.mark.parametrize(
    "routes",
    [
        {"/v4/abc": (500, b"{}"), "/v4/abc/task": (500, b"{}")},
        {"/v4/abc": (200, b"<html>not json"), "/v4/abc/task": (200, b"[]")},
        {"/v4/abc": (200, (APPS / "ecs_container_ec2.json").read_bytes())},  # no task doc
    ],
    ids=["http-500", "not-json", "task-404"],
)
def test_broken_ecs_endpoint_loses_only_the_ecs_attributes(
    otlp_receiver: OtlpReceiver, routes: dict[str, tuple[int, bytes]]
) -> None:
    with json_server(routes) as base:
        env = traced_env(otlp_receiver, ECS_CONTAINER_METADATA_URI_V4=f"{base}/v4/abc")
        span, stderr = _one_span(otlp_receiver, env)

    assert "cloud.platform" not in span.resource
    assert "aws.ecs.task.arn" not in span.resource
    assert span.service == "distro-test-app"
    assert span.resource["lumigo.distro.version"] == __version__
    warnings = distro_lines(stderr, "WARNING")
    assert len(warnings) == 1 and "ECS metadata" in warnings[0]


def test_hanging_ecs_endpoint_is_given_up_and_the_span_still_sent(
    otlp_receiver: OtlpReceiver,
) -> None:
    """The metadata endpoint accepts and never answers: the app still starts and its span
    arrives, without the ECS attributes. (What the wait costs is a benchmark figure.)"""
    with HangingServer() as hanging:
        env = traced_env(otlp_receiver, ECS_CONTAINER_METADATA_URI_V4=hanging.url("/v4/abc"))
        span, stderr = _one_span(otlp_receiver, env)
        assert hanging.accepted.is_set()

    assert "cloud.platform" not in span.resource
    assert span.service == "distro-test-app"
    warnings = distro_lines(stderr, "WARNING")
    assert len(warnings) == 1 and "did not answer" in warnings[0]
