"""The lean WSGI path's shortcuts give what the general functions give.

`wsgi_headers_attribute` against `headers_attribute(wsgi_request_headers(...))`, the
Flask response-body memo against `body_attribute`, `Extractor.wsgi` against
`propagate.extract`, and `CurrentContext` against the OpenTelemetry context API.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.masking import MASKED

CONFIG = Config.from_environ({})

_HEADER_KEYS = st.sampled_from(
    [
        "HTTP_HOST",
        "HTTP_USER_AGENT",
        "HTTP_ACCEPT",
        "HTTP_COOKIE",
        "HTTP_X_API_KEY",
        "HTTP_X_REQUEST_ID",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "REQUEST_METHOD",
        "wsgi.url_scheme",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(["", "a", "user:pw@host", '{"password": "x"}', "1"]),
    st.text(max_size=8),
    st.integers(),
)


def _general(environ: Dict[str, Any], config: Config = CONFIG, keep: bool = False) -> str:
    return payloads.headers_attribute(payloads.wsgi_request_headers(environ, keep), config)


@given(st.dictionaries(_HEADER_KEYS, _VALUES, max_size=8))
def test_wsgi_headers_attribute_is_the_general_text(environ: Dict[str, Any]) -> None:
    assert payloads.wsgi_headers_attribute(environ, CONFIG) == _general(environ)


@given(st.dictionaries(_HEADER_KEYS, _VALUES, max_size=8))
def test_wsgi_headers_attribute_keeping_empty_content_is_the_general_text(
    environ: Dict[str, Any],
) -> None:
    """As Django's `request.headers` has them: an empty content type or length kept."""
    text = payloads.wsgi_headers_attribute(environ, CONFIG, keep_empty_content=True)
    assert text == _general(environ, keep=True)


def test_an_empty_content_type_is_kept_when_asked() -> None:
    environ = {"HTTP_HOST": "h", "CONTENT_TYPE": "", "CONTENT_LENGTH": ""}
    kept = payloads.wsgi_headers_attribute(environ, CONFIG, keep_empty_content=True)
    assert json.loads(kept) == {"host": "h", "content-type": "", "content-length": ""}
    assert json.loads(payloads.wsgi_headers_attribute(environ, CONFIG)) == {"host": "h"}
    # and again, from the memo when it keeps the text
    assert payloads.wsgi_headers_attribute(dict(environ), CONFIG) == _general(environ)


def test_wsgi_headers_follow_each_calls_masking_and_limit() -> None:
    environ = {"HTTP_HOST": "h", "HTTP_X_THING": "value-" + "v" * 40}
    short = Config.from_environ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "10"})
    strict = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '[".*thing.*"]'})
    assert payloads.wsgi_headers_attribute(environ, CONFIG) == _general(environ)
    assert payloads.wsgi_headers_attribute(environ, short) == _general(environ, short)
    assert len(payloads.wsgi_headers_attribute(environ, short)) == 10
    masked = payloads.wsgi_headers_attribute(environ, strict)
    assert json.loads(masked)["x-thing"] == MASKED


def test_wsgi_header_texts_with_a_masked_value_are_not_remembered() -> None:
    payloads._WSGI_HEADER_TEXTS.clear()
    environ = {"HTTP_AUTHORIZATION": "Bearer secret-value", "HTTP_HOST": "h"}
    text = payloads.wsgi_headers_attribute(environ, CONFIG)
    assert json.loads(text)["authorization"] == MASKED
    assert not payloads._WSGI_HEADER_TEXTS
    assert "secret-value" not in repr(payloads._WSGI_HEADER_TEXTS)


def test_wsgi_header_memo_is_bounded() -> None:
    for number in range(payloads._HEADER_TEXTS_SIZE * 2 + 3):
        payloads.wsgi_headers_attribute({"HTTP_X_REQUEST_ID": str(number)}, CONFIG)
    assert len(payloads._WSGI_HEADER_TEXTS) <= payloads._HEADER_TEXTS_SIZE


# --- the Flask response body ------------------------------------------------------------


def _response(body: bytes, content_type: str) -> Any:
    from werkzeug.wrappers import Response

    return Response(body, content_type=content_type)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"message":"hello"}', "application/json"),
        (b'{"password":"hunter2"}', "application/json"),
        (b"\x00\x01binary", "application/octet-stream"),
        (b"", "text/plain"),
        (b"x" * 5000, "text/plain"),
        ("caf\u00e9".encode("latin-1"), "text/plain; charset=latin-1"),
    ],
)
def test_response_body_twice_is_body_attribute(body: bytes, content_type: str) -> None:
    from lumigo_opentelemetry.instrumentations.flask import _response_body

    limit = CONFIG.attribute_length_limit
    expected = payloads.body_attribute(
        body[:limit],
        CONFIG,
        content_type,
        total_size=len(body),
        site=payloads.Site.HTTP_RESPONSE_BODIES,
    )
    assert _response_body(_response(body, content_type), CONFIG) == expected
    assert _response_body(_response(body, content_type), CONFIG) == expected


