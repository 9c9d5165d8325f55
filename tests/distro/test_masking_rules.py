"""The masking rules (`lumigo_opentelemetry.masking`): what is secret, the settings
(general, per site, `all`, invalid), the scrubs every value gets, the bounded cache,
and the time bound on user regexes. End-to-end on real spans: test_masking_sites.py."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import lumigo_opentelemetry.masking as masking_module
from lumigo_opentelemetry.masking import (
    CACHE_SIZE,
    CACHED_KEY_LENGTH,
    DEFAULT_REGEXES,
    MASKED,
    TEXT_MEMO_LENGTH,
    TEXT_MEMO_SIZE,
    Masking,
    Rules,
    Site,
)

DEFAULT = Masking.default()
TOKEN = "t_0123456789abcdef0123"
CATASTROPHIC = "(a|aa)+$"  # exponential backtracking on "aaa...a!"
EVIL_KEY = "a" * 64 + "!"


def masking(**env: str) -> Masking:
    built, warnings = Masking.from_environ(env)
    assert warnings == []
    return built


@pytest.mark.parametrize(
    "key",
    [
        # the upstream defaults
        "password",
        "DB_PASSWORD",
        "api_key",
        "KEYRING",
        "Client-Secret",
        "aws_credentials",
        "SSH_PASSPHRASE",
        # what real secrets are called
        "token",
        "access_token",
        "refresh_token",
        "GITHUB_TOKEN",
        "AWS_SESSION_TOKEN",
        "LUMIGO_TRACER_TOKEN",
        "authorization",
        "X-Auth-Token",
        "x-amz-security-token",
        "jwt",
        "session_id",
        "cookie",
        "Set-Cookie",
        "signature",
        "X-Hub-Signature-256",
    ],
)
def test_default_rules_mask(key: str) -> None:
    assert DEFAULT.is_secret(key)
    assert all(DEFAULT.is_secret(key, site) for site in Site)


@pytest.mark.parametrize("key", ["PATH", "HOME", "user", "PYTHONPATH", "content-type", "q"])
def test_default_rules_leave_alone(key: str) -> None:
    assert not DEFAULT.is_secret(key)


def test_default_regexes_keep_the_seed_and_add_the_real_names() -> None:
    assert DEFAULT_REGEXES == (
        ".*pass.*",
        ".*key.*",
        ".*secret.*",
        ".*credential.*",
        ".*passphrase.*",
        ".*token.*",
        ".*auth.*",
        ".*jwt.*",
        ".*session.*",
        ".*cookie.*",
        ".*signature.*",
    )


def test_match_is_at_the_start_of_the_key_and_case_insensitive() -> None:
    rules = masking(LUMIGO_SECRET_MASKING_REGEX='["token", "x-api-.*"]')
    assert rules.is_secret("TOKEN") and rules.is_secret("tokens")
    assert rules.is_secret("X-Api-Version")
    assert not rules.is_secret("my-token")
    assert not rules.is_secret("password")  # the setting replaces the defaults


def test_a_setting_mixing_words_and_regexes_masks_what_either_names() -> None:
    """`.*word.*` entries and other regexes in one setting: a key named by a word is
    secret even when no other regex of the setting matches it, and the other way round."""
    rules = masking(LUMIGO_SECRET_MASKING_REGEX='[".*token.*", "x-api-.*"]')
    assert rules.is_secret("my-token") and rules.is_secret("X-Api-Version")
    assert not rules.is_secret("user")
    out = json.loads(rules.apply(Site.ENVIRONMENT, {"MY_TOKEN": "t", "X-API-KEY": "k", "U": "u"}))
    assert out == {"MY_TOKEN": MASKED, "X-API-KEY": MASKED, "U": "u"}


def test_masking_settings_print_their_rules_and_never_the_token() -> None:
    """What a debug print of the settings (or of the Config holding them) shows: the
    rules in effect per site, `all` as written, and no tracer token."""
    rules = masking(
        LUMIGO_SECRET_MASKING_REGEX='["tenant"]',
        LUMIGO_SECRET_MASKING_REGEX_HTTP_QUERY_PARAMS="all",
        LUMIGO_TRACER_TOKEN=TOKEN,
    )
    shown = repr(rules)
    assert shown == (
        "Masking(general=Rules(['tenant']), sites={<Site.HTTP_QUERY_PARAMS: "
        "'HTTP_QUERY_PARAMS'>: Rules('all')})"
    )
    assert TOKEN not in shown


def test_empty_general_list_masks_no_key_but_still_scrubs_values() -> None:
    rules = masking(LUMIGO_SECRET_MASKING_REGEX="[]", LUMIGO_TRACER_TOKEN=TOKEN)
    assert not rules.is_secret("password")
    out = json.loads(rules.apply(Site.ENVIRONMENT, {"password": "p", "U": f"x{TOKEN}"}))
    assert out == {"password": "p", "U": f"x{MASKED}"}


@pytest.mark.parametrize("value", ["all", "ALL", " all "])
def test_all_masks_every_key(value: str) -> None:
    everything = masking(LUMIGO_SECRET_MASKING_REGEX=value)
    for site in Site:
        assert everything.is_secret("content-type", site)
    out = json.loads(everything.apply(Site.HTTP_REQUEST_BODIES, '{"a": 1, "b": [{"c": 2}]}'))
    assert out == {"a": MASKED, "b": MASKED}


@pytest.mark.parametrize(
    ("site", "name"),
    [
        (Site.HTTP_REQUEST_BODIES, "LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_BODIES"),
        (Site.HTTP_REQUEST_HEADERS, "LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS"),
        (Site.HTTP_RESPONSE_BODIES, "LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_BODIES"),
        (Site.HTTP_RESPONSE_HEADERS, "LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS"),
        (Site.HTTP_QUERY_PARAMS, "LUMIGO_SECRET_MASKING_REGEX_HTTP_QUERY_PARAMS"),
        (Site.ENVIRONMENT, "LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT"),
    ],
)
def test_a_per_site_setting_replaces_the_general_rules_there_only(site: Site, name: str) -> None:
    assert site.setting == name
    rules = masking(**{name: '["tenant"]'})
    assert rules.is_secret("tenant", site) and not rules.is_secret("password", site)
    for other in Site:
        if other is not site:
            assert rules.is_secret("password", other) and not rules.is_secret("tenant", other)
    assert masking(**{name: "all"}).is_secret("anything", site)


@pytest.mark.parametrize("raw", ["", "  ", "[]"])
def test_an_empty_per_site_setting_means_the_general_rules(raw: str) -> None:
    rules = masking(
        LUMIGO_SECRET_MASKING_REGEX='["tenant"]', LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT=raw
    )
    assert rules.is_secret("tenant", Site.ENVIRONMENT)
    assert not rules.is_secret("password", Site.ENVIRONMENT)


@pytest.mark.parametrize(
    "raw", ["[not json", '"a string"', '{"a": 1}', "[1, 2]", '["(unclosed"]', '["*bad"]']
)
@pytest.mark.parametrize(
    "name", ["LUMIGO_SECRET_MASKING_REGEX", "LUMIGO_SECRET_MASKING_REGEX_HTTP_QUERY_PARAMS"]
)
def test_an_invalid_setting_warns_once_and_fails_closed(name: str, raw: str) -> None:
    rules, warnings = Masking.from_environ({name: raw})
    assert len(warnings) == 1 and name in warnings[0]
    assert rules.is_secret("q", Site.HTTP_QUERY_PARAMS)
    assert rules.apply(Site.HTTP_QUERY_PARAMS, "/p?q=1&page=2") == f"/p?q={MASKED}&page={MASKED}"


def test_structures_are_masked_at_any_depth_and_not_modified() -> None:
    doc = {
        "user": "ann",
        "password": "p",
        "nested": {"apiKey": {"deep": 1}, "items": [{"jwt": "s", "ok": 2}]},
        "list": [1, "two"],
    }
    assert json.loads(DEFAULT.apply(Site.DB, doc)) == {
        "user": "ann",
        "password": MASKED,
        "nested": {"apiKey": MASKED, "items": [{"jwt": MASKED, "ok": 2}]},
        "list": [1, "two"],
    }
    assert doc["password"] == "p"


def test_mappings_that_are_not_dicts_are_masked_key_by_key() -> None:
    # headers often come as read-only or case-insensitive mappings (aiohttp's
    # CIMultiDictProxy, MappingProxyType), not dicts: masked as a dict is, not `****` whole
    headers = MappingProxyType({"Authorization": "Bearer x", "Accept": "*/*"})
    assert json.loads(DEFAULT.apply(Site.HTTP_REQUEST_HEADERS, headers)) == {
        "Authorization": MASKED,
        "Accept": "*/*",
    }
    doc = {"outer": MappingProxyType({"password": "p", "user": "ann"})}
    assert json.loads(DEFAULT.apply(Site.DB, doc)) == {"outer": {"password": MASKED, "user": "ann"}}


def test_json_inside_a_string_is_masked_as_json() -> None:
    message = json.dumps({"refresh_token": "r", "n": 1})
    out = json.loads(DEFAULT.apply(Site.HTTP_REQUEST_BODIES, {"MessageBody": message}))
    assert json.loads(out["MessageBody"]) == {"refresh_token": MASKED, "n": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('login failed for {"password": "hunter2"}', 'login failed for {"password": "****"}'),
        # a stray quote before the JSON does not hide its keys
        (
            'size 5" screen, {"user": "ann", "api_key": "hunter2"} (retrying)',
            'size 5" screen, {"user": "ann", "api_key": "****"} (retrying)',
        ),
        (
            'he said "hi" {"token": {"a": "hunter2"}, "n": 1}',
            'he said "hi" {"token": "****", "n": 1}',
        ),
        # pairs without braces; JSON text held by a JSON string in the text
        ('"password": "hunter2", "user": "ann"', '"password": "****", "user": "ann"'),
        ('body="{\\"jwt\\": \\"hunter2\\"}" sent', 'body="{\\"jwt\\":\\"****\\"}" sent'),
        ('saved "{\\n \\"jwt\\": \\"hunter2\\"\\n}"', 'saved "{\\"jwt\\":\\"****\\"}"'),
        # cut short by a recording limit
        ('retry {"session": "hunt', 'retry {"session": "****"'),
    ],
)
def test_json_after_other_text_has_its_secret_keys_masked(text: str, expected: str) -> None:
    """An attribute value, an exception message or a log line embedding JSON: the values of
    its secret keys are masked, the rest is kept as written; also in an SQL literal."""
    for site in (Site.DB, Site.HTTP_REQUEST_HEADERS, Site.ENVIRONMENT):
        assert json.loads(DEFAULT.apply(site, {"x-message": text})) == {"x-message": expected}
    assert json.loads(DEFAULT.apply(Site.DB, [[text]])) == [[expected]]
    sql = f"INSERT INTO log (id, line) VALUES (1, '{text}')"
    assert DEFAULT.apply(Site.DB, sql) == f"INSERT INTO log (id, line) VALUES (1, '{expected}')"


@pytest.mark.parametrize(
    "text",
    [
        'rows "[1, 2]" and "{ }"',
        ' rows "[1, 2]"',
        '"quoted" and "[1, 2]"',
        'path "C:\\x {"',
        'said "hi": no',
    ],
)
def test_text_with_quotes_and_no_secret_pair_is_kept_as_written(text: str) -> None:
    """Only text that starts like JSON is re-encoded as JSON; in other text nothing but a
    secret pair's value changes (a quoted list is not compacted, a quoted path is kept)."""
    assert json.loads(DEFAULT.apply(Site.DB, {"message": text})) == {"message": text}
    sql = f"SELECT '{text}' FROM t"
    assert DEFAULT.apply(Site.DB, sql) == sql


