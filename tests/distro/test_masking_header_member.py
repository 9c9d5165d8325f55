"""`Masking.header_member`: the quick answer for one header gives exactly what `apply`
gives for it, or no answer; secrets are never let through by it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumigo_opentelemetry.masking import MASKED, Masking, Rules, Site

TOKEN = "t_0123456789abcdef0123"
MASKINGS = {
    "default": Masking(),
    "token": Masking(token=TOKEN),
    "all": Masking(sites={Site.HTTP_REQUEST_HEADERS: Rules((), mask_all=True)}),
    "user-regex": Masking(Rules(["x-req.*", ".*pass.*"])),
    "site-words": Masking(sites={Site.HTTP_REQUEST_HEADERS: Rules([".*request.*"])}),
}
SITES = [Site.HTTP_REQUEST_HEADERS, Site.HTTP_RESPONSE_HEADERS, Site.HTTP_QUERY_PARAMS]
NAMES = [
    "x-request-id",
    "traceparent",
    "user-agent",
    "host",
    "authorization",
    "cookie",
    "x-api-key",
    "x-session",
    "X-Request-Id",
    'we"ird',
    "accept",
]
VALUES = [
    "0af7651916cd43dd8448eb211c80319c",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "Mozilla/5.0 (X11; Linux) ünïcode",
    "",
    " leading space",
    ' {"password": "x"}',
    '{"password": "x"}',
    '["a"]',
    'say "hi"',
    "back\\slash",
    "tab\there",
    "line\u2028sep",
    "https://user:pw@example.com/x",
    "user:pw@example.com",
    "https://example.com/@me",
    f"Bearer {TOKEN}",
    "****",
    "gzip, deflate",
]


def _expected(masking: Masking, site: Site, name: str, value: str) -> str:
    return masking.apply(site, {name: value})[1:-1]


@pytest.mark.parametrize("label", sorted(MASKINGS))
def test_the_quick_member_is_apply_s_or_none(label: str) -> None:
    masking = MASKINGS[label]
    answered = 0
    for site in SITES:
        for name in NAMES:
            for value in VALUES:
                for _ in range(2):  # the name's verdict is remembered the second time
                    member = masking.header_member(site, name, value)
                    if member is not None:
                        assert member == _expected(masking, site, name, value), (site, name, value)
                        answered += 1
    if label in ("default", "token", "site-words"):
        assert answered  # the usual request id, trace context and user agent are answered


def test_secrets_are_left_to_apply() -> None:
    masking = Masking(token=TOKEN)
    site = Site.HTTP_REQUEST_HEADERS
    for name, value in [
        ("authorization", "Basic abc"),
        ("x-api-key", "abc"),
        ("host", "user:pw@example.com"),
        ("x-forwarded", f"{TOKEN}"),
        ("referer", "https://user:pw@example.com/"),
        ("x-body", '{"password": "hunter2"}'),
    ]:
        assert masking.header_member(site, name, value) is None
        assert MASKED in _expected(masking, site, name, value)


def test_the_usual_headers_are_answered() -> None:
    masking = Masking(token=TOKEN)
    site = Site.HTTP_REQUEST_HEADERS
    rid = "5f0c6e1a9b8d4c7e2a3b4c5d6e7f8091"
    assert masking.header_member(site, "x-request-id", rid) == f'"x-request-id":"{rid}"'
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert masking.header_member(site, "traceparent", parent) == f'"traceparent":"{parent}"'
    assert masking.header_member(Site.HTTP_QUERY_PARAMS, "x-request-id", rid) is None
    assert Masking(Rules(["x-r.*"])).header_member(site, "accept", "*/*") is None


@settings(max_examples=400, deadline=None)
@given(
    label=st.sampled_from(sorted(MASKINGS)),
    site=st.sampled_from(SITES),
    name=st.one_of(st.sampled_from(NAMES), st.text(max_size=12)),
    value=st.one_of(
        st.sampled_from(VALUES),
        st.text(max_size=40),
        st.text(alphabet='{}[]"\\:/@ ab\x00\n' + TOKEN[:4], max_size=30),
    ),
)
def test_any_header_is_answered_as_apply_answers(
    label: str, site: Site, name: str, value: str
) -> None:
    masking = MASKINGS[label]
    member = masking.header_member(site, name, value)
    if member is not None:
        assert member == _expected(masking, site, name, value)
