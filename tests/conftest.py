"""Fixtures shared by every test tier."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from opentelemetry import context, trace

from lumigo_devtools.receiver import OtlpReceiver

# Property tests assert behaviour, never time: Hypothesis' per-example deadline and its
# too-slow health check fail a correct test on a loaded machine (and a mutation run counted
# such a failure as a killed mutant). "mutation" (set by scripts/mutation.py) also keeps a
# mutant's failing examples out of the example database that later runs replay.
settings.register_profile("lumigo", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("mutation", settings.get_profile("lumigo"), database=None)
settings.load_profile(os.environ.get("LUMIGO_HYPOTHESIS_PROFILE", "lumigo"))


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP protobuf receiver on 127.0.0.1 (fresh per test)."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def _no_span_leaks_between_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with no active span in this process, and must leave none.

    Tests that trace in-process (and instrument `requests`, which then sends `traceparent`)
    would otherwise join a span an earlier test left attached, and an injected app's server
    spans would land in that foreign trace. A test (or a fixture of broader scope) that
    leaves a span active fails here, naming it, instead of passing it on.
    """
    before = trace.get_current_span()
    token = context.attach(context.Context())
    try:
        yield
        after = trace.get_current_span()
    finally:
        with contextlib.suppress(Exception):  # a test that switched context on purpose
            context.detach(token)
    if before.get_span_context().is_valid:
        pytest.fail(
            f"a span was active before {request.node.nodeid} started ({_name(before)}): "
            "a fixture of module or session scope left it attached"
        )
    if after.get_span_context().is_valid:
        pytest.fail(f"{request.node.nodeid} left the span {_name(after)} active")


def _name(span: trace.Span) -> str:
    return repr(getattr(span, "name", span))
