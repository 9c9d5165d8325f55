"""Config.from_environ: every variable, its default, and its behaviour on bad values."""

from __future__ import annotations

import pytest

from lumigo_opentelemetry import config as config_module
from lumigo_opentelemetry.config import (
    DEFAULT_ATTRIBUTE_LENGTH_LIMIT,
    DEFAULT_DEPENDENCIES_ENDPOINT,
    DEFAULT_ENDPOINT,
    DEFAULT_EXPORT_TIMEOUT_SECONDS,
    Config,
)
from lumigo_opentelemetry.masking import Rules


def test_defaults() -> None:
    config = Config.from_environ({})
    assert config.switch_off is False
    assert config.token is None
    assert config.endpoint == DEFAULT_ENDPOINT and config.endpoint_is_default
    assert config.debug is False
    assert config.spandump_path is None
    assert config.report_dependencies is True
    assert config.should_report_dependencies is False  # no token
    assert config.attribute_length_limit == DEFAULT_ATTRIBUTE_LENGTH_LIMIT == 2048
    assert config.dependencies_endpoint == DEFAULT_DEPENDENCIES_ENDPOINT
    assert config.export_timeout == DEFAULT_EXPORT_TIMEOUT_SECONDS
    assert config.bsp_max_queue_size is None and config.bsp_max_export_batch_size is None
    assert config.bsp_schedule_delay_ms is None and config.bsp_export_timeout_ms is None
    assert config.masking.is_secret("DB_PASSWORD")
    assert config.warnings == ()


@pytest.mark.parametrize("raw", ["true", "TRUE", " 1 ", "yes", "on"])
def test_true_flags(raw: str) -> None:
    config = Config.from_environ({"LUMIGO_SWITCH_OFF": raw, "LUMIGO_DEBUG": raw})
    assert config.switch_off and config.debug and not config.warnings


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "off"])
def test_false_flags(raw: str) -> None:
    config = Config.from_environ({"LUMIGO_REPORT_DEPENDENCIES": raw})
    assert config.report_dependencies is False and not config.warnings


def test_empty_flag_means_default() -> None:
    config = Config.from_environ({"LUMIGO_REPORT_DEPENDENCIES": "", "LUMIGO_DEBUG": ""})
    assert config.report_dependencies is True and config.debug is False
    assert not config.warnings


def test_bad_flag_warns_and_uses_default() -> None:
    config = Config.from_environ({"LUMIGO_SWITCH_OFF": "perhaps"})
    assert config.switch_off is False
    assert len(config.warnings) == 1 and "LUMIGO_SWITCH_OFF" in config.warnings[0]


def test_token_and_spandump_are_stripped() -> None:
    config = Config.from_environ({"LUMIGO_TRACER_TOKEN": " t_1 ", "LUMIGO_DEBUG_SPANDUMP": " "})
    assert config.token == "t_1"
    assert config.spandump_path is None


def test_blank_token_is_no_token() -> None:
    assert Config.from_environ({"LUMIGO_TRACER_TOKEN": "  "}).token is None


def test_custom_endpoint() -> None:
    config = Config.from_environ({"LUMIGO_ENDPOINT": "http://collector:4318/v1/traces"})
    assert config.endpoint == "http://collector:4318/v1/traces"
    assert not config.endpoint_is_default


def test_bad_endpoint_warns_and_uses_default() -> None:
    config = Config.from_environ({"LUMIGO_ENDPOINT": "collector:4318"})
    assert config.endpoint == DEFAULT_ENDPOINT
    assert len(config.warnings) == 1 and "LUMIGO_ENDPOINT" in config.warnings[0]