_EMBEDDING = st.sampled_from(
    [("", ""), ("login failed for ", " (retrying)"), ('size 5" ', ""), ('he said "hi" ', ' "end')]
)


@given(_EMBEDDING, st.deferred(lambda: _json_docs), st.sampled_from([None, 1]))
def test_no_secret_value_of_json_embedded_in_text_survives(
    around: tuple[str, str], doc: Any, indent: Any
) -> None:
    """JSON with secrets at any depth after other text (also with a stray quote in it):
    no secret value is exported, and the text around the JSON is kept."""
    before, after = around
    inner = json.dumps(doc, indent=indent)
    assume(_SECRET_VALUE in inner)
    text = before + inner + after
    (masked,) = json.loads(DEFAULT.apply(Site.DB, [text]))
    assert _SECRET_VALUE not in masked
    assert masked.startswith(before) and masked.endswith(after)
    sql = DEFAULT.apply(Site.DB, "INSERT INTO log VALUES ('" + text.replace("'", "''") + "')")
    assert _SECRET_VALUE not in sql


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://user:pw@db:5432/app", f"postgres://{MASKED}@db:5432/app"),
        (
            "see https://u:p@ss@host/x and ftp://anon@h",
            f"see https://{MASKED}@host/x and ftp://{MASKED}@h",
        ),
        ('{"url": "redis://:pw@cache:6379"}', '{"url":"redis://' + MASKED + '@cache:6379"}'),
        ("http://host/path?a=b@c", "http://host/path?a=b@c"),
        ("mailto me@example.com", "mailto me@example.com"),
    ],
)
def test_url_userinfo_is_masked_in_any_text(text: str, expected: str) -> None:
    assert DEFAULT.apply(Site.HTTP_REQUEST_BODIES, text) == expected


