"""The layer cache keeps what is in use: a layer read by another checkout or test run is never
pruned from under it by a parallel build (seen when two worktrees built layers at once)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lumigo_injector.layer import cache
from lumigo_injector.layer.manifest import MANIFEST_NAME


def _layer(layers: Path, name: str, used_ago: float) -> Path:
    path = layers / name
    path.mkdir(parents=True)
    (path / MANIFEST_NAME).write_text("{}")
    when = time.time() - used_ago
    os.utime(path, (when, when))
    return path


def test_only_layers_unused_for_an_hour_beyond_the_newest_few_are_removed(tmp_path: Path) -> None:
    layers = tmp_path / "layers"
    keep = _layer(layers, "just-built", 0)
    recent = [_layer(layers, f"recent-{i}", 60 * i) for i in range(1, 6)]
    old = [_layer(layers, f"old-{i}", 2 * 3600 + i) for i in range(3)]
    cache._prune(layers, keep=keep)
    left = {p.name for p in layers.iterdir()}
    assert keep.name in left
    # more than KEEP_LAYERS layers were used in the last hour: every one of them stays
    assert {p.name for p in recent} <= left
    assert not any(p.name in left for p in old)


def test_when_nothing_is_recent_the_newest_few_stay(tmp_path: Path) -> None:
    layers = tmp_path / "layers"
    keep = _layer(layers, "just-built", 0)
    older = [_layer(layers, f"old-{i}", 2 * 3600 + 60 * i) for i in range(6)]
    cache._prune(layers, keep=keep)
    left = sorted(p.name for p in layers.iterdir())
    assert left == sorted([keep.name, *(p.name for p in older[: cache.KEEP_LAYERS - 1])])


def test_a_cache_hit_counts_as_a_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMIGO_INJECTOR_CACHE", str(tmp_path))
    key = cache.layer_key(("3.11",), ("glibc",), ("amd64",), cache.default_distro_source())
    hit = _layer(tmp_path / "layers", key, 5 * 3600)
    assert cache.cached_layer(("3.11",), "glibc", "amd64") == hit
    assert time.time() - hit.stat().st_mtime < 600
