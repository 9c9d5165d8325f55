"""Payload capture helpers: masking, decoding, truncation, bounded recording."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations import payloads
from lumigo_opentelemetry.instrumentations.payloads import (
    BoundedBody,
    body_attribute,
    header_value,
    headers_attribute,
    masked_url_attributes,
    wsgi_request_headers,
)
from lumigo_opentelemetry.masking import MASKED, Site

CONFIG = Config.from_environ({})


def small(limit: int) -> Config:
    return Config.from_environ({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": str(limit)})


def test_headers_are_json_lowercase_and_secrets_masked() -> None:
    text = headers_attribute(
        [
            ("Content-Type", "application/json"),
            ("X-Api-Key", "k-123"),
            ("Authorization", "Basic x"),
        ],
        CONFIG,
    )
    assert json.loads(text) == {
        "content-type": "application/json",
        "x-api-key": MASKED,
        "authorization": MASKED,
    }


def test_headers_from_bytes_pairs_and_mappings_and_repeats() -> None:
    pairs = [(b"accept", b"a/b"), (b"Accept", b"c/d"), (b"x-odd", "caf\xe9".encode("latin-1"))]
    assert json.loads(headers_attribute(pairs, CONFIG)) == {"accept": "a/b, c/d", "x-odd": "café"}
    assert json.loads(headers_attribute({"Host": "h"}, CONFIG)) == {"host": "h"}


def test_custom_masking_rules_apply_to_headers() -> None:
    config = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '["x-tenant"]'})
    text = headers_attribute({"X-Tenant": "acme", "X-Api-Key": "k"}, config)
    assert json.loads(text) == {"x-tenant": MASKED, "x-api-key": "k"}


def test_headers_truncated_to_limit() -> None:
    text = headers_attribute({"x-long": "v" * 500}, small(64))
    assert len(text) == 64
    assert text.startswith('{"x-long":"vvv')


def test_wsgi_environ_headers() -> None:
    environ = {
        "HTTP_X_REQUEST_ID": "abc",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "",
        "wsgi.input": object(),
        "REQUEST_METHOD": "POST",
    }
    assert dict(wsgi_request_headers(environ)) == {
        "x-request-id": "abc",
        "content-type": "text/plain",
    }
    assert header_value(wsgi_request_headers(environ), "Content-Type") == "text/plain"
    assert header_value([], "content-type") is None


def test_json_body_masked_at_any_depth() -> None:
    body = json.dumps({"user": "u", "password": "hunter2", "nested": [{"api_key": "k"}]}).encode()
    out = body_attribute(body, CONFIG, "application/json")
    assert out is not None
    assert json.loads(out) == {"user": "u", "password": MASKED, "nested": [{"api_key": MASKED}]}
    assert "hunter2" not in out


def test_json_detected_without_content_type() -> None:
    out = body_attribute('{"secret": "s", "a": 1}', CONFIG)
    assert out is not None and json.loads(out) == {"secret": MASKED, "a": 1}


def test_truncated_json_still_masks_secrets() -> None:
    # a body recorded only in part is not valid JSON; its secrets must not leak
    full = json.dumps({"a": "x" * 10, "password": "hunter2hunter2", "b": "y" * 100})
    cut = full[: full.index("hunter2") + 5]
    out = body_attribute(cut.encode(), CONFIG, "application/json")
    assert out is not None
    assert "hunt" not in out
    assert f'"password": "{MASKED}"' in out


def test_form_body_masked() -> None:
    out = body_attribute(b"user=a&pass%77ord=b&x=1", CONFIG, "application/x-www-form-urlencoded")
    assert out == f"user=a&pass%77ord={MASKED}&x=1"


def test_plain_text_unchanged_and_truncated() -> None:
    assert body_attribute(b"hello", CONFIG, "text/plain") == "hello"
    assert body_attribute(b"x" * 100, small(10), "text/plain") == "x" * 10


def test_binary_and_empty_bodies() -> None:
    assert body_attribute(b"\x89PNG\r\n\x1a\n\x00\x01", CONFIG, None) == "<binary body: 10 bytes>"
    assert body_attribute(b"text", CONFIG, "image/png") == "<binary body: 4 bytes>"
    assert body_attribute(b"\xff\xfe\x00", CONFIG, "application/json") == "<binary body: 3 bytes>"
    assert body_attribute(b"", CONFIG) is None
    assert body_attribute(None, CONFIG) is None


def test_charset_and_cut_multibyte_character() -> None:
    assert (
        body_attribute("café".encode("latin-1"), CONFIG, "text/plain; charset=ISO-8859-1") == "café"
    )
    # a UTF-8 character cut by the recording limit is dropped, not a binary placeholder
    assert body_attribute("abcé".encode()[:-1], CONFIG, "text/plain") == "abc"
    # an unknown charset falls back to UTF-8
    assert body_attribute(b"ok", CONFIG, "text/plain; charset=nope") == "ok"


def test_deeply_nested_json_does_not_raise() -> None:
    text = "[" * 5000 + "]" * 5000
    out = body_attribute(text, CONFIG, "application/json")
    assert out is not None and out.startswith("[[[")


def test_bounded_body_records_beginning_and_total() -> None:
    rec = BoundedBody(5)
    for chunk in (b"abc", b"", None, b"defgh", "ij"):
        rec.add(chunk)
    assert rec.data == b"abcde"
    assert rec.total == 10
    assert rec.truncated
    assert rec.attribute(CONFIG, "text/plain") == "abcde"


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_body_attribute_never_exceeds_limit(body: bytes, limit: int) -> None:
    out = body_attribute(body, small(limit), None)
    assert out is None or len(out) <= max(limit, len(f"<binary body: {len(body)} bytes>"))


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5))
def test_any_json_secret_is_masked(data: dict[str, str]) -> None:
    data = {**data, "password": "hunter2-value"}
    out = body_attribute(json.dumps(data), CONFIG, "application/json")
    assert out is not None and "hunter2-value" not in out


def test_multipart_secret_fields_masked() -> None:
    body = (
        "--XyZ\r\n"
        'Content-Disposition: form-data; name="user"\r\n\r\n'
        "ann\r\n"
        "--XyZ\r\n"
        'Content-Disposition: form-data; name="password"\r\n\r\n'
        "hunter2\r\n"
        "--XyZ--\r\n"
    )
    out = body_attribute(body.encode(), CONFIG, "multipart/form-data; boundary=XyZ")
    assert out is not None
    assert "hunter2" not in out
    assert "ann" in out and f'name="password"\r\n\r\n{MASKED}\r\n--XyZ--' in out


def test_secret_query_parameters_masked_in_url_attributes() -> None:
    attributes = {
        "http.target": "/p?user=a&password=hunter2#frag",
        "url.query": "api_key=k&x=1",
        "http.url": "http://h/p",
        "http.method": "GET",
    }
    assert masked_url_attributes(attributes, CONFIG) == {
        "http.target": f"/p?user=a&password={MASKED}#frag",
        "url.query": f"api_key={MASKED}&x=1",
    }
    assert masked_url_attributes({"http.target": "/p?x=1"}, CONFIG) == {}


def test_bounded_body_takes_memoryviews_and_bytearrays() -> None:
    rec = BoundedBody(4)
    rec.add(memoryview(bytearray(b"abc")))
    rec.add(bytearray(b"defg"))
    rec.add(memoryview(b"\x00\x01\x02\x03").cast("H"))  # 2 two-byte items = 4 bytes
    assert (rec.data, rec.total) == (b"abcd", 11)


def test_a_repeated_header_set_follows_the_masking_and_limit_of_each_call() -> None:
    headers = [("X-Tenant", "acme"), ("Accept", "*/*")]
    assert json.loads(headers_attribute(headers, CONFIG)) == {"x-tenant": "acme", "accept": "*/*"}
    # the same pairs again, under rules that call x-tenant secret, then a shorter limit
    strict = Config.from_environ({"LUMIGO_SECRET_MASKING_REGEX": '["x-tenant"]'})
    assert json.loads(headers_attribute(headers, strict)) == {"x-tenant": MASKED, "accept": "*/*"}
    assert headers_attribute(headers, small(12)) == '{"x-tenant":'
    assert json.loads(headers_attribute(headers, CONFIG)) == {"x-tenant": "acme", "accept": "*/*"}
    # response headers are their own site: a per-site rule applies to them only
    per_site = Config.from_environ(
        {"LUMIGO_SECRET_MASKING_REGEX_HTTP_RESPONSE_HEADERS": '["accept"]'}
    )
    assert json.loads(headers_attribute(headers, per_site))["accept"] == "*/*"
    response = headers_attribute(headers, per_site, Site.HTTP_RESPONSE_HEADERS)
    assert json.loads(response)["accept"] == MASKED


def test_header_sets_with_a_masked_value_are_not_remembered() -> None:
    """Secrets do not outlive their request in the memo of header texts."""
    secret = "Bearer s3cr3t-" + "x" * 8
    for _ in range(2):
        text = headers_attribute([("Authorization", secret), ("Accept", "*/*")], CONFIG)
        assert json.loads(text) == {"authorization": MASKED, "accept": "*/*"}
    assert not any(secret in repr(key) for key in payloads._HEADER_TEXTS)


def test_header_value_of_asgi_byte_names() -> None:
    pairs = [(b"Host", b"h"), (b"CONTENT-TYPE", b"text/plain"), (b" content-type ", b"late")]
    assert header_value(pairs, "content-type") == "text/plain"
    assert header_value(pairs[2:], "Content-Type") == "late"  # stripped as before
    assert header_value([(b"content-type-x", b"no")], "content-type") is None


def test_headers_from_a_one_shot_iterator_with_unhashable_values() -> None:
    pairs = iter([("Accept", "a/b"), ("X-List", ["not", "hashable"])])
    text = headers_attribute(pairs, CONFIG)  # type: ignore[arg-type]
    assert json.loads(text) == {"accept": "a/b", "x-list": "['not', 'hashable']"}


def test_wsgi_environ_headers_in_order_the_same_on_every_request() -> None:
    first = {
        "REQUEST_METHOD": "GET",
        "HTTP_HOST": "h",
        "HTTP_X_EMPTY": "",
        "CONTENT_LENGTH": "3",
        "CONTENT_TYPE": "",
        "HTTP_X_BYTES": b"not text",
        "wsgi.url_scheme": "http",
    }
    expected = [("host", "h"), ("x-empty", ""), ("content-length", "3")]
    assert wsgi_request_headers(first) == expected
    assert wsgi_request_headers(dict(first)) == expected  # names remembered: same answer
    second = {"CONTENT_TYPE": "a/b", "HTTP_X_BYTES": "now text", "REQUEST_METHOD": "POST"}
    assert wsgi_request_headers(second) == [("content-type", "a/b"), ("x-bytes", "now text")]
