"""The sampler's decisions from start attributes, old and new HTTP semantic conventions,
and the user's sampler behind it (the app-level behaviour is in test_endpoint_filters)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.sampling import LumigoSampler, client_endpoint, server_endpoint

FILTERS = {
    "LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_SERVER": r'["^\\/health", "token=\\w+"]',
    "LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX_CLIENT": r'["metadata\\.internal"]',
    "LUMIGO_FILTER_HTTP_ENDPOINTS_REGEX": '["login"]',
}


def decide(kind: SpanKind, attributes: dict[str, Any], **env: str) -> Decision:
    sampler = LumigoSampler(Config.from_environ({**FILTERS, **env}))
    return sampler.should_sample(None, 0x1234, "span", kind, attributes).decision


@pytest.mark.parametrize(
    ("kind", "attributes", "dropped"),
    [
        (SpanKind.SERVER, {"http.target": "/health"}, True),
        (SpanKind.SERVER, {"url.path": "/health", "url.query": "x=1"}, True),
        (SpanKind.SERVER, {"http.target": "/api/health"}, False),  # anchored regex
        (SpanKind.SERVER, {"url.path": "/cb", "url.query": "token=abc"}, True),
        (SpanKind.SERVER, {"http.url": "http://h/login?next=/"}, True),  # global
        (SpanKind.SERVER, {"http.target": "/orders"}, False),
        (SpanKind.CLIENT, {"http.url": "http://metadata.internal/v1"}, True),
        (SpanKind.CLIENT, {"url.full": "https://idp/login"}, True),  # global
        (SpanKind.CLIENT, {"http.url": "http://h/health"}, False),  # server-only regex
        (SpanKind.INTERNAL, {"http.target": "/health"}, False),  # not an HTTP span kind
        (SpanKind.SERVER, {}, False),
    ],
)
def test_filter_decisions(kind: SpanKind, attributes: dict[str, Any], dropped: bool) -> None:
    expected = Decision.DROP if dropped else Decision.RECORD_AND_SAMPLE
    assert decide(kind, attributes) == expected


def test_endpoints_from_attributes() -> None:
    assert server_endpoint({"url.path": "/a", "url.query": "b=1"}) == "/a?b=1"
    assert server_endpoint({"http.url": "https://h:1/a/b?c=d"}) == "/a/b?c=d"
    assert client_endpoint({"url.full": "https://h/a", "http.url": "x"}) == "https://h/a"
    assert server_endpoint({"http.target": 7}) is None


def test_the_users_sampler_decides_the_rest() -> None:
    assert decide(SpanKind.SERVER, {"http.target": "/x"}, OTEL_TRACES_SAMPLER="always_off") == (
        Decision.DROP
    )
    provider = TracerProvider(
        sampler=LumigoSampler(Config.from_environ({"OTEL_TRACES_SAMPLER": "traceidratio"}))
    )
    with provider.get_tracer("t").start_as_current_span("s") as span:
        assert span.is_recording()
    assert "TraceIdRatioBased" in provider.sampler.get_description()


def _parents() -> list[Any]:
    """Parent contexts a span can start under: none, invalid, remote and local, sampled
    or not, with a trace state, and a current context (None)."""
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    state = TraceState([("vendor", "v1")])
    contexts: list[Any] = [None, Context(), trace.set_span_in_context(trace.INVALID_SPAN)]
    for remote in (True, False):
        for flags in (TraceFlags(0), TraceFlags(1), TraceFlags(3)):
            parent = SpanContext(0xABC, 0xDEF, remote, flags, state)
            contexts.append(trace.set_span_in_context(NonRecordingSpan(parent)))
    return contexts


@pytest.mark.parametrize(
    "sampler",
    [
        "parentbased_always_on",
        "parentbased_always_off",
        "always_on",
        "always_off",
        "parentbased_traceidratio",
        "traceidratio",
    ],
)
def test_decisions_are_the_users_samplers(sampler: str) -> None:
    """Whatever the parent, the result is the one the user's sampler itself gives (the
    static samplers' decisions are taken without running their chain)."""
    config = Config.from_environ({"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    ours = LumigoSampler(config)
    theirs = ours._delegate
    assert (ours._decisions is None) == sampler.endswith("traceidratio")
    attributes = {"http.target": "/x", "n": 1}
    for parent in _parents():
        for trace_id in (0x1234, (1 << 128) - 1):
            got = ours.should_sample(parent, trace_id, "s", SpanKind.SERVER, attributes)
            want = theirs.should_sample(parent, trace_id, "s", SpanKind.SERVER, attributes)
            assert got.decision is want.decision
            assert dict(got.attributes) == dict(want.attributes)
            assert got.trace_state == want.trace_state


def test_decisions_under_the_current_span() -> None:
    """With no context given, the parent is the current span (as the SDK reads it)."""
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    ours = LumigoSampler(Config.from_environ({}))
    unsampled = NonRecordingSpan(SpanContext(1, 2, True, TraceFlags(0)))
    token = context.attach(trace.set_span_in_context(unsampled))
    try:
        assert ours.should_sample(None, 1, "s").decision is Decision.DROP
    finally:
        context.detach(token)
    assert ours.should_sample(None, 1, "s").decision is Decision.RECORD_AND_SAMPLE
