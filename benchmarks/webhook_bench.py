"""Admission latency and throughput of `lumigo-injector serve` over loopback TLS, next to
the floor (a bare aiohttp TLS server answering a fixed AdmissionReview response).

The injector runs for real against a kmock Kubernetes emulator (tests/helpers/kube.py) in a
process of its own, so neither the emulator nor the load generator shares a GIL with anything
measured. Requests are AdmissionReview v1 bodies for a pod created by a Deployment (no name,
no namespace in its metadata), as the API server sends them; every one is injected and counted
for an Event. Two streams: distinct pods (each request carries its own numbered annotation)
and replicas of one Deployment (identical pod objects, as a scale-up sends them). Load comes
from `wrk` (C, keep-alive connections, so TLS handshakes happen once per connection, as with
the API server's client); without `wrk`, from an aiohttp client. Runs are interleaved
(injector, floor, injector replicas, ...) and reported as medians with the spread of p99,
plus each injector figure's ratio to the floor measured in the same round.

With `--kopf`, the same admission handler served by kopf's own `kopf.WebhookServer`
(`webhook_kopf_server.py`) is measured too (distinct pods and replicas), for the comparison
in docs/operator.md.

With `--py-spy FILE`, the injector is sampled by py-spy during its first distinct-pods run at
concurrency 16 (collapsed stacks, `--format raw`, in FILE; the floor's in FILE with the
suffix `.floor`): where its time goes under load.

    uv run python benchmarks/webhook_bench.py [--quick] [--kopf] [--py-spy FILE]
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, Path(__file__).resolve().parent):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from load import parse_wrk  # noqa: E402

from tests.helpers.kube import (  # noqa: E402
    KubeEmulatorProcess,
    TestCertificates,
    admission_review,
    deployment_pod,
    free_port,
    running_injector,
    wait_for,
)

INJECTOR = "lumigo-injector"
REPLICAS = "lumigo-injector, replicas"
FLOOR = "floor (bare aiohttp)"
KOPF = "kopf WebhookServer"
KOPF_REPLICAS = "kopf WebhookServer, replicas"
SEQ = "SEQ-PLACEHOLDER"


def _wrk_script(body: bytes, path: Path) -> Path:
    """POST `body`; when it holds SEQ, every request puts a number of its own there."""
    text = body.decode()
    if "]==]" in text:
        raise ValueError("request body cannot be embedded in the wrk script")
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    if SEQ in text:
        pre, post = text.split(SEQ, 1)
        lines += [
            f"local pre = [==[{pre}]==]",
            f"local post = [==[{post}]==]",
            "local n = 0",
            "function init(args) n = tonumber(args[1]) or 0 end",
            "function request() n = n + 1 return wrk.format(nil, nil, nil, pre .. n .. post) end",
        ]
    else:
        lines.append(f"wrk.body = [==[{text}]==]")
    path.write_text("\n".join(lines) + "\n")
    return path


_RUNS = iter(range(1, 1_000_000))


def _wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict[str, float]:
    start = next(_RUNS) * 10_000_000  # request numbers never repeat across runs
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += ["--timeout", "10s", "-s", str(script), url, "--", str(start)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result = parse_wrk(done.stdout)
    if result.errors:
        raise RuntimeError(f"{result.errors} failed requests to {url}:\n{done.stdout}")
    requests = result.rps * max(1, round(seconds))
    return {"p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "rps": result.rps, "n": requests}


async def _aiohttp_load(
    url: str, body: bytes, ca: Path, concurrency: int, seconds: float
) -> dict[str, float]:
    import aiohttp

    context = ssl.create_default_context(cafile=str(ca))
    latencies: list[float] = []
    sent = [0]
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    headers = {"Content-Type": "application/json"}
    pre, _, post = body.partition(SEQ.encode())
    numbers = iter(range(next(_RUNS) * 10_000_000, 1 << 62))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(until: float, keep: bool) -> None:
            while time.perf_counter() < until:
                started = time.perf_counter()
                data = pre + str(next(numbers)).encode() + post if post else body
                sent[0] += 1
                async with session.post(url, data=data, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status} from {url}")
                if keep:
                    latencies.append(time.perf_counter() - started)

        warm = time.perf_counter() + 0.5
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rps": len(latencies) / elapsed,
        "n": sent[0],
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def _start_script(script: str, port: int, certs: TestCertificates) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(Path(__file__).with_name(script)), str(port)]
    return subprocess.Popen(
        [*argv, str(certs.cert_file), str(certs.key_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _review_via(url: str, body: bytes, ca: Path) -> dict[str, Any]:
    import requests

    answer = requests.post(url, data=body, verify=str(ca), timeout=10)
    answer.raise_for_status()
    response: dict[str, Any] = answer.json()["response"]
    return response


def _py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` for `seconds` (not pausing it), collapsed stacks into `out`."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_webhook_bench(
    work: Path, quick: bool = False, kopf: bool = False, py_spy: Path | None = None
) -> dict[str, Any]:
    seconds = 2.0 if quick else 5.0
    rounds = 1 if quick else 3
    # Distinct pods (every request differs: a numbered annotation), and replicas of one
    # Deployment (identical pod objects, as a scale-up sends them).
    distinct = deployment_pod("web", annotations={"lumigo.io/inject": "python", "seq": SEQ})
    replica = deployment_pod("web", annotations={"lumigo.io/inject": "python"})
    bodies = {
        INJECTOR: json.dumps(admission_review(distinct, namespace="shop")).encode(),
        REPLICAS: json.dumps(admission_review(replica, namespace="shop")).encode(),
    }
    bodies[FLOOR] = bodies[INJECTOR]
    if kopf:
        bodies[KOPF] = bodies[INJECTOR]
        bodies[KOPF_REPLICAS] = bodies[REPLICAS]
    work = work / "webhook"
    work.mkdir(parents=True, exist_ok=True)
    client = "wrk" if shutil.which("wrk") else "aiohttp"
    scripts = {
        name: _wrk_script(body, work / f"post{n}.lua")
        for n, (name, body) in enumerate(bodies.items())
    }
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with KubeEmulatorProcess() as kube:
        kube.create_namespace("shop")
        certs = TestCertificates(work / "certs")
        kubeconfig = kube.write_kubeconfig(work / "kubeconfig")
        floor_port = free_port()
        floor = _start_script("webhook_floor.py", floor_port, certs)
        kopf_port = free_port()
        kopf_server = None
        if kopf:
            os.environ["KUBECONFIG"] = str(kubeconfig)  # the kopf contender logs in with it
            kopf_server = _start_script("webhook_kopf_server.py", kopf_port, certs)
        try:
            with running_injector(kubeconfig, certs, work) as injector:
                floor_url = f"https://localhost:{floor_port}/mutate-pods"
                wait_for(lambda: _port_open(floor_port), timeout=30, what="webhook floor server")
                # The answer must be a real injection, or we'd be timing the wrong thing.
                for body in bodies.values():
                    answer = injector.review(json.loads(body.replace(SEQ.encode(), b"0")))
                    if "patch" not in answer:
                        raise RuntimeError(f"the benchmark pod was not injected: {answer}")
                assert injector.process is not None
                pids = {INJECTOR: injector.process.pid, FLOOR: floor.pid}
                pids[REPLICAS] = pids[INJECTOR]
                targets = [
                    (INJECTOR, injector.webhook_url),
                    (FLOOR, floor_url),
                    (REPLICAS, injector.webhook_url),
                ]
                if kopf:
                    kopf_url = f"https://localhost:{kopf_port}/mutate-pods"
                    wait_for(lambda: _port_open(kopf_port), timeout=60, what="kopf's server")
                    for name in (KOPF, KOPF_REPLICAS):
                        body = bodies[name].replace(SEQ.encode(), b"0")
                        if "patch" not in _review_via(kopf_url, body, certs.ca_file):
                            raise RuntimeError("kopf's server did not inject the benchmark pod")
                        targets.append((name, kopf_url))
                        assert kopf_server is not None
                        pids[name] = kopf_server.pid
                sampled: set[str] = set()
                for _ in range(rounds):
                    for concurrency in (1, 16):
                        for name, url in targets:
                            cpu = _cpu_seconds(pids[name])
                            sampler = None
                            if py_spy and concurrency == 16 and name in (INJECTOR, FLOOR):
                                out = py_spy if name == INJECTOR else py_spy.with_suffix(".floor")
                                if name not in sampled:  # the first such run only
                                    sampled.add(name)
                                    sampler = _py_spy(pids[name], seconds, out)
                            if client == "wrk":
                                figures = _wrk(url, scripts[name], concurrency, seconds)
                            else:
                                figures = asyncio.run(
                                    _aiohttp_load(
                                        url, bodies[name], certs.ca_file, concurrency, seconds
                                    )
                                )
                            cpu = _cpu_seconds(pids[name]) - cpu
                            if sampler is not None:
                                sampler.wait(30)
                            figures["cpu_ms_per_request"] = cpu * 1000 / max(1, figures["n"])
                            results.setdefault((name, concurrency), []).append(figures)
                time.sleep(1.5)  # one more Event flush
                events = kube.events("shop")
        finally:
            for process in (floor, kopf_server):
                if process is not None:
                    process.terminate()
                    process.wait(10)
    rows = []
    for (name, concurrency), runs in results.items():
        row: dict[str, Any] = {
            "server": name,
            "concurrency": concurrency,
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "p99_ms_min": min(r["p99_ms"] for r in runs),
            "p99_ms_max": max(r["p99_ms"] for r in runs),
            "rps": statistics.median(r["rps"] for r in runs),
            "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in runs),
            "seconds_per_run": seconds,
            "rounds": len(runs),
            "client": client,
        }
        floors = results[(FLOOR, concurrency)]  # every row has the same keys (1.0: the floor)
        row["p99_ratio_to_floor"] = statistics.median(
            r["p99_ms"] / f["p99_ms"] for r, f in zip(runs, floors)
        )
        row["p50_ratio_to_floor"] = statistics.median(
            r["p50_ms"] / f["p50_ms"] for r, f in zip(runs, floors)
        )
        rows.append(row)
    order = (INJECTOR, REPLICAS, KOPF, KOPF_REPLICAS, FLOOR)
    rows.sort(key=lambda r: (r["concurrency"], order.index(r["server"])))
    # Every admission is counted for an Event; aggregated, they are a handful of objects.
    event_summary = {
        "objects": len(events),
        "occurrences": sum(int(e.get("count") or 1) for e in events),
    }
    return {"rows": rows, "events": event_summary}


def format_rows(result: dict[str, Any]) -> str:
    lines = []
    for row in result["rows"]:
        ratio = row.get("p99_ratio_to_floor")
        lines.append(
            f"{row['server']:<26} c={row['concurrency']:<3} p50 {row['p50_ms']:6.2f} ms  "
            f"p99 {row['p99_ms']:6.2f} ms ({row['p99_ms_min']:.2f}-{row['p99_ms_max']:.2f})  "
            f"{row['rps']:7.0f} req/s  {row['cpu_ms_per_request']:.2f} ms CPU/req"
            + (f"  p99 x{ratio:.2f} of floor" if row["server"] != FLOOR else "")
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    if "--help" in sys.argv or "-h" in sys.argv:  # usage, not a run
        print(__doc__)
        sys.exit(0)
    spy = (
        Path(sys.argv[sys.argv.index("--py-spy") + 1]).resolve() if "--py-spy" in sys.argv else None
    )
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_webhook_bench(
            Path(tmp), quick="--quick" in sys.argv, kopf="--kopf" in sys.argv, py_spy=spy
        )
        print(json.dumps(outcome, indent=2))
        print(format_rows(outcome), file=sys.stderr)
