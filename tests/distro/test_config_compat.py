"""Config: the upstream settings, their defaults, and one warning + the default on bad values."""

from __future__ import annotations

import pytest

from lumigo_opentelemetry.config import (
    DEFAULT_CONNECTION_TIMEOUT_SECONDS,
    DEFAULT_ENDPOINT,
    DEFAULT_LOGS_ENDPOINT,
    Config,
    signal_url,
)


def test_upstream_defaults() -> None:
    config = Config.from_environ({})
    assert config.enable_traces is True and config.enable_logs is False
    assert config.logs_endpoint == DEFAULT_LOGS_ENDPOINT and config.logdump_path is None
    assert config.tag is None and config.container_name is None
    assert config.connection_timeout == DEFAULT_CONNECTION_TIMEOUT_SECONDS == 3.0
    assert config.auto_filter_empty_sqs is True
    assert config.filter_endpoints == config.filter_server_endpoints == ()
    assert config.sampler == "parentbased_always_on" and config.sampler_ratio == 1.0
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "http://otel-collector.observability:4318",
            "http://otel-collector.observability:4318/v1/traces",
        ),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://h/v1/traces", "https://h/v1/traces"),
        ("https://proxy/otlp/spans", "https://proxy/otlp/spans"),
    ],
)
def test_endpoint_base_urls_get_the_traces_path(raw: str, expected: str) -> None:
    config = Config.from_environ({"LUMIGO_ENDPOINT": raw})
    assert config.endpoint == expected and not config.warnings


def test_logs_follow_a_custom_traces_endpoint_unless_set() -> None:
    config = Config.from_environ({"LUMIGO_ENDPOINT": "http://collector:4318"})
    assert config.logs_endpoint == "http://collector:4318/v1/logs"
    config = Config.from_environ(
        {"LUMIGO_ENDPOINT": "http://collector:4318", "LUMIGO_LOGS_ENDPOINT": "http://logs:4318"}
    )
    assert config.logs_endpoint == "http://logs:4318/v1/logs"
    assert Config.from_environ({}).endpoint == DEFAULT_ENDPOINT
    assert signal_url("http://x", "/v1/logs") == "http://x/v1/logs"


def test_disable_instrumentation_aliases() -> None:
    config = Config.from_environ(
        {
            "LUMIGO_DISABLE_INSTRUMENTATION": "fast-api, boto3,grpcio,kafka-python",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "pymysql",
        }
    )
    for name in ("fastapi", "botocore", "pymysql", "grpc"):
        assert not config.instrumentation_enabled(name)
    assert config.instrumentation_enabled("flask")
    assert "kafka" in config.disabled_instrumentations
    # the README's library name and upstream's id name the same instrumentation here
    assert not Config.from_environ(
        {"LUMIGO_DISABLE_INSTRUMENTATION": "grpc"}
    ).instrumentation_enabled("grpc")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX": "not json"}, "LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX"),
        ({"LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_CLIENT": '["("]'}, "regex '(' is invalid"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        ({"LUMIGO_CONNECTION_TIMEOUT": "soon"}, "LUMIGO_CONNECTION_TIMEOUT"),
        ({"LUMIGO_ENABLE_LOGS": "maybe"}, "LUMIGO_ENABLE_LOGS"),
        ({"LUMIGO_LOGS_ENDPOINT": "ftp://x"}, "LUMIGO_LOGS_ENDPOINT"),
    ],
)
def test_bad_values_give_one_warning_and_the_default(env: dict[str, str], needle: str) -> None:
    config = Config.from_environ(env)
    assert len(config.warnings) == 1 and needle in config.warnings[0]
    default = Config.from_environ({})
    assert config.filter_endpoints == config.filter_client_endpoints == ()
    assert (config.sampler, config.sampler_ratio) in (
        (default.sampler, 1.0),
        ("traceidratio", 1.0),
    )
    assert config.connection_timeout == default.connection_timeout
    assert config.enable_logs is False and config.logs_endpoint == default.logs_endpoint


def test_parsed_values() -> None:
    config = Config.from_environ(
        {
            "LUMIGO_CONNECTION_TIMEOUT": "0.5",
            "LUMIGO_AUTO_FILTER_EMPTY_SQS": "false",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_SERVER": r'["\\/health", "^/ready$"]',
            "LUMIGO_DEBUG_LOGDUMP": " /tmp/logs.jsonl ",
        }
    )
    assert config.connection_timeout == 0.5 and config.auto_filter_empty_sqs is False
    assert (config.sampler, config.sampler_ratio) == ("parentbased_traceidratio", 0.25)
    assert [p.pattern for p in config.filter_server_endpoints] == [r"\/health", "^/ready$"]
    assert config.logdump_path == "/tmp/logs.jsonl" and not config.warnings
