"""The lean WSGI request attributes are contrib's `collect_request_attributes`, key for
key and in the same order, on any environ (or raise as contrib raises)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.instrumentation.wsgi import collect_request_attributes

from lumigo_opentelemetry.instrumentations._wsgi_attributes import lean_collect
from lumigo_opentelemetry.instrumentations._wsgi_request import memoized

lean = lean_collect(collect_request_attributes)
_ABSENT = object()


def _outcome(collect: Any, environ: dict[str, Any]) -> Any:
    try:
        return list(collect(dict(environ)).items())
    except Exception as exc:
        return type(exc)


def _text(*examples: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(examples), st.text(max_size=12))


ENVIRON = st.fixed_dictionaries(
    {},
    optional={
        "REQUEST_METHOD": _text("GET", "POST", "PATCH", "get", "BREW", " GET", "QUERY", ""),
        "SERVER_NAME": _text("127.0.0.1", "example.com", "", None),
        "wsgi.url_scheme": _text("http", "https", ""),
        "HTTP_HOST": _text("127.0.0.1:8000", "user:pw@h", "", None),
        "SERVER_PORT": _text("80", "443", "8000", "0", "x", " 81", "", None),
        "RAW_URI": _text("/a?b=1", "", None),
        "REQUEST_URI": _text("/a?password=1", ""),
        "PATH_INFO": _text("/hello", "/a b/ü", "/p%2F?x", "/design", "/?s\tig=1", ""),
        "QUERY_STRING": _text(
            "id=1",
            "sig=1",
            "a=1&Signature=2",
            "%73ig=1",
            "AWSAccessKeyId=k&x=1",
            "X-Goog-Signature=s",
            "a=1#frag",
            "a+b=c",
            "s\tig=1",  # urlsplit drops tabs and line breaks before contrib's redaction
            "si\ng=1&x=\r",
            "",
        ),
        "SCRIPT_NAME": _text("", "/app", "/ä"),
        "REMOTE_ADDR": _text("10.0.0.1", "", None),
        "REMOTE_PORT": _text("40000", "0", "x", "", None),
        "REMOTE_HOST": _text("10.0.0.1", "client", "", None),
        "HTTP_USER_AGENT": st.one_of(
            _text("curl/8.0", "Googlebot/2.1", "AlwaysOn test", "client/1.0", "", None),
            st.just(b"bytes-agent/1"),
        ),
        "SERVER_PROTOCOL": _text("HTTP/1.1", "http/2", "HTTP/", "HTTPS/1", "", None),
        "HTTPS": _text("on", ""),
    },
)


def test_the_checked_release_gets_the_lean_builder() -> None:
    assert lean is not collect_request_attributes
    assert lean_collect(dict) is dict  # not contrib's function: left as it is


@settings(max_examples=1500, deadline=None)
@given(ENVIRON)
def test_lean_attributes_equal_contrib(environ: dict[str, Any]) -> None:
    assert _outcome(lean, environ) == _outcome(collect_request_attributes, environ)


#: a plain `GET /hello` as a WSGI server gives it
HELLO = {
    "REQUEST_METHOD": "GET",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "wsgi.url_scheme": "http",
    "HTTP_HOST": "127.0.0.1:8000",
    "PATH_INFO": "/hello",
    "REMOTE_ADDR": "127.0.0.1",
    "SERVER_PROTOCOL": "HTTP/1.1",
}


def test_the_usual_requests_equal_contrib() -> None:
    base = {**HELLO, "SCRIPT_NAME": ""}
    for n in range(300):  # more than the URL memo holds
        environ = {
            **base,
            "QUERY_STRING": f"id={n}",
            "REMOTE_PORT": str(40000 + n % 50),
            "HTTP_USER_AGENT": f"client/{n % 20}.0",
        }
        if n % 3 == 0:
            environ["RAW_URI"] = f"/hello?id={n}"
        if n % 7 == 0:
            environ["QUERY_STRING"] = f"id={n}&X-Goog-Signature=abc&sig=1"
        if n % 11 == 0:
            environ["HTTP_HOST"] = "user:secret@127.0.0.1:8000"
        assert _outcome(lean, environ) == _outcome(collect_request_attributes, environ)


def _short(attributes: dict[str, Any]) -> bool:
    """A stand-in for the tracer's check: every text within 9 characters."""
    return all(len(v) <= 9 for v in attributes.values() if isinstance(v, str))


