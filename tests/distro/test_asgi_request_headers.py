"""The lean ASGI path's one-pass reading of request headers gives what the general
reading gives: the masked attribute text, content type, memo-key part, whether a
propagator may find a parent, and (through `carrier`) the same parent context."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry.instrumentation.asgi import asgi_getter

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.instrumentations import _asgi_payloads, payloads
from lumigo_opentelemetry.instrumentations._propagation import _asgi_has_headers

CONFIG = Config()
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

_NAMES = st.one_of(
    st.sampled_from(
        [
            b"host",
            b"user-agent",
            b"content-type",
            b"traceparent",
            b"tracestate",
            b"baggage",
            b"x-api-key",
            b"authorization",
            b"accept",
            b"Content-Type",
            b" host",
            b"x-\xff",
        ]
    ),
    st.binary(max_size=6),
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"127.0.0.1:8000",
            b"text/plain",
            b"application/json; charset=utf-8",
            TRACEPARENT,
            b"00-zz",
            b"k=v,k2=v2",
            b"userId=alice",
            b"secret-value",
            b'{"password": "x"}',
            b"\xc3\xa4",
            b"",
        ]
    ),
    st.binary(max_size=8),
)


def _parent(context: Any) -> tuple[Any, ...]:
    """What a context gives a server span: the remote span's context and the baggage."""
    return (
        sorted(context),
        trace.get_current_span(context).get_span_context(),
        baggage.get_all(context),
    )


def _general(headers: Any) -> tuple[Any, ...]:
    return (
        payloads.headers_attribute(headers, CONFIG),
        payloads.header_value(headers, "content-type"),
        _asgi_payloads.keyed_headers(headers),
        _asgi_has_headers({"headers": headers}),
    )


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=7))
def test_one_pass_equals_the_general_reading(headers: list[tuple[bytes, bytes]]) -> None:
    seen = _asgi_payloads._scanned(headers, CONFIG)
    if seen is None:  # a name some reading could take otherwise: the general reading
        assert any(
            not n.isascii() or n != n.lower() or not (n[:1].isalnum() and n[-1:].isalnum())
            for n, _ in headers
        )
        return
    assert (seen.text, seen.content_type, seen.keyed, seen.propagated) == _general(headers)
    if seen.carrier is not None:
        scope = {"headers": headers}
        assert _parent(propagate.extract(seen.carrier)) == _parent(
            propagate.extract(scope, getter=asgi_getter)
        )


def test_usual_headers_are_read_in_one_pass_and_extract_the_same_parent() -> None:
    for n in range(600):  # more than the name and member memos hold between them
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", f"client/{n % 20}.0".encode()),
            (b"x-request-id", f"{n:032x}".encode()),
            (b"x-api-key", f"key-{n}".encode()),
        ]
        if n % 2 == 0:
            headers.append((b"traceparent", TRACEPARENT))
            headers.append((b"baggage", f"n={n}".encode()))
        if n % 3 == 0:
            headers.append((b"tracestate", b"a=1"))
        seen = _asgi_payloads._scanned(headers, CONFIG)
        assert seen is not None
        assert (seen.text, seen.content_type, seen.keyed, seen.propagated) == _general(headers)
        assert payloads.MASKED in (seen.text or "")  # the API key is masked
        if n % 2 == 0:
            assert seen.carrier is not None
            scope = {"headers": headers}
            assert _parent(propagate.extract(seen.carrier)) == _parent(
                propagate.extract(scope, getter=asgi_getter)
            )
        else:
            assert not seen.propagated


def test_a_failing_rendering_drops_only_the_text(monkeypatch: Any) -> None:
    def broken(*_args: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(payloads, "merged_headers_text", broken)
    seen = _asgi_payloads._scanned([(b"content-type", b"text/plain")], CONFIG)
    assert seen is not None and (seen.text, seen.content_type) == (None, "text/plain")
