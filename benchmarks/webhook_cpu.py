"""CPU per admission in-process: the webhook figure that does not move with the machine's load.

    uv run python benchmarks/webhook_cpu.py [--quick] [--replicas] [--no-callgrind]

The webhook benchmark (`webhook_bench.py`) measures latency over TLS on a shared machine,
where one noisy neighbour moves p99 more than any change to the injector does. This one
runs the admission path of `serve` in one process, without HTTP: the AdmissionReview bodies
the benchmark sends (a Deployment's pod, every one with its own numbered annotation; with
`--replicas`, one identical pod) go through `webhook.review_answer` (parsing, the kopf
handler, the mutation, the JSONPatch, metrics, the decision log and Event counting, the
answer's JSON), against a namespace lookup that answers at once.

Two figures: microseconds per admission (best of a few runs; moves with load), and
instructions per admission under `valgrind --tool=callgrind`, the marginal cost
`(Ir(N2) - Ir(N1)) / (N2 - N1)`, so start-up and imports cancel out and two runs agree
to within a fraction of a percent.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEQ = "SEQ-PLACEHOLDER"
COUNTS = {"full": (500, 3000), "quick": (100, 600)}
_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def bodies(count: int, replicas: bool = False) -> list[bytes]:
    """The request bodies `webhook_bench.py` sends: distinct pods, or replicas of one."""
    from tests.helpers.kube import admission_review, deployment_pod

    annotations = {"lumigo.io/inject": "python"}
    if not replicas:
        annotations["seq"] = SEQ
    body = json.dumps(
        admission_review(deployment_pod("web", annotations=annotations), namespace="shop")
    ).encode()
    if replicas:
        return [body] * count
    pre, post = body.split(SEQ.encode())
    return [pre + str(10_000_000 + n).encode() + post for n in range(count)]


class _NoApi:
    """Where Events would go; the recorder only counts them here (no flush runs)."""

    async def auth_headers(self) -> Mapping[str, str]:
        return {}

    async def create(self, *_: Any) -> None:
        return None

    async def merge_patch(self, *_: Any) -> None:
        return None


async def admit(requests: list[bytes]) -> tuple[float, list[bytes]]:
    """Answer `requests` in order; the seconds it took and the answers."""
    from lumigo_injector.k8s.mutation import InjectionSettings
    from lumigo_injector.serve import events, webhook

    async def no_annotations(_: str) -> Mapping[str, str]:
        return {}

    recorder = events.EventRecorder(_NoApi(), interval=3600.0)
    admission = webhook.Admission(
        injection=InjectionSettings(), namespaces=no_annotations, recorder=recorder
    )
    answers = []
    started = time.perf_counter()
    for body in requests:
        answers.append(await webhook.review_answer(admission, body))
    return time.perf_counter() - started, answers


def count_instructions(requests: int, replicas: bool, work: Path) -> int:
    """Instructions of one process answering `requests` admissions, imports left out.

    The process starts under callgrind with instrumentation off (kopf's imports take ~8 G
    instructions, minutes when counted), says when it is ready, and waits for a file; the
    instrumentation is switched on (`callgrind_control -i on`) before the file appears.
    """
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if not valgrind or not control:
        raise RuntimeError("valgrind is not on PATH (apt-get install valgrind)")
    out = work / f"callgrind.webhook.{requests}.out"
    source = work / f"bodies.{requests}"
    source.write_bytes(b"\n".join(bodies(requests, replicas)))  # JSON has no raw newline
    go = work / f"go.{requests}"
    argv = [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    argv += ["--dump-instr=no", sys.executable, __file__, "--run", str(source), str(go)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        raise RuntimeError(f"x{requests} did not start: {child.communicate()[1][-600:]}")
    subprocess.run([control, "-i", "on", str(child.pid)], capture_output=True, check=True)
    go.touch()
    _, errors = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"x{requests} failed: {errors.strip()[-600:]}")
    match = _TOTALS.search(out.read_bytes())
    out.unlink()
    if not match:
        raise RuntimeError(f"no instruction total in callgrind output for x{requests}")
    return int(match.group(1))


def instructions_per_admission(counts: tuple[int, int], replicas: bool = False) -> float:
    low, high = counts
    with tempfile.TemporaryDirectory() as tmp:
        first = count_instructions(low, replicas, Path(tmp))
        second = count_instructions(high, replicas, Path(tmp))
    return (second - first) / (high - low)


def microseconds_per_admission(count: int, replicas: bool = False, runs: int = 5) -> float:
    requests = bodies(count, replicas)
    asyncio.run(admit(requests[: count // 10]))  # warm-up: imports, first-call caches
    return min(asyncio.run(admit(requests))[0] for _ in range(runs)) / count * 1e6


def main(argv: list[str]) -> int:
    replicas = "--replicas" in argv
    if "--run" in argv:  # one counted run, under callgrind: no test helpers imported
        source, go = (Path(arg) for arg in argv[argv.index("--run") + 1 :][:2])
        requests = source.read_bytes().split(b"\n")
        import lumigo_injector.serve.webhook  # noqa: F401  (the imports, before counting)

        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.01)
        asyncio.run(admit(requests))
        return 0
    counts = COUNTS["quick" if "--quick" in argv else "full"]
    stream = "replicas of one pod" if replicas else "distinct pods"
    micros = microseconds_per_admission(counts[1], replicas)
    print(f"{stream}: {micros:.1f} us per admission (best of 5 x {counts[1]}, in-process)")
    if "--no-callgrind" not in argv:
        instructions = instructions_per_admission(counts, replicas)
        print(
            f"{stream}: {instructions / 1e6:.3f} M instructions per admission "
            f"(callgrind, marginal {counts[0]} -> {counts[1]})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
