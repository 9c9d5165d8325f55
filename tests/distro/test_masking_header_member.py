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
    "unit\x1fseparator",
    "del\x7fchar",
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


URL_MASKINGS = {
    **MASKINGS,
    "query-all": Masking(sites={Site.HTTP_QUERY_PARAMS: Rules((), mask_all=True)}),
    "query-regex": Masking(sites={Site.HTTP_QUERY_PARAMS: Rules(["i.*"])}),
}
URLS = [
    "http://127.0.0.1:8000/hello?id=1",
    "/hello?id=1&q=x#frag",
    "/hello?password=1",
    "/hello?p%61ssword=1",
    "/hello?to+ken=1&x",
    "/hello?my+secret=1",
    "http://user:pw@host/?id=1",
    f"/hello?id={TOKEN}",
    f"/hello?id={TOKEN[:8]}",
    "/hello?=1&&id",
    "/hello?id=1#password=2",
]


@settings(max_examples=400, deadline=None)
@given(
    label=st.sampled_from(sorted(URL_MASKINGS)),
    url=st.one_of(
        st.sampled_from(URLS),
        st.text(alphabet="/?#&=+%@:ab pwdsecrt_" + TOKEN[:8], max_size=40),
    ),
)
def test_a_url_let_through_is_one_masking_keeps(label: str, url: str) -> None:
    """A fresh `Masking` per example: `apply` answers from its text memo otherwise."""
    masking = URL_MASKINGS[label]
    fresh = Masking(masking.general, masking.sites, masking.token)
    if fresh._plain_url(url):
        assert fresh._apply(Site.HTTP_QUERY_PARAMS, url, "", lambda v: str(v)) == url
    assert fresh.apply(Site.HTTP_QUERY_PARAMS, url) == masking._apply(
        Site.HTTP_QUERY_PARAMS, url, "", lambda v: str(v)
    )


def test_secret_query_fields_are_still_masked() -> None:
    masking = Masking(token=TOKEN)
    site = Site.HTTP_QUERY_PARAMS
    assert masking.apply(site, "/a?id=1&password=x") == f"/a?id=1&password={MASKED}"
    assert masking.apply(site, "/a?id=1&p%61ss=x") == f"/a?id=1&p%61ss={MASKED}"
    assert masking.apply(site, f"/a?id={TOKEN}") == f"/a?id={MASKED}"
    assert masking.apply(site, "http://u:p@h/a?id=1") == f"http://{MASKED}@h/a?id=1"
    assert masking._plain_url("/a?id=1&q=2") and not masking._plain_url("/a?token=1")
