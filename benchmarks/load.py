"""Load generation with wrk, and the few process measurements the benchmarks need."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """Read requests/s, p50/p99 and errors from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return LoadResult(total, rps, p50, p99, errors)


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "benchmarks need `wrk` (Debian: apt-get install wrk); it is the load generator"
        )
    return found


def run_wrk(url: str, seconds: float, connections: int = 4) -> LoadResult:
    done = subprocess.run(
        [
            wrk_path(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(done.stdout)


def get_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return bool(resp.status == 200)
    except OSError:
        return False


class Server:
    """An app server in its own process group; measures time to first 200."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.log = log

    def wait_ready(self, url: str, timeout: float = 60.0) -> float:
        """Seconds from process start to the first 200 from `url`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"server exited ({self.popen.returncode}); see {self.log}")
            if get_ok(url, timeout=1.0):
                return time.perf_counter() - self.started
            time.sleep(0.005)
        raise RuntimeError(f"server not ready in {timeout}s; see {self.log}")

    def rss_mib(self) -> float:
        """Resident memory of every process in the server's group, in MiB."""
        total_kib = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                pgrp = int(stat.rsplit(")", 1)[1].split()[2])
                if pgrp != self.popen.pid:
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total_kib / 1024

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()


def timed_run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of a short command (which must exit 0)."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}")
    return wall


#: `/bin/sh -c` script: run "$@", then exec "$0" (a Python) in the same process to print the
#: shell's RUSAGE_CHILDREN max RSS (it survives exec) and the command's exit status
_PEAK_SCRIPT = (
    '"$@" >/dev/null 2>&1; rc=$?; exec "$0" -I -S -c '
    "'import resource, sys; "
    'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, sys.argv[1])\' "$rc"'
)


def peak_rss_mib(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Peak RSS in MiB of a short command (which must exit 0): the largest over its exec chain.

    Not `wait4`'s `ru_maxrss` of a child of this process: Linux's exec folds the high-water
    mark of the address space it replaces (a fork or vfork of this large process) into the
    child's figure, so any command smaller than the caller reads as the caller's size. Here
    a small `/bin/sh` (~2 MiB, the floor of the figure) forks the command, and its own
    children's maximum is read after it, by the Python it execs into.
    """
    done = subprocess.run(
        ["/bin/sh", "-c", _PEAK_SCRIPT, sys.executable, *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    kib, status = done.stdout.split()
    if status != "0":
        raise RuntimeError(f"{argv} exited {status}")
    return int(kib) / 1024
