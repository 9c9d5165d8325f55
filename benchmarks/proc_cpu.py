"""CPU, context switches and threads of an app server per request, from /proc.

    python benchmarks/proc_cpu.py --mode base|ours [--app fastapi|flask|django] [--load wrk|ka]
        [--seconds 5] [--n 3000] [--rounds 3] [--src distro/src] [--strace]

`--mode base ours=OTHER/distro/src ours` compares two distro trees (`--src` is the default).

Starts the server as `run.py` does (uvicorn for FastAPI; gunicorn's one sync worker for
Flask and Django, whose worker process is the one measured), warms it up, then reads every
thread's utime/stime (`/proc/PID/task/*/stat`) and voluntary/involuntary context switches
(`/proc/PID/task/*/status`) before and after a fixed load: wrk (`-t1 -c4`, as `run.py`)
or N keep-alive requests on one connection (`ka`). Prints per request: user and sys CPU
(µs), context switches, per thread name. Runs alternate base/ours when both are given.
`--strace` attaches `strace -c -f` for the load and prints syscalls per request.
The CPU figures move with the machine's load; read them side by side, alternating.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
VENVS = Path("/root/.cache/lumigo-injector/bench/venvs")
TICK = os.sysconf("SC_CLK_TCK")


def _venv(mode: str) -> Path:
    prefix = "baseline-" if mode == "base" else "ours-"  # ours, or ours=SRC
    return sorted(VENVS.glob(prefix + "*"))[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _threads(pid: int) -> dict[int, tuple[str, float, float, int, int, int]]:
    """tid -> (name, user s, sys s, voluntary, involuntary switches, minor faults)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        inv = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        out[int(task.name)] = (
            name,
            int(fields[11]) / TICK,
            int(fields[12]) / TICK,
            vol,
            inv,
            int(fields[7]),
        )
    return out


def _wrk(url: str, seconds: int) -> int:
    done = subprocess.run(
        ["wrk", "-t1", "-c4", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    )
    m = re.search(r"(\d+) requests in", done.stdout)
    assert m, done.stdout
    return int(m.group(1))


def _ka(port: int, n: int, path: str) -> int:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        assert r.status == 200
    c.close()
    return n


def _argv(app: str, venv: Path, port: int) -> list[str]:
    if app == "fastapi":
        argv = [str(venv / "bin/python"), "-m", "uvicorn", "fastapi_app:app"]
        argv += ["--app-dir", str(APPS), "--port", str(port)]
        return [*argv, "--log-level", "warning", "--no-access-log"]
    target = "flask_app:app" if app == "flask" else "django_app:application"
    argv = [str(venv / "bin/gunicorn"), "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}"]
    return [*argv, "--chdir", str(APPS), target]


def _worker(master: int) -> int:
    """gunicorn's one worker: the master's child process."""
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn master {master} started no worker")


def one(mode: str, args: argparse.Namespace) -> None:
    port = _free_port()
    venv = _venv(mode.partition("=")[0])
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTHONPATH", None)
    if mode.startswith("ours"):
        env.update(
            LUMIGO_TRACER_TOKEN="t_bench",
            LUMIGO_REPORT_DEPENDENCIES="false",
            AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
            LUMIGO_ENDPOINT=f"http://127.0.0.1:{args.recv}/v1/traces",
        )
        src = mode.partition("=")[2] or args.src
        if src:
            env["PYTHONPATH"] = str(Path(src).resolve())
    argv = _argv(args.app, venv, port)
    proc = subprocess.Popen(argv, env=env, cwd=APPS, start_new_session=True)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}{args.path}"
        _wrk(url, 1)
        time.sleep(0.5)
        pid = _worker(proc.pid) if args.app != "fastapi" else proc.pid
        st = None
        if args.strace:
            st = subprocess.Popen(
                ["strace", "-c", "-f", "-p", str(pid), "-o", f"/tmp/strace.{os.getpid()}"],
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        before = _threads(pid)
        t0 = time.monotonic()
        n = _wrk(url, args.seconds) if args.load == "wrk" else _ka(port, args.n, args.path)
        wall = time.monotonic() - t0
        after = _threads(pid)
        if st is not None:
            st.send_signal(signal.SIGINT)
            st.wait()
        tot = [0.0, 0.0, 0, 0, 0]
        rows = []
        for tid, a in after.items():
            b = before.get(tid, (a[0], 0.0, 0.0, 0, 0, 0))
            d = [a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4], a[5] - b[5]]
            for i in range(5):
                tot[i] += d[i]
            if any(d):
                rows.append(f"{a[0]}:{tid}")
                rows.append(
                    f"u{d[0] / n * 1e6:.0f} s{d[1] / n * 1e6:.0f} v{d[2] / n:.2f} i{d[3] / n:.2f}"
                )
        print(
            f"{mode[:12]:12} n={n} rps {n / wall:5.0f} busy {(tot[0] + tot[1]) / wall:.2f} "
            f"user {tot[0] / n * 1e6:6.1f} us sys {tot[1] / n * 1e6:6.1f} us "
            f"vcs {tot[2] / n:.2f} ics {tot[3] / n:.2f} flt {tot[4] / n:.2f} | " + " ".join(rows),
            flush=True,
        )
        if st is not None:
            lines = Path(f"/tmp/strace.{os.getpid()}").read_text().splitlines()
            calls = [ln.split() for ln in lines if re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+", ln)]
            for c in calls:
                if len(c) >= 5:
                    print(f"   {c[-1]:16} {int(c[3]) / n:.2f}/req")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", nargs="+", default=["base", "ours"])
    p.add_argument("--app", choices=["fastapi", "flask", "django"], default="fastapi")
    p.add_argument("--load", choices=["wrk", "ka"], default="wrk")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--path", default="/hello")
    p.add_argument("--src", default=None)
    p.add_argument("--recv", type=int, default=4318)
    p.add_argument("--strace", action="store_true")
    args = p.parse_args()
    for _ in range(args.rounds):
        for mode in args.mode:
            one(mode, args)


if __name__ == "__main__":
    sys.exit(main())
