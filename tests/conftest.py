"""Fixtures shared by every test tier."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from opentelemetry import context

from lumigo_devtools.receiver import OtlpReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP protobuf receiver on 127.0.0.1 (fresh per test)."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def _no_span_left_from_an_earlier_test() -> Iterator[None]:
    """Every test starts with no active span in this process.

    Tests that trace in-process (and instrument `requests`, which then sends `traceparent`)
    would otherwise join a span an earlier test left attached, and an injected app's server
    spans would land in that foreign trace.
    """
    token = context.attach(context.Context())
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a test that switched context on purpose
            context.detach(token)