CLIENTS = st.lists(
    st.tuples(
        _text("10.0.0.2", "::1", "2001:db8::1234:5678", ""),
        _text("40001", "7", "0", " 9", "٣", "x", ""),
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(ENVIRON, min_size=1, max_size=4), CLIENTS)
def test_the_memo_gives_every_client_contribs_attributes_whoever_came_before(
    environs: list[dict[str, Any]], clients: list[tuple[str, str]]
) -> None:
    """The memo keeps one entry for every client of a request shape and sets each
    client's address and port on its copy: the result is still contrib's, key for key,
    in contrib's order, and so is the check's verdict, for any clients in any order."""
    memo = memoized(collect_request_attributes, dict, dict, _short, max_length=9)
    for environ in environs:
        for address, port in [(None, None), *clients, *clients]:
            request = dict(environ)
            if address is not None:
                request["REMOTE_ADDR"], request["REMOTE_PORT"] = address, port
            expected = _outcome(collect_request_attributes, request)
            got = _outcome(lambda e: memo(e, False)[0], request)
            assert got == expected
            if isinstance(expected, list):
                unchecked = memo(dict(request), False)[1]
                assert (unchecked is not None and _short(unchecked)) == _short(dict(expected))


def test_a_new_connection_per_request_is_served_from_one_memo_entry() -> None:
    """Under a server that closes each connection (gunicorn's sync worker) every request
    comes from a new client port: the request attributes are still built once."""
    built = []

    def counting(environ: dict[str, Any]) -> dict[str, Any]:
        built.append(1)
        return collect_request_attributes(environ)

    memo = memoized(counting, dict)
    for port in range(40000, 40600):  # more ports than the memo holds entries
        environ = {
            "REQUEST_METHOD": "GET",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "127.0.0.1:8000",
            "RAW_URI": "/hello",
            "PATH_INFO": "/hello",
            "REMOTE_ADDR": f"10.0.{port % 3}.1",
            "REMOTE_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        got = memo(environ, port % 2 == 0)[0]
        assert list(got.items()) == list(collect_request_attributes(environ).items())
    assert len(built) == 1


def test_url_masked_copy_is_what_the_span_masking_gives() -> None:
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import payloads

    config = Config()
    samples = [
        {},
        {"http.method": "GET", "http.url": "http://h/a?id=1", "net.peer.port": 1},
        {"http.method": "GET", "http.target": "/a?password=x&id=1", "http.flavor": "1.1"},
        {"http.host": "user:pw@h", "http.url": "http://user:pw@h/?token=t", "x": None},
        {"url.query": "secret=1", "url.full": "https://h/?secret=1", "http.route": "/a"},
    ]
    for attributes in samples:
        reference = payloads.Attributes(attributes)
        payloads.mask_span_urls(reference, config)  # type: ignore[arg-type]
        masked = payloads.url_masked(attributes, config)
        assert list(masked.items()) == list(reference.items())
        assert type(masked) is dict and masked is not attributes

    class Failing:
        """A config whose masking fails: the query strings go as a whole, as before."""

        attribute_length_limit = 2048

        @property
        def masking(self) -> Any:
            raise RuntimeError("boom")

    attributes = {"http.method": "GET", "http.target": "/a?password=x"}
    reference = payloads.Attributes(attributes)
    payloads.mask_span_urls(reference, Failing())  # type: ignore[arg-type]
    assert payloads.url_masked(attributes, Failing()) == dict(reference)  # type: ignore[arg-type]
    assert reference["http.target"] == "/a?****"


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["HTTP_CONTENT_TYPE", "CONTENT_TYPE", "HTTP_X-A", "HTTP_X_A", "HTTP_ X", "HTTP_Y"]
        ),
        st.one_of(st.sampled_from(["a", "b c", '"q"', "user:pw@h"]), st.text(max_size=6)),
        max_size=6,
    )
)
def test_request_headers_with_repeated_or_spaced_names_are_the_general_text(
    environ: dict[str, Any],
) -> None:
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import payloads

    config = Config()
    general = payloads.headers_attribute(payloads.wsgi_request_headers(environ), config)
    assert payloads.wsgi_headers_attribute(environ, config) == general


