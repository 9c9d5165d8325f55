"""A traced request's objects die with the request, as an untraced one's do.

Objects in a reference cycle outlive their request until the cycle collector runs; the
more a request leaves, the more often the collector runs and the longer a full
collection stalls every request behind it (the p99 tail). Tracing must leave no more of
them than the app itself does: the same benchmark app is served in-process, untraced and
traced, and the cycle collector's findings are compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lumigo_devtools.receiver import OtlpReceiver

PROBE = Path(__file__).with_name("garbage_probe.py")
REQUESTS = 60


def garbage(app: str, traced_to: str | None) -> Counter[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMIGO_", "OTEL_"))}
    env.pop("AUTOWRAPT_BOOTSTRAP", None)
    if traced_to is not None:
        env.update(
            AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
            LUMIGO_TRACER_TOKEN="t_garbage",
            LUMIGO_ENDPOINT=traced_to,
            LUMIGO_REPORT_DEPENDENCIES="false",
        )
    done = subprocess.run(
        [sys.executable, str(PROBE), app, str(REQUESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return Counter(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_tracing_leaves_no_request_objects_to_the_cycle_collector(app: str) -> None:
    with OtlpReceiver() as receiver:
        traced = garbage(app, receiver.url)
        assert receiver.spans(), "the traced run exported nothing: it was not traced"
    untraced = garbage(app, None)
    extra = traced - untraced
    assert not extra, f"left for the cycle collector by tracing, over {REQUESTS} requests: {extra}"