def test_the_tracer_token_is_masked_wherever_it_appears() -> None:
    rules = masking(LUMIGO_TRACER_TOKEN=TOKEN)
    for site in Site:
        assert TOKEN not in rules.apply(site, f"a {TOKEN} b")
        assert TOKEN not in rules.apply(site, {"harmless": [f"<{TOKEN}>"]})
    # a token cut short by a recording limit is masked too
    assert rules.apply(Site.HTTP_RESPONSE_BODIES, f"xx {TOKEN[:9]}") == f"xx {MASKED}"


@pytest.mark.parametrize("site", [Site.HTTP_REQUEST_BODIES, Site.HTTP_RESPONSE_BODIES, Site.DB])
def test_json_cut_short_still_has_its_secret_values_masked(site: Site) -> None:
    """A body recorded only in part is not valid JSON: its `"key": value` pairs are masked
    as text, the last one even when its value was cut."""
    cut = '{"password": "hunter2", "user": "ann", "api_key": "k-12'
    masked = f'{{"password": "{MASKED}", "user": "ann", "api_key": "{MASKED}"'
    assert DEFAULT.apply(site, cut) == masked


def test_a_cut_token_is_masked_from_six_characters_on() -> None:
    """A text cut by a recording limit may end in the token's beginning: six characters
    or more of it are masked; fewer are too short to tell from ordinary text."""
    rules = masking(LUMIGO_TRACER_TOKEN=TOKEN)
    assert rules.apply(Site.HTTP_RESPONSE_BODIES, f"xx {TOKEN[:6]}") == f"xx {MASKED}"
    assert rules.apply(Site.HTTP_RESPONSE_BODIES, f"xx {TOKEN[:-1]}") == f"xx {MASKED}"
    assert rules.apply(Site.HTTP_RESPONSE_BODIES, f"xx {TOKEN[:5]}") == f"xx {TOKEN[:5]}"


def test_a_whole_value_ending_like_the_token_is_not_taken_for_a_cut_one() -> None:
    """Only text a recording limit may have cut (a site's text) loses a trailing token
    beginning; a value inside a structure is whole and keeps it."""
    rules = masking(LUMIGO_TRACER_TOKEN=TOKEN)
    url = f"postgres://u:pw@db/{TOKEN[:8]}"
    assert json.loads(rules.apply(Site.ENVIRONMENT, {"DB_URL": url})) == {
        "DB_URL": f"postgres://{MASKED}@db/{TOKEN[:8]}"
    }


def test_equal_settings_are_equal_values_whatever_their_order() -> None:
    """Masking settings are values (part of the frozen Config): built from the same
    settings in any order they compare and hash alike."""
    sites = {
        "LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT": '["tenant"]',
        "LUMIGO_SECRET_MASKING_REGEX_HTTP_QUERY_PARAMS": "all",
        "LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_BODIES": '["card"]',
    }
    forward = masking(**sites)
    backward = masking(**dict(reversed(list(sites.items()))))
    assert forward == backward and hash(forward) == hash(backward)
    assert forward != masking(**{**sites, "LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT": '["org"]'})


def test_sql_literals_of_secret_columns_are_masked() -> None:
    sql = "UPDATE users SET password='hunter2', name = 'ann' WHERE api_key = \"k\" AND id=3"
    assert DEFAULT.apply(Site.DB, sql) == (
        f"UPDATE users SET password='{MASKED}', name = 'ann' WHERE api_key = '{MASKED}' AND id=3"
    )


def test_query_strings_keep_their_shape() -> None:
    url = "http://h/p?token=1&access_token=2&q=3&pass%77ord=4#frag"
    assert DEFAULT.apply(Site.HTTP_QUERY_PARAMS, url) == (
        f"http://h/p?token={MASKED}&access_token={MASKED}&q=3&pass%77ord={MASKED}#frag"
    )