def test_a_query_split_by_tabs_or_line_breaks_is_redacted_as_contrib_redacts_it() -> None:
    """`urlsplit` drops tabs and line breaks, so `s<TAB>ig=1` reaches contrib's redaction
    as `sig=1`: the lean builder must not send it unredacted."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SERVER_NAME": "h",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "PATH_INFO": "/",
    }
    for query in ("s\tig=1", "si\ng=1&x=\r", "a=1&Signa\rture=2", "X-Goog-\tSignature=s"):
        ours = _outcome(lean, {**environ, "QUERY_STRING": query})
        assert ours == _outcome(collect_request_attributes, {**environ, "QUERY_STRING": query})
        assert "REDACTED" in dict(ours)["http.url"]  # type: ignore[arg-type]


TARGETS = st.lists(
    st.tuples(
        st.one_of(st.just(_ABSENT), _text("/a?b=1", "/hello?id=7", "/a?password=x", "", None)),
        st.one_of(st.just(_ABSENT), _text("/a?password=1", "/r?id=2", "")),
        st.one_of(
            st.just(_ABSENT), _text("id=1", "sig=1", "password=p", "a=1&Signature=2", "", None)
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(ENVIRON, min_size=1, max_size=3), TARGETS)
def test_the_memo_gives_each_target_and_query_contribs_attributes_masked_or_not(
    environs: list[dict[str, Any]], targets: list[tuple[Any, Any, Any]]
) -> None:
    """Shapes that differ only by their target or query share a memo entry: each one
    still gets contrib's attributes, key for key in contrib's order, masked as the
    server span masks them, and what is left unchecked holds whatever the check
    would not pass."""
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import payloads

    config = Config()

    def mask(attributes: dict[str, Any]) -> dict[str, Any]:
        return payloads.url_masked(attributes, config)

    memo = memoized(collect_request_attributes, mask, dict, _short, max_length=9)
    for environ in environs:
        for masked in (False, True, True, False):
            for parts in targets:
                request = dict(environ)
                for name, value in zip(("RAW_URI", "REQUEST_URI", "QUERY_STRING"), parts):
                    if value is _ABSENT:
                        request.pop(name, None)
                    else:
                        request[name] = value
                expected = _outcome(collect_request_attributes, request)
                if isinstance(expected, list) and masked:
                    expected = list(mask(dict(expected)).items())
                got = _outcome(lambda e: memo(e, masked)[0], request)  # noqa: B023
                assert got == expected
                if isinstance(expected, list):
                    unchecked = memo(dict(request), masked)[1]
                    assert (unchecked is not None and _short(unchecked)) == _short(dict(expected))


def test_a_new_query_per_request_is_served_from_one_memo_entry(monkeypatch: Any) -> None:
    """Real traffic asks for a new query (an id) per request: the attributes are built
    once for the path, and only the target or URL is set (masked) per request."""
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import _wsgi_attributes, payloads

    built = []
    collect = _wsgi_attributes._Builder.collect

    def counting(self: Any, environ: dict[str, Any]) -> dict[str, Any]:
        built.append(1)
        return collect(self, environ)

    monkeypatch.setattr(_wsgi_attributes._Builder, "collect", counting)
    config = Config()

    def mask(attributes: dict[str, Any]) -> dict[str, Any]:
        return payloads.url_masked(attributes, config)

    memo = memoized(collect_request_attributes, mask)
    base = {**HELLO, "REMOTE_ADDR": "10.0.0.1"}
    for with_target in (True, False):
        built.clear()
        for n in range(300):  # more queries than the memo holds entries
            query = f"id={n}&password=p{n}" if n % 5 == 0 else f"id={n}"
            environ = {**base, "QUERY_STRING": query, "REMOTE_PORT": str(40000 + n)}
            if with_target:
                environ["RAW_URI"] = "/hello?" + query
            got = memo(environ, True)[0]
            expected = mask(collect_request_attributes(environ))
            assert list(got.items()) == list(expected.items())
            assert f"p{n}" not in repr(got)
        assert len(built) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http.target", "http.url", "url.full", "url.query", "http.route"]),
    st.one_of(
        _text(
            "/a?password=x&id=1",
            "/hello?id=7",
            "http://user:pw@h/?token=t",
            "/p?x=t_secret_token_value",
            "/no-query",
            "",
        ),
        st.just(None),
        st.just(5),
    ),
)
def test_one_url_value_masked_is_url_masked(key: str, value: Any) -> None:
    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations import payloads

    for config in (Config(), Config.from_environ({"LUMIGO_TRACER_TOKEN": "t_secret_token_value"})):
        expected = payloads.url_masked({key: value}, config)[key]
        assert payloads.url_value_masked(key, value, config) == expected
