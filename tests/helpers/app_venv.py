"""Virtual environments for test apps, and real app server subprocesses in them.

`app_venv(["flask==3.1.*", "gunicorn"])` returns a venv with those requirements and
the distro (installed from /work/main/distro, not editable), built with `uv` once and
cached under `~/.cache/lumigo-injector/venvs/` (env `LUMIGO_INJECTOR_CACHE` moves the
root) by a key of the requirements, the Python and a hash of the distro's source.

`run_app(venv, [...])` starts a server in that venv with the environment only (what the
injector sets in a pod: AUTOWRAPT_BOOTSTRAP, LUMIGO_TRACER_TOKEN, LUMIGO_ENDPOINT, ...),
waits for its port and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lumigo_injector.layer.build import source_hash
from lumigo_injector.layer.cache import cache_root as injector_cache_root
from tests.helpers.need import missing, pyenv_python

REPO = Path(__file__).resolve().parents[2]
DISTRO = REPO / "distro"
TEST_TOKEN = "t_0123456789abcdef0123"


def cache_root() -> Path:
    return injector_cache_root() / "venvs"


def distro_source_hash() -> str:
    """A hash of everything that goes into the distro's wheel (the layer build's own)."""
    return source_hash(DISTRO)[:12]


def _uv() -> str:
    uv = shutil.which("uv")
    if not uv:
        missing("`uv` not found on PATH (needed to build app venvs)")
        raise AssertionError  # unreachable
    return uv


def _run(cmd: Sequence[str], what: str) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def app_python() -> str:
    """The app venvs' default CPython minor: env `LUMIGO_MATRIX_PYTHON` (the version matrix
    sets it per run), else 3.11."""
    return os.environ.get("LUMIGO_MATRIX_PYTHON") or "3.11"


def app_venv(requirements: list[str], python: str | None = None, with_distro: bool = True) -> Path:
    """A cached venv (its directory) holding `requirements` and, by default, the distro,
    for CPython `python` (default `app_python()`)."""
    python = python or app_python()
    reqs = sorted(requirements)
    key_source = json.dumps({"reqs": reqs, "python": python, "distro": with_distro})
    req_key = hashlib.sha256(key_source.encode()).hexdigest()[:12]
    distro_key = distro_source_hash() if with_distro else "none"
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{req_key}-{distro_key}"
    marker = venv / ".complete"
    if marker.exists():
        return venv
    with open(root / f"{req_key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        interpreter = pyenv_python(python)
        uv = _uv()
        _run([uv, "venv", "--quiet", "--python", interpreter, str(venv)], "uv venv")
        packages = [*reqs, str(DISTRO)] if with_distro else reqs
        if packages:
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(venv / "bin" / "python"),
                    *packages,
                ],
                f"uv pip install {' '.join(packages)}",
            )
        (venv / "requirements.json").write_text(json.dumps({"requirements": reqs}, indent=1))
        marker.write_text("ok\n")
        _prune_stale(root, req_key, keep=venv)
    return venv


def _prune_stale(root: Path, req_key: str, keep: Path) -> None:
    """Drop venvs of the same requirements built from an older distro source (> 1 h old)."""
    horizon = time.time() - 3600
    for other in root.glob(f"{req_key}-*"):
        if other != keep and other.is_dir() and other.stat().st_mtime < horizon:
            shutil.rmtree(other, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_env(
    venv: Path,
    receiver_url: str | None,
    service_name: str = "test-app",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment an injected app container gets (plus fast span export)."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "VIRTUAL_ENV": str(venv),
        "AUTOWRAPT_BOOTSTRAP": "lumigo_opentelemetry",
        "LUMIGO_TRACER_TOKEN": TEST_TOKEN,
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    if receiver_url:
        env["LUMIGO_ENDPOINT"] = receiver_url
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


@dataclass
class AppProcess:
    """A running app server."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> str:
        """SIGTERM (graceful: spans are flushed at exit), then SIGKILL; returns the output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.output()


def wait_for_port(app: AppProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise RuntimeError(
                f"app exited ({app.proc.returncode}) before listening: {app.argv}\n{app.output()}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", app.port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"app did not listen on {app.port} within {timeout}s\n{app.output()}")


@contextlib.contextmanager
def run_app(
    venv: Path,
    argv: Sequence[str],
    *,
    receiver_url: str | None,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    service_name: str = "test-app",
    timeout: float = 60,
) -> Iterator[AppProcess]:
    """Start `argv` (`{port}` is replaced; a bare first word is looked up in the venv's
    bin/) with the injected-app environment, wait for the port, stop it on exit."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in argv]
    exe = venv / "bin" / args[0]
    if exe.exists():
        args[0] = str(exe)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"app-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            env=app_env(venv, receiver_url, service_name, env),
            cwd=str(cwd) if cwd else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    app = AppProcess(proc=proc, port=port, log_path=log_path, argv=args)
    try:
        wait_for_port(app, timeout)
        yield app
    finally:
        app.stop()


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No client span and no injected `traceparent` for our own test requests, even
    when the distro got activated inside the pytest process (importing it does that)."""
    try:
        from opentelemetry.instrumentation.utils import suppress_http_instrumentation
    except ImportError:
        yield
        return
    with suppress_http_instrumentation():
        yield


def request(app: AppProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One HTTP request to the app (httpx; no proxies from the environment)."""
    with untraced(), httpx.Client(trust_env=False, timeout=30) as client:
        return client.request(method, app.url + path, **kwargs)


def get(app: AppProcess, path: str, **kwargs: Any) -> httpx.Response:
    return request(app, "GET", path, **kwargs)