def test_credential_headers_are_masked_whatever_the_rules() -> None:
    rules = masking(LUMIGO_SECRET_MASKING_REGEX='["nothing"]')
    headers = {
        "authorization": "Bearer x",
        "x-auth-token": "x",
        "x-amz-security-token": "x",
        "cookie": "c",
        "accept": "*/*",
    }
    for site in (Site.HTTP_REQUEST_HEADERS, Site.HTTP_RESPONSE_HEADERS):
        out = json.loads(rules.apply(site, headers))
        assert out == {**{k: MASKED for k in headers}, "accept": "*/*"}


def test_the_cache_of_answers_is_bounded() -> None:
    rules = Rules(DEFAULT_REGEXES)
    for i in range(CACHE_SIZE * 5 + 7):
        rules.is_secret(f"header-{i}")
    assert 0 < rules.cached_answers <= CACHE_SIZE
    # a key too long to be worth keeping is answered but never cached
    fresh = Rules(DEFAULT_REGEXES)
    assert fresh.is_secret("x" * CACHED_KEY_LENGTH + "password")
    assert fresh.cached_answers == 0


def test_a_catastrophic_user_pattern_costs_the_attribute_only() -> None:
    rules = masking(LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS=json.dumps([CATASTROPHIC]))
    headers = {EVIL_KEY: "v", "accept": "*/*"}
    # the attribute is masked as a whole (fail closed), again from the cache the next time
    assert rules.apply(Site.HTTP_REQUEST_HEADERS, headers) == MASKED
    assert rules.apply(Site.HTTP_REQUEST_HEADERS, headers) == MASKED
    # other attributes and other sites are untouched
    assert json.loads(rules.apply(Site.HTTP_RESPONSE_HEADERS, headers)) == headers
    assert json.loads(rules.apply(Site.HTTP_REQUEST_HEADERS, {"accept": "*/*"})) == {
        "accept": "*/*"
    }


def test_running_out_of_time_is_reported_once_per_site(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(masking_module, "_warned", set())  # as in a fresh process
    rules = masking(LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS=json.dumps([CATASTROPHIC]))
    with caplog.at_level(logging.WARNING, logger="lumigo-opentelemetry"):
        for _ in range(3):
            assert rules.apply(Site.HTTP_REQUEST_HEADERS, {EVIL_KEY: "v"}) == MASKED
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS" in warnings[0]


def test_the_time_bound_covers_the_whole_attribute_not_each_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user's regexes share one bound per attribute. Read off a clock on which every
    look at the time finds 25 s gone (no wall clock): with a 60 s bound three keys fit,
    the fourth finds the bound spent and the attribute is masked as a whole."""
    rules, _ = Masking.from_environ(
        {"LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT": '["x-(a|b)+$"]'}, time_bound=60.0
    )
    now = [0.0]

    def clock() -> float:
        now[0] += 25.0
        return now[0]

    three = {"k1": "v", "k2": "v", "k3": "v"}
    four = {"k4": "v", "k5": "v", "k6": "v", "k7": "v"}
    with monkeypatch.context() as patch:
        patch.setattr(time, "monotonic", clock)
        within, beyond = rules.apply(Site.ENVIRONMENT, three), rules.apply(Site.ENVIRONMENT, four)
    assert json.loads(within) == three
    assert beyond == MASKED


def test_keys_answered_before_cost_no_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules remember their answers: headers a service sees on every request are
    not matched again, so they never use up an attribute's time bound. On the same clock
    as above (25 s a look, a 60 s bound: three unknown keys fit), six keys fit when three
    of them were answered before."""
    rules, _ = Masking.from_environ(
        {"LUMIGO_SECRET_MASKING_REGEX_ENVIRONMENT": '["x-(a|b)+$"]'}, time_bound=60.0
    )
    now = [0.0]

    def clock() -> float:
        now[0] += 25.0
        return now[0]

    known = {"k1": "v", "k2": "v", "k3": "v"}
    six = {**known, "k4": "v", "k5": "v", "k6": "v"}
    with monkeypatch.context() as patch:
        patch.setattr(time, "monotonic", clock)
        first, again = rules.apply(Site.ENVIRONMENT, known), rules.apply(Site.ENVIRONMENT, six)
    assert json.loads(first) == known
    assert json.loads(again) == six


def test_json_text_keeps_its_non_ascii_characters() -> None:
    """A masked JSON body is re-encoded: its other characters stay as the app sent them
    (`café`, not `caf\\u00e9`)."""
    body = json.dumps({"password": "p", "name": "café 名前"}, ensure_ascii=False)
    out = DEFAULT.apply(Site.HTTP_REQUEST_BODIES, body, "application/json")
    assert out == '{"password":"' + MASKED + '","name":"café 名前"}'
    assert DEFAULT.apply(Site.ENVIRONMENT, {"LANG": "é"}) == '{"LANG":"é"}'


def test_a_key_the_rules_ran_out_of_time_on_counts_as_secret() -> None:
    """Capture sites that ask about one key (`Masking.is_secret`) fail closed too."""
    rules = masking(LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS=json.dumps([CATASTROPHIC]))
    assert rules.is_secret(EVIL_KEY, Site.HTTP_REQUEST_HEADERS)
    assert not rules.is_secret("accept", Site.HTTP_REQUEST_HEADERS)


def test_the_issues_pattern_never_hangs() -> None:
    # `(a+)+$` took 2.5 s per header with `re`; on a 64-character key it would never end
    rules = masking(LUMIGO_SECRET_MASKING_REGEX=json.dumps(["(a+)+$"]))
    assert rules.apply(Site.HTTP_REQUEST_HEADERS, {EVIL_KEY: "v"}) in (
        MASKED,
        json.dumps({EVIL_KEY: "v"}, separators=(",", ":")),
    )


def test_a_running_user_pattern_does_not_hold_other_threads() -> None:
    """The `regex` engine releases the GIL: while one thread is inside a slow match,
    another thread runs Python code to completion."""
    slow = Rules([CATASTROPHIC], time_bound=3.0)
    matching = threading.Event()
    outcome: list[str] = []

    def worker() -> None:
        matching.set()
        try:
            outcome.append(str(slow.is_secret("a" * 200 + "!")))
        except Exception as exc:  # the time bound: _OutOfTime
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=worker)
    thread.start()
    matching.wait()
    total = sum(i * i for i in range(200_000))  # needs the GIL throughout
    still_matching = thread.is_alive()
    thread.join()
    assert total > 0
    assert still_matching, "the main thread could only run after the match ended"
    assert outcome == ["_OutOfTime"]


