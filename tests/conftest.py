"""Fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lumigo_devtools.receiver import OtlpReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP protobuf receiver on 127.0.0.1 (fresh per test)."""
    with OtlpReceiver() as receiver:
        yield receiver
