"""Locked package sets: one hashed requirements file per set, kept in the repository.

`build-layer` installs each set from `locks/py3.X-<libc>-<arch>.txt` with pip's hash
checking and without resolving anything, so two builds of one commit install the same files.
`lumigo-injector lock-layer` (`LOCK_COMMAND`) regenerates every lock with
`uv pip compile --python-version --python-platform --generate-hashes`. Each lock records a
digest of the distro's declared dependencies it was made from; a build refuses a lock that no
longer matches them (a stale lock), naming the command that fixes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import tomllib
from packaging.requirements import Requirement as PackagingRequirement
from packaging.utils import canonicalize_name

from lumigo_injector.layer.manifest import ARCHES, PLATFORMS, SUPPORTED_PYTHONS, set_name

LOCK_DIR = Path(__file__).parent / "locks"
LOCK_COMMAND = "uv run --frozen lumigo-injector lock-layer"
_INPUT_MARK = "# lumigo-input-sha256: "

#: uv's `--python-platform` for each (libc, arch); the oldest libc the sets target.
UV_PLATFORMS = {
    ("glibc", "amd64"): "x86_64-manylinux_2_17",
    ("glibc", "arm64"): "aarch64-manylinux_2_17",
    ("musl", "amd64"): "x86_64-unknown-linux-musl",
    ("musl", "arm64"): "aarch64-unknown-linux-musl",
}


class LockError(RuntimeError):
    """A lock is missing, unreadable or stale; the message says which and what to run."""


@dataclass(frozen=True)
class Lock:
    """A parsed lock file."""

    path: Path
    input_sha256: str | None
    pins: dict[str, str]  # canonical name -> version
    sha256: str  # of the file itself


def lock_path(python: str, platform: str, arch: str, lock_dir: Path = LOCK_DIR) -> Path:
    return lock_dir / f"{set_name(python, platform, arch)}.txt"


def declared_requirements(distro: Path) -> list[str]:
    """The distro's declared dependencies (its pyproject.toml, or a wheel's metadata), sorted."""
    if distro.is_file():
        with zipfile.ZipFile(distro) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            headers = HeaderParser().parsestr(wheel.read(name).decode("utf-8"))
        lines = headers.get_all("Requires-Dist") or []
    else:
        project = tomllib.loads((distro / "pyproject.toml").read_text(encoding="utf-8"))
        lines = list(project["project"].get("dependencies", []))
    return sorted(str(PackagingRequirement(line)) for line in lines)


def input_sha256(requirements: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_lock(path: Path) -> Lock:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"no lock {path.name} in {path.parent}: run `{LOCK_COMMAND}`") from None
    digest = None
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(_INPUT_MARK):
            digest = line[len(_INPUT_MARK) :].strip()
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return Lock(path, digest, pins, hashlib.sha256(text.encode()).hexdigest())


def stale_reason(lock: Lock, declared: Sequence[str], marker_env: dict[str, str]) -> str | None:
    """Why `lock` does not fit the declared dependencies (None when it does)."""
    if lock.input_sha256 != input_sha256(declared):
        return "the distro's declared dependencies changed since it was made"
    for line in declared:
        req = PackagingRequirement(line)
        if req.marker is not None and not req.marker.evaluate({**marker_env, "extra": ""}):
            continue
        version = lock.pins.get(canonicalize_name(req.name))
        if version is None:
            return f"it has no pin for {req.name}"
        if not req.specifier.contains(version, prereleases=True):
            return f"its {req.name}=={version} does not satisfy {req.specifier}"
    return None


def check_lock(
    python: str, platform: str, arch: str, declared: Sequence[str], marker_env: dict[str, str],
    lock_dir: Path = LOCK_DIR,
) -> Lock:  # fmt: skip
    """The set's lock, or LockError when it is missing or stale."""
    lock = read_lock(lock_path(python, platform, arch, lock_dir))
    reason = stale_reason(lock, declared, marker_env)
    if reason:
        raise LockError(f"the lock {lock.path.name} is stale ({reason}): run `{LOCK_COMMAND}`")
    return lock


def _header(python: str, platform: str, arch: str, digest: str) -> str:
    return (
        f"# Package set {set_name(python, platform, arch)} of the Lumigo layer: every "
        "distribution lumigo_opentelemetry needs, pinned, with hashes.\n"
        f"# Generated by `{LOCK_COMMAND}` (uv pip compile); do not edit.\n"
        f"{_INPUT_MARK}{digest}\n"
    )


def compile_lock(
    declared: Sequence[str], python: str, platform: str, arch: str, lock_dir: Path = LOCK_DIR,
    uv: str | None = None,
) -> Path:  # fmt: skip
    """Resolve the set with uv and write its lock (replacing the old one)."""
    binary = uv or shutil.which("uv")
    if not binary:
        raise LockError("`uv` is needed to regenerate the locks (pip install uv)")
    with tempfile.TemporaryDirectory(prefix="lumigo-lock-") as tmp:
        output = Path(tmp) / "lock.txt"
        command = [
            binary, "pip", "compile", "-", "--no-header", "--generate-hashes",
            "--only-binary", ":all:", "--python-version", python,
            "--python-platform", UV_PLATFORMS[(platform, arch)], "--output-file", str(output),
        ]  # fmt: skip
        result = subprocess.run(
            command,
            input="\n".join(declared) + "\n",
            capture_output=True,
            text=True,
            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
            check=False,
        )
        if result.returncode != 0 or not output.exists():
            raise LockError(
                f"uv could not resolve {set_name(python, platform, arch)}:\n"
                + result.stderr[-3000:]
            )
        body = output.read_text(encoding="utf-8")
    path = lock_path(python, platform, arch, lock_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_header(python, platform, arch, input_sha256(declared)) + body)
    return path


def compile_locks(
    distro: Path,
    pythons: Sequence[str] = SUPPORTED_PYTHONS,
    platforms: Sequence[str] = PLATFORMS,
    arches: Sequence[str] = ARCHES,
    lock_dir: Path = LOCK_DIR,
    jobs: int = 4,
) -> list[Path]:
    """Regenerate the lock of every set (what `lumigo-injector lock-layer` runs)."""
    declared = declared_requirements(distro)
    combos = [(v, p, a) for p in platforms for a in arches for v in pythons]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda c: compile_lock(declared, c[0], c[1], c[2], lock_dir), combos))