# a value taken for JSON text (an object or list, or a JSON string holding one), which is
# masked inside: a JSON string that cannot be read, such as `"\x1f{`, fails closed
_HOLDS_JSON = re.compile(r'\s*[{\[]|"\s*[{\[]')


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=8), max_size=10))
@example({"": '"\x1f{'})  # found by Hypothesis: a control character after the quote
def test_exactly_the_secret_keys_are_masked(doc: dict[str, str]) -> None:
    masked = json.loads(DEFAULT.apply(Site.DB, doc))
    assert masked.keys() == doc.keys()
    for key, value in doc.items():
        if DEFAULT.is_secret(key):
            assert masked[key] == MASKED
        elif not _HOLDS_JSON.match(value) and '"' not in value:  # no JSON, no pair
            assert masked[key] == value


def test_without_the_regex_engine_a_catastrophic_pattern_fails_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "regex", None)  # `import regex` raises ImportError
    risky = Rules([CATASTROPHIC])
    assert risky.is_secret("harmless") and risky.is_secret(EVIL_KEY)
    plain = Rules(["x-.*", "[a-c]+_id"])
    assert plain.is_secret("X-Tenant") and plain.is_secret("abc_id")
    assert not plain.is_secret("y")


def test_without_the_regex_engine_grouped_patterns_are_judged_by_their_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Groups, including atomic ones `(?>...)`, are looked into: a safe grouped pattern
    masks only the keys it names, a nested repeat inside an atomic group fails closed."""
    monkeypatch.setitem(sys.modules, "regex", None)
    grouped = Rules(["(tenant|org)_id", "(?>x-)[a-z]+"])
    assert grouped.is_secret("Tenant_ID") and grouped.is_secret("X-Trace")
    assert not grouped.is_secret("user_id") and not grouped.is_secret("accept")
    nested = Rules(["(?>(a+))+$"])
    assert nested.is_secret("harmless") and nested.is_secret(EVIL_KEY)


def test_a_failing_masking_step_masks_the_whole_attribute() -> None:
    def broken(_value: object) -> str:
        raise RuntimeError("encoder fault")

    assert DEFAULT.apply(Site.ENVIRONMENT, {"HOME": "/root"}, encode=broken) == MASKED
    assert DEFAULT.apply(Site.DB, {"value": object()}) == MASKED  # not JSON-encodable
    deep: dict[str, Any] = {}  # nesting deeper than the interpreter's recursion limit
    current = deep
    for _ in range(sys.getrecursionlimit() + 10):
        current["n"] = current = {}
    assert DEFAULT.apply(Site.HTTP_REQUEST_BODIES, deep) == MASKED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("u:pw@127.0.0.1:8000", f"{MASKED}@127.0.0.1:8000"),
        ("u:p@ss@host/path?q=1", f"{MASKED}@host/path?q=1"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("/p?mail=a@b", "/p?mail=a@b"),
        # an address after the host, or in a URL with a scheme (left to the userinfo scrub)
        ("example.com/p?mail=ann@example.com", "example.com/p?mail=ann@example.com"),
        ("example.com?mail=ann@example.com", "example.com?mail=ann@example.com"),
        ("mailto:ann@example.com?cc=https://example.com/x", None),
    ],
)
def test_userinfo_in_a_bare_authority_is_masked(text: str, expected: str | None) -> None:
    """A client may send `Host: user:pw@host`: it lands in `http.host` and the like."""
    expected = expected or text
    assert DEFAULT.apply(Site.HTTP_QUERY_PARAMS, text) == expected
    headers = json.loads(DEFAULT.apply(Site.HTTP_REQUEST_HEADERS, {"host": text}))
    assert headers == {"host": expected}


def test_lists_of_strings_beside_a_secret_keep_their_values() -> None:
    """Masking a body walks it value by value: list items that are no secret come out whole."""
    body = {"password": "x", "tags": ["blue", "https://u:pw@h/", {"token": "y"}], "n": [1, None]}
    masked = json.loads(DEFAULT.apply(Site.HTTP_REQUEST_BODIES, json.dumps(body)))
    assert masked == {
        "password": MASKED,
        "tags": ["blue", f"https://{MASKED}@h/", {"token": MASKED}],
        "n": [1, None],
    }


def test_values_of_str_subclasses_are_masked_as_strings() -> None:
    """A header or document value may be a `str` subclass (an enum member, markup)."""

    class Text(str):
        pass

    value = {"url": Text("https://u:pw@h/"), "tags": [Text("blue")]}
    masked = json.loads(DEFAULT.apply(Site.HTTP_REQUEST_HEADERS, value))
    assert masked == {"url": f"https://{MASKED}@h/", "tags": ["blue"]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"url": "https://u:pw@host/"}', '{"url":"https://****@host/"}'),
        ('{"url": "https://u:pw\\u0040host/"}', '{"url":"https://****@host/"}'),
        ('{"pass\\u0077ord": "x", "n": 1}', '{"password":"****","n":1}'),
        (f'{{"note": "sent {TOKEN}"}}', '{"note":"sent ****"}'),
        ("42", "42"),
        ("[true, null]", "[true,null]"),
    ],
)
def test_json_bodies_with_no_secret_key_are_still_scrubbed(body: str, expected: str) -> None:
    """URL userinfo (also written as an escape), an escaped secret key and the tracer token
    in a JSON body are masked; a JSON scalar or list of scalars comes back as sent."""
    masking = Masking(token=TOKEN)
    assert masking.apply(Site.HTTP_REQUEST_BODIES, body, "application/json") == expected


def test_only_the_host_header_is_read_as_an_authority() -> None:
    """An e-mail address in another header (`From`, a user id) is data, not userinfo."""
    sent = {"host": "u:pw@shop.example", "from": "alice@example.com", "x-user": "bob@corp"}
    headers = json.loads(DEFAULT.apply(Site.HTTP_REQUEST_HEADERS, sent))
    assert headers == {
        "host": f"{MASKED}@shop.example",
        "from": "alice@example.com",
        "x-user": "bob@corp",
    }


# -- JSON text held by a string, cut short or otherwise not parseable ---------------------

CUT_DOC = '{"password": "hunter2", "user": "ann", "api_key": "k-12'
CUT_DOC_MASKED = f'{{"password": "{MASKED}", "user": "ann", "api_key": "{MASKED}"'


@pytest.mark.parametrize("site", list(Site))
def test_json_cut_short_inside_a_structure_is_masked_as_at_the_top(site: Site) -> None:
    """A string holding JSON text that does not parse (cut by the app, a recording limit
    upstream, a queue's size limit) gets its `"key": value` pairs masked at any depth, as
    the same text is at the top: in headers, documents, the environment, bodies."""
    doc = {"doc": CUT_DOC, "list": [CUT_DOC], "deeper": {"doc": " " + CUT_DOC}}
    out = DEFAULT.apply(site, doc)
    assert "hunter2" not in out and "k-12" not in out
    assert json.loads(out) == {
        "doc": CUT_DOC_MASKED,
        "list": [CUT_DOC_MASKED],
        "deeper": {"doc": " " + CUT_DOC_MASKED},
    }


@pytest.mark.parametrize("site", [Site.HTTP_REQUEST_BODIES, Site.HTTP_RESPONSE_BODIES, Site.DB])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_cut_short_inside_json_text_is_masked(site: Site, indent: int | None) -> None:
    """The same string inside a body or document given as JSON text, compact or not (the
    text is scanned before it is walked: the scan must not take it for clean)."""
    text = json.dumps({"doc": CUT_DOC, "n": 1}, indent=indent)
    out = DEFAULT.apply(site, text, "application/json")
    assert "hunter2" not in out and "k-12" not in out
    assert json.loads(out) == {"doc": CUT_DOC_MASKED, "n": 1}


@pytest.mark.parametrize("site", [Site.HTTP_REQUEST_BODIES, Site.HTTP_RESPONSE_BODIES, Site.DB])
def test_json_text_cut_short_around_a_json_string_is_masked_inside_it(site: Site) -> None:
    """A body cut short whose value is itself JSON text (an SQS message, a stored event):
    the pairs inside that value are masked too, also when the value itself was cut."""
    whole = json.dumps({"Message": json.dumps({"password": "hunter2", "n": 1}), "a": 1})
    out = DEFAULT.apply(site, whole[:-8])
    assert "hunter2" not in out
    inner_cut = json.dumps({"Message": CUT_DOC})[:-1]  # the outer string's quote cut off
    out = DEFAULT.apply(site, inner_cut)
    assert "hunter2" not in out and "k-12" not in out
    assert '\\"user\\": \\"ann\\"' in out  # what is not secret is kept as it was


def test_json_text_holding_json_text_is_masked() -> None:
    """A JSON body that is a JSON string of JSON text (encoded twice) is masked inside."""
    body = json.dumps(json.dumps({"password": "hunter2", "n": 1}))
    out = DEFAULT.apply(Site.HTTP_REQUEST_BODIES, body, "application/json")
    assert "hunter2" not in out
    assert json.loads(json.loads(out)) == {"password": MASKED, "n": 1}
    cut = json.dumps(CUT_DOC)
    out = DEFAULT.apply(Site.HTTP_RESPONSE_BODIES, cut, "application/json")
    assert json.loads(out) == CUT_DOC_MASKED
    # the same text as a value in a structure (an environment variable, a header)
    out = DEFAULT.apply(Site.ENVIRONMENT, {"CONFIG": body})
    assert "hunter2" not in out
    assert json.loads(json.loads(json.loads(out)["CONFIG"])) == {"password": MASKED, "n": 1}


def test_json_text_in_an_sql_literal_is_masked() -> None:
    """JSON text written into a column by a statement's literal (whole or cut short, in
    a `VALUES` list or `name = '...'`) has its pairs masked as anywhere else."""
    whole = """INSERT INTO t (id, doc) VALUES (1, '{"password": "hunter2", "n": 1}')"""
    assert DEFAULT.apply(Site.DB, whole) == (
        f"""INSERT INTO t (id, doc) VALUES (1, '{{"password":"{MASKED}","n":1}}')"""
    )
    cut = f"UPDATE t SET doc = '{CUT_DOC}' WHERE id = 2"
    assert DEFAULT.apply(Site.DB, cut) == f"UPDATE t SET doc = '{CUT_DOC_MASKED}' WHERE id = 2"
    plain = "SELECT '{not json}', '[1, 2]', 'it''s' FROM t"
    assert DEFAULT.apply(Site.DB, plain) == plain
    # beside a literal that is masked, the others are kept as written (a column list of no
    # secret column: without one, every literal of the rows would be masked)
    kept = """INSERT INTO t (a, b, c, d, e) VALUES ('{"n": 1}', '[1, 2]', 'it''s', 'a "b"', """
    mixed = kept + """'{"token": "t"}')"""
    assert DEFAULT.apply(Site.DB, mixed) == kept + f"""'{{"token":"{MASKED}"}}')"""


def test_without_the_regex_engine_a_pattern_too_deep_to_inspect_fails_closed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A pattern `re` compiles but whose groups nest too deep to be looked into (here a
    nested repeat under hundreds of alternations, catastrophic on `aaa...a!`) is taken
    for unsafe: it matches every key, with one warning, and is never run."""
    monkeypatch.setitem(sys.modules, "regex", None)
    depth = sys.getrecursionlimit() // 3
    pattern = "(ab|" * depth + "(a+)+" + ")" * depth + "$"
    with caplog.at_level(logging.WARNING, logger="lumigo-opentelemetry"):
        deep = Rules([pattern])
    assert deep.is_secret("harmless") and deep.is_secret(EVIL_KEY)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "exponential" in warnings[0]