@pytest.mark.parametrize(
    ("env", "due"),
    [
        ({"LUMIGO_TRACER_TOKEN": "t"}, True),
        ({"LUMIGO_TRACER_TOKEN": "t", "LUMIGO_REPORT_DEPENDENCIES": "false"}, False),
        ({"LUMIGO_TRACER_TOKEN": "t", "LUMIGO_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, False),
        ({"LUMIGO_TRACER_TOKEN": "t", "LUMIGO_DEPENDENCIES_ENDPOINT": "http://h/d"}, True),
        ({}, False),
    ],
)
def test_should_report_dependencies(env: dict[str, str], due: bool) -> None:
    assert Config.from_environ(env).should_report_dependencies is due


def test_dependencies_endpoint_override() -> None:
    config = Config.from_environ({"LUMIGO_DEPENDENCIES_ENDPOINT": "http://127.0.0.1:9/v1/deps"})
    assert config.dependencies_endpoint == "http://127.0.0.1:9/v1/deps"
    assert config.endpoint_is_default
    bad = Config.from_environ({"LUMIGO_DEPENDENCIES_ENDPOINT": "nowhere"})
    assert bad.dependencies_endpoint == DEFAULT_DEPENDENCIES_ENDPOINT and len(bad.warnings) == 1


@pytest.mark.parametrize(
    ("env", "limit", "warnings"),
    [
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100"}, 100, 0),
        (
            {
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "10",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "100",
            },
            10,
            0,
        ),
        ({"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "0"}, 2048, 1),
        (
            {
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "x",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5",
            },
            5,
            1,
        ),
        ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "1.5"}, 2048, 1),
    ],
)
def test_attribute_length_limit(env: dict[str, str], limit: int, warnings: int) -> None:
    config = Config.from_environ(env)
    assert config.attribute_length_limit == limit
    assert len(config.warnings) == warnings


def test_export_timeout_precedence_and_bad_values() -> None:
    both = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5", "OTEL_EXPORTER_OTLP_TIMEOUT": "7"}
    assert Config.from_environ(both).export_timeout == 2.5
    assert Config.from_environ({"OTEL_EXPORTER_OTLP_TIMEOUT": "7"}).export_timeout == 7.0
    for bad in ("0", "-1", "soon", "inf", "nan"):
        config = Config.from_environ({"OTEL_EXPORTER_OTLP_TIMEOUT": bad})
        assert config.export_timeout == DEFAULT_EXPORT_TIMEOUT_SECONDS, bad
        assert len(config.warnings) == 1, bad


def test_batch_processor_settings() -> None:
    config = Config.from_environ(
        {
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BSP_MAX_QUEUE_SIZE": "1000",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64",
            "OTEL_BSP_EXPORT_TIMEOUT": "2000",
        }
    )
    assert (config.bsp_schedule_delay_ms, config.bsp_max_queue_size) == (100, 1000)
    assert (config.bsp_max_export_batch_size, config.bsp_export_timeout_ms) == (64, 2000)
    assert not config.warnings


def test_batch_larger_than_queue_is_clamped_with_a_warning() -> None:
    config = Config.from_environ(
        {"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500"}
    )
    assert config.bsp_max_export_batch_size == 100
    assert len(config.warnings) == 1


def test_small_queue_implies_a_smaller_batch_silently() -> None:
    config = Config.from_environ({"OTEL_BSP_MAX_QUEUE_SIZE": "50"})
    assert config.bsp_max_export_batch_size == 50 and not config.warnings


@pytest.mark.parametrize(
    "name",
    [
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BSP_EXPORT_TIMEOUT",
    ],
)
@pytest.mark.parametrize("bad", ["lots", "-3", "0", "2.5"])
def test_bad_batch_processor_values_warn_and_use_the_sdk_default(name: str, bad: str) -> None:
    config = Config.from_environ({name: bad})
    assert len(config.warnings) == 1 and name in config.warnings[0]
    assert config.bsp_max_queue_size is None
    assert config.bsp_schedule_delay_ms is None and config.bsp_export_timeout_ms is None


def test_masking_setting_is_parsed_once() -> None:
    config = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '["^x$"]'})
    assert config.masking.general == Rules(["^x$"])
    assert config.masking.is_secret("X") and not config.masking.is_secret("password")
    bad = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": "[oops"})
    # fails closed: every key is masked, with one warning
    assert bad.masking.general.mask_all and len(bad.warnings) == 1


def test_disabled_instrumentations() -> None:
    config = Config.from_environ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": " Flask, pymongo ,"})
    assert config.disabled_instrumentations == frozenset({"flask", "pymongo"})
    assert not config.instrumentation_enabled("flask")
    assert config.instrumentation_enabled("botocore")
    everything = Config.from_environ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "*"})
    assert not everything.instrumentation_enabled("botocore")


def test_every_bad_value_gives_exactly_one_warning() -> None:
    env = {
        "LUMIGO_SWITCH_OFF": "?",
        "LUMIGO_DEBUG": "?",
        "LUMIGO_REPORT_DEPENDENCIES": "?",
        "LUMIGO_ENDPOINT": "ftp://x",
        "LUMIGO_SECRET_MASKING_REGEX": "{",
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "?",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "?",
        "OTEL_BSP_SCHEDULE_DELAY": "?",
        "OTEL_BSP_MAX_QUEUE_SIZE": "?",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "?",
        "OTEL_BSP_EXPORT_TIMEOUT": "?",
    }
    warnings = Config.from_environ(env).warnings
    assert len(warnings) == len(env)
    for name in env:
        assert sum(name in w for w in warnings) == 1, name


def test_get_config_parses_os_environ_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "_config", None)
    monkeypatch.setenv("LUMIGO_TRACER_TOKEN", "first")
    first = config_module.get_config()
    monkeypatch.setenv("LUMIGO_TRACER_TOKEN", "second")
    assert config_module.get_config() is first and first.token == "first"