def test_masked_response_bodies_are_not_remembered() -> None:
    from lumigo_opentelemetry.instrumentations import flask as lumigo_flask

    lumigo_flask._BODY_TEXTS.clear()
    text = lumigo_flask._response_body(
        _response(b'{"password":"hunter2"}', "application/json"), CONFIG
    )
    assert text is not None and MASKED in text
    assert not lumigo_flask._BODY_TEXTS


def test_streamed_and_passthrough_responses_are_not_read() -> None:
    from werkzeug.wrappers import Response

    from lumigo_opentelemetry.instrumentations.flask import _response_body

    def chunks() -> Any:
        raise AssertionError("read")
        yield b""  # pragma: no cover

    assert _response_body(Response(chunks()), CONFIG) is None
    passthrough = Response([b"data"], direct_passthrough=True)
    assert _response_body(passthrough, CONFIG) is None


# --- propagation and the current context ------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"HTTP_TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"HTTP_BAGGAGE": "k=v"},
        {"HTTP_TRACEPARENT": "garbage"},
    ],
)
def test_wsgi_extraction_is_propagate_extract(environ: Dict[str, str]) -> None:
    from opentelemetry import baggage, propagate, trace
    from opentelemetry.instrumentation.wsgi import wsgi_getter

    from lumigo_opentelemetry.instrumentations._propagation import Extractor

    def seen(context: Any) -> Any:
        return (
            trace.get_current_span(context).get_span_context(),
            dict(baggage.get_all(context)),
        )

    extractor = Extractor(wsgi_getter, asgi=False)
    expected = seen(propagate.extract(environ, getter=wsgi_getter))
    assert seen(extractor.wsgi(environ)) == expected
    assert seen(extractor(environ)) == expected


def test_current_context_is_the_apis() -> None:
    from opentelemetry import context, trace
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.instrumentations._otel_context import CurrentContext

    current = CurrentContext()
    assert current._variable is not None  # the default runtime context: the fast path
    found, server = current.current()
    assert found is context.get_current() and server
    assert current.get() is context.get_current()
    span = TracerProvider().get_tracer("t").start_span("s")
    parent = context.set_value("other", 1)
    token = current.attach(span, parent)
    try:
        assert trace.get_current_span() is span
        assert context.get_value("other") == 1
        found, server = current.current()
        assert found is context.get_current() and not server
        assert current.get() is context.get_current()
    finally:
        current.detach(token)
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_current_context_follows_a_replaced_runtime_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import context, trace
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.instrumentations._otel_context import CurrentContext

    current = CurrentContext()
    monkeypatch.setattr(context, "_RUNTIME_CONTEXT", ContextVarsRuntimeContext())
    span = TracerProvider().get_tracer("t").start_span("s")
    token = current.attach(span, context.get_current())
    try:
        assert trace.get_current_span() is span  # set through the API's new runtime
        assert not current.current()[1]
        assert trace.get_current_span(current.get()) is span  # read through it
    finally:
        current.detach(token)
    assert current.current()[1]


def test_a_failed_detach_is_logged_by_the_api(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.instrumentations._otel_context import CurrentContext

    current = CurrentContext()
    span = TracerProvider().get_tracer("t").start_span("s")
    token = current.attach(span, Context())
    current.detach(token)
    current.detach(token)  # a token used twice: the API logs it, nothing raises
    assert "Failed to detach context" in caplog.text


# --- header objects put together from their members ---------------------------------------

_NAMES = st.sampled_from(
    ["host", "user-agent", "cookie", "x-api-key", "x-thing", "authorization", "accept", "a"]
)
_HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "x",
            "user:pw@example.com",
            '{"password": "p", "ok": 1}',
            'failed for {"token": "t"}',
            "https://u:p@h/p?q=1",
            "t_secret_token_value",
            "value with t_secret_token_value inside",
            "\u00e9\u4e2d\x00",
        ]
    ),
    st.text(max_size=12),
)
_MASKINGS = [
    Config.from_environ({}),
    Config.from_environ({"LUMIGO_TRACER_TOKEN": "t_secret_token_value"}),
    Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '[".*thing.*"]'}),
    Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX_HTTP_REQUEST_HEADERS": "all"}),
    Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '["^x-.*", "a"]'}),
]


