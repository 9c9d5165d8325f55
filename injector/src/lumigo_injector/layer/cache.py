"""A build cache for layers: tests, the demo and benchmarks build the layer once.

`~/.cache/lumigo-injector/` (env LUMIGO_INJECTOR_CACHE overrides it) holds
`sets/` (pip's output per set, keyed on the distro source hash and the set's parameters)
and `layers/<key>/` (assembled layers, keyed on that plus the layer code itself).
A file lock makes concurrent callers wait for one build instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from lumigo_injector.layer import build as layer_build
from lumigo_injector.layer import copy as layer_copy
from lumigo_injector.layer import manifest as layer_manifest
from lumigo_injector.layer import sets as layer_sets
from lumigo_injector.layer.build import Progress, build_layer, default_distro_source, host_arch
from lumigo_injector.layer.manifest import MANIFEST_NAME, SUPPORTED_PYTHONS

KEEP_LAYERS = 4  # older cached layers are removed, the most recently used first kept
#: a layer used this recently is never removed (another checkout or test run may be reading it)
LAYER_MIN_AGE = 3600
SET_MAX_AGE = 24 * 3600  # cached pip installs unused for this long are removed


def cache_root() -> Path:
    """Where cached sets and layers live."""
    configured = os.environ.get("LUMIGO_INJECTOR_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "lumigo-injector"


def layer_key(
    pythons: Sequence[str], platforms: Sequence[str], arches: Sequence[str], distro: Path
) -> str:
    """Cache key: the distro source, the parameters and the code that builds the layer."""
    digest = hashlib.sha256()
    digest.update(layer_build.source_hash(distro).encode())
    for module in (layer_build, layer_copy, layer_manifest, layer_sets):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(layer_build.BOOTSTRAP_SOURCE.read_bytes())
    digest.update(layer_build.BOOTSTRAP_IMPL_SOURCE.read_bytes())
    digest.update(repr((tuple(pythons), tuple(platforms), tuple(arches))).encode())
    return digest.hexdigest()[:20]


def cached_layer(
    pythons: Sequence[str] = SUPPORTED_PYTHONS,
    platform: str | Sequence[str] = "glibc",
    arch: str | Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    distro: Path | None = None,
) -> Path:
    """The path of a built layer for these parameters, building it on first use."""
    platforms = (platform,) if isinstance(platform, str) else tuple(platform)
    arches = (arch or host_arch(),) if arch is None or isinstance(arch, str) else tuple(arch)
    source = Path(distro) if distro else default_distro_source()
    root = cache_root()
    layers = root / "layers"
    layers.mkdir(parents=True, exist_ok=True)
    path = layers / layer_key(pythons, platforms, arches, source)
    if (path / MANIFEST_NAME).exists():
        _touch(path)
        return path
    with (root / "build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (path / MANIFEST_NAME).exists():
                build_layer(
                    path, pythons, platforms, arches, progress,
                    distro=source, set_cache=root / "sets",
                )  # fmt: skip
                _prune(layers, keep=path)
                _prune_sets(root / "sets")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


def _touch(path: Path) -> None:
    """Mark a cached layer as just used (its directory's time is its last use)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _prune(layers: Path, keep: Path, now: float | None = None) -> None:
    """Remove all but the `KEEP_LAYERS` most recently used layers, never one used in the
    last `LAYER_MIN_AGE` seconds (a parallel build must not pull a layer from under a run)."""
    cutoff = (time.time() if now is None else now) - LAYER_MIN_AGE
    candidates = sorted(
        (p for p in layers.iterdir() if p.is_dir() and p != keep and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in candidates[KEEP_LAYERS - 1 :]:
        if old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def _prune_sets(sets: Path) -> None:
    cutoff = time.time() - SET_MAX_AGE
    for entry in sets.iterdir() if sets.is_dir() else ():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)
            entry.with_name(f"{entry.name}.lock").unlink(missing_ok=True)