@pytest.mark.parametrize(
    "pattern",
    [
        "(?=(a+)+$)",  # inside a lookahead
        "x|(?!(a|aa)+$)",  # inside a negative lookahead, in a branch
        "(?<=x)y|(?=(a+)+$)",  # next to a lookbehind
        "(x)?(?(1)b|(a+)+$)",  # in the `no` arm of a conditional group
        "(x)?(?(1)(a+)+$|b)",  # in its `yes` arm
    ],
)
def test_without_the_regex_engine_a_nested_repeat_in_an_assertion_fails_closed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, pattern: str
) -> None:
    """Lookarounds and conditional groups are looked into as other groups are: a nested
    repeat there is not run on the standard engine (it would hang the request on a key
    such as `aaa...a!`); the pattern matches every key and one warning names it."""
    monkeypatch.setitem(sys.modules, "regex", None)
    with caplog.at_level(logging.WARNING, logger="lumigo-opentelemetry"):
        risky = Rules([pattern])
    assert risky.is_secret("harmless") and risky.is_secret(EVIL_KEY)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and repr(pattern) in warnings[0]


def test_without_the_regex_engine_safe_assertions_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "regex", None)
    safe = Rules(["(?=x-)[a-z-]+", "(?<!_)id$", "(t)?(?(1)enant|org)_id"])
    assert safe.is_secret("X-Trace") and safe.is_secret("tenant_id") and safe.is_secret("org_id")
    assert not safe.is_secret("accept") and not safe.is_secret("user_id")


