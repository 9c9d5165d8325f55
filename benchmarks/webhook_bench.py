"""Admission latency and throughput of `lumigo-injector serve` over loopback TLS, next to
the floor (a bare aiohttp TLS server answering a fixed AdmissionReview response).

The injector runs for real against a kmock Kubernetes emulator (the test harness in
tests/helpers/kube.py); requests are AdmissionReview v1 bodies for a pod created by a
Deployment (no name, no namespace in its metadata), as the API server sends them.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.kube import (  # noqa: E402
    KubeEmulator,
    TestCertificates,
    admission_review,
    deployment_pod,
    free_port,
    running_injector,
    wait_for,
)


async def _load(url: str, body: bytes, ca: Path, concurrency: int, total: int) -> dict[str, float]:
    import aiohttp

    context = ssl.create_default_context(cafile=str(ca))
    latencies: list[float] = []
    remaining = total
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status} from {url}")
                latencies.append(time.perf_counter() - started)

        # warm up the connections, then measure
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        latencies.clear()
        remaining = total
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rps": total / elapsed,
    }


def run_webhook_bench(work: Path, quick: bool = False) -> dict[str, Any]:
    total = 300 if quick else 3000
    rounds = 1 if quick else 3
    pod = deployment_pod("web", annotations={"lumigo.io/inject": "python"})
    body = json.dumps(admission_review(pod, namespace="shop")).encode()
    work = work / "webhook"
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with KubeEmulator() as kube:
        kube.create_namespace("shop")
        certs = TestCertificates(work / "certs")
        kubeconfig = kube.write_kubeconfig(work / "kubeconfig")
        floor_port = free_port()
        floor = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("webhook_floor.py")), str(floor_port),
             str(certs.cert_file), str(certs.key_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            with running_injector(kubeconfig, certs, work) as injector:
                floor_url = f"https://localhost:{floor_port}/mutate-pods"

                def floor_up() -> bool:
                    import socket

                    try:
                        socket.create_connection(("127.0.0.1", floor_port), 0.2).close()
                        return True
                    except OSError:
                        return False

                wait_for(floor_up, timeout=30, what="webhook floor server")
                # The answer must be a real injection, or we'd be timing the wrong thing.
                answer = injector.review(json.loads(body))
                if "patch" not in answer:
                    raise RuntimeError(f"the benchmark pod was not injected: {answer}")
                for _ in range(rounds):
                    for concurrency in (1, 16):
                        for name, url in (("lumigo-injector", injector.webhook_url),
                                          ("floor (bare aiohttp)", floor_url)):
                            figures = asyncio.run(
                                _load(url, body, certs.ca_file, concurrency, total)
                            )
                            results.setdefault((name, concurrency), []).append(figures)
        finally:
            floor.terminate()
            floor.wait(10)
    rows = []
    for (name, concurrency), runs in results.items():
        rows.append(
            {
                "server": name,
                "concurrency": concurrency,
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "rps": statistics.median(r["rps"] for r in runs),
                "requests_per_run": total,
                "rounds": len(runs),
            }
        )
    rows.sort(key=lambda r: (r["concurrency"], r["server"] != "lumigo-injector"))
    return {"rows": rows}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run_webhook_bench(Path(tmp), quick="--quick" in sys.argv), indent=2))
