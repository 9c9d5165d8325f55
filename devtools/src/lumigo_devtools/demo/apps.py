"""Local stand-ins for a cluster: venvs for app images, volumes, processes (thin I/O)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lumigo_devtools.demo.pods import LocalProcess
from lumigo_injector.layer.cache import cache_root


class DemoError(RuntimeError):
    """A step failed; the message says what and what to do."""


def app_venv(requirements: str) -> Path:
    """A venv with the app's own packages (no OpenTelemetry), cached by content."""
    key = hashlib.sha256(f"{sys.version}\n{requirements}".encode()).hexdigest()[:16]
    venv = cache_root() / "demo" / "venvs" / key
    if (venv / ".complete").exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    # two runs at once (a test run beside another) must not remove the venv the other builds
    with open(venv.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        return _make_venv(venv, key, requirements)


def _make_venv(venv: Path, key: str, requirements: str) -> Path:
    shutil.rmtree(venv, ignore_errors=True)
    req_file = venv.parent / f"{key}.txt"
    req_file.write_text(requirements)
    uv = shutil.which("uv")
    python = venv / "bin" / "python"
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(req_file)],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(req_file)],
        ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, env=_clean_tool_env())
        if done.returncode != 0:
            raise DemoError(f"could not make the app venv ({' '.join(argv[:3])}):\n{done.stderr}")
    (venv / ".complete").write_text("ok\n")
    return venv


def _clean_tool_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningApp:
    """One container running as a local process in its own process group."""

    def __init__(self, process: LocalProcess, workload: str, log_dir: Path) -> None:
        self.workload = workload
        self.log_path = log_dir / f"{workload}-{process.name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            process.argv,
            env=process.env,
            cwd=process.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_listening(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise DemoError(
                    f"{self.workload} exited with code {self.popen.returncode} before listening "
                    f"on port {port}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.1)
        raise DemoError(f"{self.workload} did not listen on port {port} in {timeout:.0f} s")

    def stop(self, grace: float = 8.0) -> None:
        """SIGINT first (the app exits normally and its spans are flushed), then SIGKILL
        for whatever of its process group is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5.0)
        self._log.close()
