"""Secret masking: whole-key, case-insensitive regexes; defaults on a broken setting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumigo_opentelemetry.masking import DEFAULT_REGEXES, MASKED, MaskingRules

DEFAULT = MaskingRules.default()


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "passwd",
        "api_key",
        "KEYRING",
        "Client-Secret",
        "aws_credentials",
        "SSH_PASSPHRASE",
    ],
)
def test_default_rules_mask(key: str) -> None:
    assert DEFAULT.is_secret(key)


@pytest.mark.parametrize("key", ["PATH", "HOME", "user", "token", "authorization", "PYTHONPATH"])
def test_default_rules_leave_alone(key: str) -> None:
    assert not DEFAULT.is_secret(key)


def test_default_regexes_are_the_documented_ones() -> None:
    assert DEFAULT_REGEXES == (
        ".*pass.*",
        ".*key.*",
        ".*secret.*",
        ".*credential.*",
        ".*passphrase.*",
    )


def test_match_is_whole_key_and_case_insensitive() -> None:
    rules, warning = MaskingRules.from_setting('["token", "x-api-.*"]')
    assert warning is None
    assert rules.is_secret("TOKEN") and rules.is_secret("X-Api-Version")
    assert not rules.is_secret("tokens") and not rules.is_secret("my-token")
    assert not rules.is_secret("password")  # the setting replaces the defaults


def test_empty_list_masks_nothing() -> None:
    rules, warning = MaskingRules.from_setting("[]")
    assert warning is None and not rules.is_secret("password")


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_setting_means_defaults(raw: str | None) -> None:
    assert MaskingRules.from_setting(raw) == (DEFAULT, None)


@pytest.mark.parametrize(
    "raw", ["[not json", '"a string"', '{"a": 1}', "[1, 2]", '["(unclosed"]', '["*bad"]']
)
def test_broken_setting_warns_once_and_uses_defaults(raw: str) -> None:
    rules, warning = MaskingRules.from_setting(raw)
    assert rules == DEFAULT
    assert warning is not None and "LUMIGO_SECRET_MASKING_REGEX" in warning


def test_mask_nested_structures() -> None:
    doc = {
        "user": "ann",
        "password": "p",
        "nested": {"apiKey": {"deep": 1}, "items": [{"secret": "s", "ok": 2}]},
        "list": [1, "two"],
    }
    assert DEFAULT.mask(doc) == {
        "user": "ann",
        "password": MASKED,
        "nested": {"apiKey": MASKED, "items": [{"secret": MASKED, "ok": 2}]},
        "list": [1, "two"],
    }
    assert doc["password"] == "p"  # the input is not modified


def test_mask_json_text() -> None:
    masked = DEFAULT.mask_json_text('{"password": "p", "n": [1, {"key": 2}]}')
    assert json.loads(masked) == {"password": MASKED, "n": [1, {"key": MASKED}]}
    assert DEFAULT.mask_json_text("not json") == "not json"
    assert DEFAULT.mask_json_text("42") == "42"
    assert DEFAULT.mask_json_text('"password"') == '"password"'


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=8), max_size=10))
def test_mask_replaces_exactly_the_secret_keys(doc: dict[str, str]) -> None:
    masked = DEFAULT.mask(doc)
    assert masked.keys() == doc.keys()
    for key, value in doc.items():
        assert masked[key] == (MASKED if DEFAULT.is_secret(key) else value)
