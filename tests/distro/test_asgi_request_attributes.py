"""The lean ASGI request attributes are contrib's `collect_request_attributes`, key for
key and in the same order, on any scope (or raise as contrib raises)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.instrumentation.asgi import collect_request_attributes

from lumigo_opentelemetry.instrumentations._asgi_attributes import lean_collect

lean = lean_collect(collect_request_attributes)


def _outcome(collect: Any, scope: dict[str, Any]) -> Any:
    try:
        return list(collect(dict(scope)).items())
    except Exception as exc:
        return type(exc)


def _text(*examples: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(examples), st.text(max_size=12))


def _bytes(*examples: bytes) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(examples), st.binary(max_size=8))


_NAMES = _bytes(
    b"host",
    b"Host",
    b"user-agent",
    b"User-Agent",
    b"accept",
    b" host",
    b"h\xc3\xb6st",
    b"\xff",
    b"traceparent",
)
_VALUES = _bytes(
    b"127.0.0.1:8000",
    b"user:pw@h",
    b"",
    b"curl/8.0",
    b"Googlebot/2.1",
    b"AlwaysOn test",
    b"\xc3\xa4",
    b"\xff\\x41",
)
_ADDRESS = st.one_of(
    st.tuples(_text("127.0.0.1", "example.com", ""), st.sampled_from([80, 8000, 0, 443])),
    st.lists(st.sampled_from(["10.0.0.1", 40000, None]), max_size=3),
    st.none(),
    st.just(("127.0.0.1", "8000")),
    st.just(("127.0.0.1", True)),
)
SCOPE = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("http"),
        "method": _text("GET", "POST", "PATCH", "get", "BREW", " GET", "QUERY", ""),
        "scheme": st.one_of(_text("http", "https", "ws", ""), st.none()),
        "http_version": _text("1.1", "2", ""),
        "path": _text("/hello", "/a b/ü", "/p%2F?x", "/design", ""),
        "root_path": _text("", "/app"),
        "query_string": st.one_of(
            _bytes(
                b"id=1",
                b"sig=1",
                b"a=1&Signature=2",
                b"%73ig=1",
                b"AWSAccessKeyId=k&x=1",
                b"X-Goog-Signature=s",
                b"s\tig=1",
                b"a=1#frag",
                b"a+b=c",
                b"%ff",
                b"",
            ),
            st.just("id=1"),
            st.just(bytearray(b"id=1")),
        ),
        "server": _ADDRESS,
        "client": _ADDRESS,
        "headers": st.one_of(
            st.lists(st.tuples(_NAMES, _VALUES), max_size=5),
            st.lists(st.lists(_NAMES, min_size=2, max_size=2), max_size=2),
            st.just([("host", "str-name")]),
            st.just([(b"host", "str-value")]),
            st.none(),
        ),
    },
)


def test_the_checked_release_gets_the_lean_builder() -> None:
    assert lean is not collect_request_attributes
    assert lean_collect(dict) is dict  # not contrib's function: left as it is


@settings(max_examples=2000, deadline=None)
@given(SCOPE)
def test_lean_attributes_equal_contrib(scope: dict[str, Any]) -> None:
    assert _outcome(lean, scope) == _outcome(collect_request_attributes, scope)


def test_the_usual_requests_equal_contrib() -> None:
    for n in range(300):  # more than the user-agent memo holds
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", f"client/{n % 20}.0 (bench)".encode()),
            (b"accept", b"*/*"),
            (b"x-request-id", f"{n:032x}".encode()),
        ]
        if n % 2 == 0:
            headers.append((b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"))
        if n % 5 == 0:
            headers.append((b"host", b"other.example"))
        query = f"id={n}"
        if n % 7 == 0:
            query += "&X-Goog-Signature=abc&sig=1"
        if n % 11 == 0:
            headers[0] = (b"host", b"user:secret@127.0.0.1:8000")
        if n % 13 == 0:
            query += "&q=%2Fa%20b"
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": ("GET", "POST", "HEAD")[n % 3],
            "scheme": "http",
            "path": "/hello" if n % 4 else f"/items/{n}",
            "raw_path": b"/hello",
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000 + n % 50),
            "server": ("127.0.0.1", 8000 if n % 9 else 80),
        }
        assert _outcome(lean, scope) == _outcome(collect_request_attributes, scope)
        assert lean.__self__._build(scope) is not None  # type: ignore[attr-defined]  # built


def test_another_semantic_convention_mode_is_contribs() -> None:
    from opentelemetry.instrumentation._semconv import _StabilityMode

    scope = {"type": "http", "method": "GET", "path": "/a", "query_string": b"x=1"}
    for mode in (_StabilityMode.HTTP, _StabilityMode.HTTP_DUP):
        assert lean(scope, mode) == collect_request_attributes(scope, mode)
