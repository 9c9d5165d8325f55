"""The start-up benchmark's peak-RSS figure is the measured command's own, not its parent's."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def peak_rss_mib() -> Iterator[Callable[[list[str], dict[str, str], Path], float]]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from load import peak_rss_mib

        yield peak_rss_mib
    finally:
        sys.path.remove(str(BENCHMARKS))


def _python(code: str) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", code]


def test_a_small_command_is_not_read_as_its_large_parent(
    peak_rss_mib: Callable[[list[str], dict[str, str], Path], float], tmp_path: Path
) -> None:
    """While this process holds 256 MiB, a bare interpreter still reads as tens of MiB at
    most, and a 50 MiB allocation in it moves the figure by about 50 MiB."""
    held = bytearray(256 * 2**20)  # zero-filled, so resident
    env = dict(os.environ)
    bare = peak_rss_mib(_python("pass"), env, tmp_path)
    allocating = peak_rss_mib(_python("x = bytearray(50 * 2**20)"), env, tmp_path)
    assert len(held) and 1 < bare < 64
    assert 45 < allocating - bare < 60


def test_a_failing_command_is_reported(
    peak_rss_mib: Callable[[list[str], dict[str, str], Path], float], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="exited 3"):
        peak_rss_mib(_python("raise SystemExit(3)"), dict(os.environ), tmp_path)