@given(
    st.dictionaries(_NAMES, _HEADER_VALUES, max_size=6),
    st.sampled_from(range(len(_MASKINGS))),
    st.sampled_from([payloads.Site.HTTP_REQUEST_HEADERS, payloads.Site.HTTP_RESPONSE_HEADERS]),
)
def test_composed_header_text_is_the_whole_objects_masking(
    merged: Dict[str, str], which: int, site: payloads.Site
) -> None:
    masking = _MASKINGS[which].masking
    expected = masking.apply(site, merged)
    for _ in range(2):  # first seen, then from the members remembered
        composed = payloads._composed(merged, masking, site) if merged else None
        assert composed is None or composed == expected
        limit = _MASKINGS[which].attribute_length_limit
        assert payloads._headers_text(list(merged.items()), masking, limit, site) == expected


def test_members_with_a_secret_are_kept_by_name_only() -> None:
    config = Config.from_environ({"LUMIGO_TRACER_TOKEN": "t_secret_token_value"})
    site = payloads.Site.HTTP_REQUEST_HEADERS
    headers = {
        "cookie": "session=abc123",
        "x-note": "carries t_secret_token_value",
        "accept": "*/*",
    }
    text = payloads._headers_text(list(headers.items()), config.masking, 2048, site)
    assert json.loads(text) == {"cookie": MASKED, "x-note": f"carries {MASKED}", "accept": "*/*"}
    memos = payloads._FRAGMENTS[0]
    remembered = repr(memos.tables)
    assert "abc123" not in remembered and "t_secret_token_value" not in remembered
    table = memos.tables[id(site)]
    assert type(table["cookie"]) is str  # masked by its name, whatever the value
    assert "x-note" not in table  # masked for its value: not kept
    assert table["accept"] == {"*/*": '"accept":"*/*"'}


def test_user_regexes_with_a_time_bound_are_not_composed() -> None:
    config = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '["^(a|b)+$"]'})
    site = payloads.Site.HTTP_REQUEST_HEADERS
    assert payloads._composed({"a": "1"}, config.masking, site) is None
    text = payloads.headers_attribute([("a", "1"), ("c", "2")], config)
    assert json.loads(text) == {"a": MASKED, "c": "2"}


def _varied_environ(n: int) -> Dict[str, str]:
    """A request as real traffic sends them: an id and, every second one, a trace."""
    environ = {
        "REQUEST_METHOD": "GET",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": f"client/{n % 20}.0 (bench)",
        "HTTP_ACCEPT": "*/*",
        "HTTP_X_REQUEST_ID": f"{n:032x}",
    }
    if n % 2 == 0:
        environ["HTTP_TRACEPARENT"] = f"00-{n:032x}-{n + 1:016x}-01"
    if n % 7 == 0:
        environ["HTTP_AUTHORIZATION"] = f"Bearer secret-{n}"
    return environ


def test_request_headers_with_a_value_per_request_are_the_general_text() -> None:
    """A request id per request: each text is still `headers_attribute`'s; the texts
    with a new value are not kept whole, a set seen again is, and the members of the
    stable headers stay remembered while the request ids come and go."""
    config = Config.from_environ({})
    payloads._WSGI_HEADER_TEXTS.clear()
    site = payloads.Site.HTTP_REQUEST_HEADERS
    for n in range(3000):  # more values than the member memo holds
        environ = _varied_environ(n)
        ours = payloads.wsgi_headers_attribute(environ, config)  # first: values unseen
        general = payloads.headers_attribute(payloads.wsgi_request_headers(environ), config)
        assert ours == general
        assert "secret-" not in general
    assert not payloads._WSGI_HEADER_TEXTS  # every set held a new request id
    table = payloads._FRAGMENTS[0].tables[id(site)]
    assert len(table["user-agent"]) == 20 and table["accept"] == {"*/*": '"accept":"*/*"'}
    assert len(table["x-request-id"]) <= payloads._FRAGMENT_VALUES
    repeated = _varied_environ(1)
    for _ in range(2):
        payloads.wsgi_headers_attribute(repeated, config)
    assert len(payloads._WSGI_HEADER_TEXTS) == 1  # seen before: kept


def test_the_member_memo_stays_bounded_over_names_and_values() -> None:
    config = Config.from_environ({})
    for n in range(4000):
        environ = {f"HTTP_X_{n % 300}": f"v{n}", "HTTP_ACCEPT": "*/*"}
        general = payloads.headers_attribute(payloads.wsgi_request_headers(environ), config)
        assert payloads.wsgi_headers_attribute(environ, config) == general
    memos = payloads._FRAGMENTS[0]
    kept = sum(len(v) for t in memos.tables.values() for v in t.values() if type(v) is dict)
    assert kept == memos.count <= payloads._FRAGMENTS_SIZE
    assert all(len(t) <= payloads._FRAGMENT_NAMES for t in memos.tables.values())
