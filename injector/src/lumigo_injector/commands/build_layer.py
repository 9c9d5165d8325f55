"""`lumigo-injector build-layer` and `lumigo-injector copy-layer`: thin shells over layer.py."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lumigo_injector.layer.build import build_layer, host_arch
from lumigo_injector.layer.cache import cache_root
from lumigo_injector.layer.copy import DEFAULT_DESTINATION, LayerCopyError, copy_layer
from lumigo_injector.layer.manifest import ARCHES, PLATFORMS, SUPPORTED_PYTHONS
from lumigo_injector.layer.sets import LayerBuildError


def add_parser(subparsers: Any) -> None:
    """Register `build-layer` and `copy-layer`."""
    build = subparsers.add_parser(
        "build-layer",
        help="build the init-container layer (package sets for CPython 3.9-3.14)",
        description="Build the layer: one package set per Python, libc and architecture, "
        "files shared between sets stored once, the bootstrap and a manifest.",
    )
    build.add_argument("--out", required=True, type=Path, help="directory to write the layer to")
    build.add_argument(
        "--python", nargs="+", default=list(SUPPORTED_PYTHONS), choices=SUPPORTED_PYTHONS,
        metavar="3.X", help=f"CPython versions (default: all of {' '.join(SUPPORTED_PYTHONS)})",
    )  # fmt: skip
    build.add_argument(
        "--platform", nargs="+", default=["glibc"], choices=PLATFORMS,
        help="C libraries to build sets for (default: glibc)",
    )  # fmt: skip
    build.add_argument(
        "--arch", nargs="+", default=[host_arch()], choices=ARCHES,
        help=f"CPU architectures (default: this machine's, {host_arch()})",
    )  # fmt: skip
    build.add_argument(
        "--distro", type=Path, default=None,
        help="the lumigo_opentelemetry source directory or wheel (default: the workspace's)",
    )  # fmt: skip
    build.add_argument("--jobs", type=int, default=4, help="pip installs run at once")
    build.add_argument(
        "--no-cache", action="store_true",
        help="ignore and do not fill the set cache (LUMIGO_INJECTOR_CACHE/sets)",
    )  # fmt: skip
    build.set_defaults(func=run_build)

    lock = subparsers.add_parser(
        "lock-layer",
        help="regenerate the package-set locks build-layer installs from (uv pip compile)",
        description="Resolve the distro's declared dependencies for every package set "
        "(CPython 3.9-3.14, glibc and musl, amd64 and arm64) with `uv pip compile "
        "--generate-hashes` and write the locks kept in the repository "
        "(injector/src/lumigo_injector/layer/locks/). Run after changing the distro's "
        "dependencies; a build refuses a stale lock.",
    )
    lock.add_argument(
        "--distro", type=Path, default=None,
        help="the lumigo_opentelemetry source directory or wheel (default: the workspace's)",
    )  # fmt: skip
    lock.add_argument("--jobs", type=int, default=4, help="resolutions run at once")
    lock.set_defaults(func=run_lock)

    copy = subparsers.add_parser(
        "copy-layer",
        help="copy a built layer into a (volume) directory, as the init container does",
    )
    copy.add_argument("src", type=Path, help="the built layer")
    copy.add_argument(
        "dest", type=Path, nargs="?", default=Path(DEFAULT_DESTINATION),
        help=f"destination; its contents are replaced (default {DEFAULT_DESTINATION})",
    )  # fmt: skip
    copy.set_defaults(func=run_copy)


def run_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        manifest = build_layer(
            args.out,
            args.python,
            args.platform,
            args.arch,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
            distro=args.distro,
            set_cache=None if args.no_cache else cache_root() / "sets",
            jobs=args.jobs,
        )
    except (LayerBuildError, ValueError) as exc:
        print(f"build-layer: {exc}", file=sys.stderr)
        return 1
    print(manifest.summary_table())
    print(f"built in {time.monotonic() - started:.1f}s: {args.out}")
    return 0


def run_lock(args: argparse.Namespace) -> int:
    from lumigo_injector.layer.build import default_distro_source
    from lumigo_injector.layer.locks import LockError, compile_locks

    started = time.monotonic()
    try:
        paths = compile_locks(args.distro or default_distro_source(), jobs=args.jobs)
    except LockError as exc:
        print(f"lock-layer: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    print(f"{len(paths)} locks written in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


def run_copy(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        copy_layer(args.src, args.dest)
    except (LayerCopyError, OSError) as exc:
        print(f"copy-layer: {exc}", file=sys.stderr)
        return 1
    print(f"lumigo-otel layer copied to {args.dest} in {time.monotonic() - started:.2f}s")
    return 0