@pytest.mark.parametrize(
    ("cut", "masked"),
    [
        # a secret inside an object or a list of a cut text, compact or not
        (
            '{"outer": {"password": "hunter2", "n": 1',
            f'{{"outer": {{"password": "{MASKED}", "n": 1',
        ),
        ('{"outer":{"password":"hunter2","n":1', f'{{"outer":{{"password":"{MASKED}","n":1'),
        ('{"a": [{"token": "hunter2"}, {"n": 2', f'{{"a": [{{"token": "{MASKED}"}}, {{"n": 2'),
        # a secret key whose value is an object or a list: the whole value, also when cut
        ('{"password": {"a": "hunter2"}, "n": 1', f'{{"password": "{MASKED}", "n": 1'),
        ('{"keys": ["hunter2", {"b": "c"}], "n": 1', f'{{"keys": "{MASKED}", "n": 1'),
        ('{"n": 1, "secret": {"a": ["hunter2", "}', f'{{"n": 1, "secret": "{MASKED}"'),
        # JSON text held by a string in a list of a cut text
        (
            '{"msgs": ["{\\"password\\": \\"hunter2\\"}", "x',
            '{"msgs": ["{\\"password\\":\\"' + MASKED + '\\"}", "x',
        ),
    ],
)
def test_json_cut_short_masks_secrets_inside_objects_and_lists(cut: str, masked: str) -> None:
    out = DEFAULT.apply(Site.HTTP_REQUEST_BODIES, cut)
    assert "hunter2" not in out
    assert out == masked


_SECRET_VALUE = "Hunter2x"
_json_docs = st.recursive(
    st.one_of(st.integers(0, 99), st.sampled_from(["ann", "a b", "{x", "[1"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["user", "n", "items", "doc"]), inner, max_size=3).map(
            lambda d: {**d, "password": _SECRET_VALUE}
        ),
        # JSON text held by a string (compact or indented), itself holding a secret
        st.tuples(
            st.dictionaries(st.sampled_from(["user", "n"]), inner, max_size=2),
            st.sampled_from([None, 2]),
        ).map(lambda d: json.dumps({**d[0], "api_key": _SECRET_VALUE}, indent=d[1])),
    ),
    max_leaves=8,
)


@given(_json_docs, st.integers(0, 10_000), st.sampled_from([None, 1]))
def test_no_secret_value_survives_json_cut_anywhere(doc: Any, cut: int, indent: Any) -> None:
    """JSON text with secrets at any depth (also in JSON text held by strings), cut at
    any point: no secret value is left in what is exported."""
    text = json.dumps(doc, indent=indent)
    assume(_SECRET_VALUE in text)
    text = text[: cut % (len(text) + 1)]
    for site in (Site.HTTP_REQUEST_BODIES, Site.DB):
        assert _SECRET_VALUE not in DEFAULT.apply(site, text)
    assert _SECRET_VALUE not in DEFAULT.apply(Site.HTTP_REQUEST_HEADERS, {"x-doc": text})


# strings that masking may change inside a document (JSON in text, JSON text, escapes,
# userinfo, the token) and strings it keeps
_LEAVES = st.one_of(
    st.sampled_from(
        [
            'login failed for {"password": "x"}',
            '"api_key": 1',
            'x "[1, 2]"',
            "[1, 2]",
            "{ }",
            "[ 1 ]",
            '{"token": "t", "n": [1, 2]}',
            '"[1, 2]"',
            " [3]",
            "{x",
            "https://u:p@host/x",
            "me@example.com",
            TOKEN,
            "a\\b\n",
            "café",
        ]
    ),
    st.text(alphabet='ab "{}[]:\\@/', max_size=12),
    st.integers(0, 9),
)
_DOCS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["user", "n", "password", "doc", 'say "jwt"']), inner),
    ),
    max_leaves=8,
)
TOKENED = Masking(token=TOKEN)


