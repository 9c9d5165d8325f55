"""Missing prerequisites: skip on a developer machine, fail on CI (CI=true)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip locally, fail on CI, with the same message."""
    if ON_CI:
        pytest.fail(f"required on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def tcp_service(host: str, port: int, what: str) -> None:
    """Require a TCP service, e.g. MariaDB at 127.0.0.1:3306."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        missing(f"{what} not reachable at {host}:{port} ({exc})")


def executable(name: str) -> str:
    """Require an executable on PATH and return its path."""
    path = shutil.which(name)
    if not path:
        missing(f"`{name}` not found on PATH")
        raise AssertionError  # unreachable
    return path


def pyenv_python(minor: str) -> str:
    """Return the path of a pyenv CPython `3.X` interpreter, or skip/fail."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = sorted(Path(root, "versions").glob(f"{minor}.*"))
    for cand in reversed(candidates):
        exe = cand / "bin" / "python3"
        if exe.exists():
            return str(exe)
    found = shutil.which(f"python{minor}")
    if found:
        return found
    missing(f"CPython {minor} not found (pyenv root {root})")
    raise AssertionError  # unreachable


def debian_package(package: str, path: str) -> str:
    """Require the file `path` of a Debian package, installing `package` with apt-get when it
    is missing and this is a Debian system run as root (e.g. `busybox-static`'s
    /bin/busybox). Returns `path`; skips locally / fails on CI when it cannot be had."""
    if Path(path).exists():
        return path
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        install = [apt, "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", package]
        quiet = {"capture_output": True, "check": False, "timeout": 600}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, **quiet).returncode != 0:  # type: ignore[call-overload]
            subprocess.run([apt, "update", "-q"], env=env, **quiet)  # type: ignore[call-overload]
            subprocess.run(install, env=env, **quiet)  # type: ignore[call-overload]
    if not Path(path).exists():
        missing(f"{path} not found (Debian package {package}; `apt-get install {package}`)")
    return path