@given(st.one_of(st.lists(_DOCS, max_size=3), st.dictionaries(st.just("doc"), _DOCS)))
def test_json_text_is_masked_as_the_document_it_holds(doc: Any) -> None:
    """The same document captured as JSON text (a body, a statement) or as an object (a
    parameter, a header map) is exported the same: a document with nothing to mask takes
    a shortcut that reads the text once, and it must agree with masking value by value."""
    for indent in (None, 1):
        text = json.dumps(doc, indent=indent, ensure_ascii=False)
        for rules in (DEFAULT, TOKENED):
            for site in (Site.DB, Site.HTTP_RESPONSE_BODIES):
                assert rules.apply(site, text) == rules.apply(site, doc)


@given(_DOCS)
def test_a_body_cut_in_its_last_value_is_masked_as_the_whole_body(note: Any) -> None:
    """A body recorded only in part (cut inside its last value) shows what comes before
    the cut as the whole body does: masked and re-encoded the same way."""
    whole = json.dumps({"note": note, "tail": "zzzzzz"}, separators=(",", ":"), ensure_ascii=False)
    cut = whole[:-4]
    for rules in (DEFAULT, TOKENED):
        masked_whole = rules.apply(Site.HTTP_REQUEST_BODIES, whole)
        masked_cut = rules.apply(Site.HTTP_REQUEST_BODIES, cut)
        assert masked_cut.rpartition(',"tail":')[0] == masked_whole.rpartition(',"tail":')[0]


def test_user_patterns_run_on_keys_never_on_values() -> None:
    """A value the user's pattern would take exponential time on costs nothing: only keys
    are matched, so the attribute is kept rather than masked as a whole."""
    slow = Masking(Rules([CATASTROPHIC]))
    for doc in ([EVIL_KEY], {"n": [EVIL_KEY, 1]}):
        text = json.dumps(doc, separators=(",", ":"))
        assert slow.apply(Site.DB, text) == text
        assert slow.apply(Site.DB, doc) == text


def test_json_encoded_twice_in_a_value_is_masked_whatever_it_starts_with() -> None:
    """A header or environment value holding JSON text encoded twice (a JSON string of a
    list whose first item is no object) has its secret keys masked inside."""
    value = json.dumps(json.dumps([1, {"password": "hunter2"}]))
    out = json.loads(DEFAULT.apply(Site.ENVIRONMENT, {"CONFIG": value}))["CONFIG"]
    assert json.loads(json.loads(out)) == [1, {"password": MASKED}]


def test_a_string_cut_inside_the_json_it_holds_is_masked_and_left_open() -> None:
    """A body cut inside a string that holds JSON after other text: the secret inside is
    masked, what was recorded of the rest is kept, and the string stays cut (unclosed)."""
    cut = '{"msg": "login {\\"password\\": \\"hunter2\\", \\"n\\": 12'
    assert DEFAULT.apply(Site.HTTP_REQUEST_BODIES, cut) == (
        '{"msg": "login {\\"password\\": \\"' + MASKED + '\\", \\"n\\": 12'
    )


def test_json_encoded_twice_after_other_text_is_encoded_as_everywhere_else() -> None:
    """A JSON string of JSON text inside other text is re-encoded compactly, as JSON text
    held by any value is (the same list reads the same in every attribute)."""
    held = json.dumps(json.dumps(["a", "b"], indent=1))
    compact = json.dumps(json.dumps(["a", "b"], separators=(",", ":")))
    out = json.loads(DEFAULT.apply(Site.DB, {"m": "saved " + held, "whole": held}))
    assert out == {"m": "saved " + compact, "whole": compact}


def test_a_repeated_text_is_masked_the_same_each_time() -> None:
    """`apply` remembers short texts it masked nothing in: a repeated body gives the
    same text, a secret in a repeated body is masked every time, and other rules
    (another `Masking`) decide for themselves."""
    plain = '{"message": "hello", "items": [1, 2, 3]}'
    secret = '{"password": "hunter2", "user": "me"}'
    json_body = Site.HTTP_RESPONSE_BODIES
    first = [DEFAULT.apply(json_body, text, "application/json") for text in (plain, secret)]
    again = [DEFAULT.apply(json_body, text, "application/json") for text in (plain, secret)]
    assert (
        first
        == again
        == ['{"message":"hello","items":[1,2,3]}', f'{{"password":"{MASKED}","user":"me"}}']
    )
    strict = masking(LUMIGO_SECRET_MASKING_REGEX='[".*message.*"]')
    assert (
        strict.apply(json_body, plain, "application/json")
        == f'{{"message":"{MASKED}","items":[1,2,3]}}'
    )
    assert DEFAULT.apply(json_body, plain, "text/plain") == '{"message":"hello","items":[1,2,3]}'


def test_the_texts_remembered_are_short_bounded_and_hold_no_secret() -> None:
    """The memo of `apply` keeps repeated short texts only: never one in which something
    was masked (its key would keep the secret in memory), never a long body, and never
    more than `TEXT_MEMO_SIZE` texts however many distinct ones go through."""
    fresh = Masking.default()
    body = Site.HTTP_RESPONSE_BODIES
    for i in range(10):
        fresh.apply(body, f'{{"n": {i}}}', "application/json")
    assert fresh.remembered_texts == 10
    fresh.apply(body, '{"n": 1}', "application/json")  # seen: answered from the memo
    assert fresh.remembered_texts == 10
    fresh.apply(body, '{"password": "hunter2"}', "application/json")
    fresh.apply(body, '{"n": "' + "x" * TEXT_MEMO_LENGTH + '"}', "application/json")
    assert fresh.remembered_texts == 10
    for i in range(TEXT_MEMO_SIZE + 1 - fresh.remembered_texts):  # one more than the bound
        fresh.apply(Site.DB, f"SELECT * FROM t WHERE id = {i}")
    assert 0 < fresh.remembered_texts <= TEXT_MEMO_SIZE
    for i in range(TEXT_MEMO_SIZE * 3):
        fresh.apply(Site.DB, f"SELECT * FROM u WHERE id = {i}")
    assert 0 < fresh.remembered_texts <= TEXT_MEMO_SIZE
