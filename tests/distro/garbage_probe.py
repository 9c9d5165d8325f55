"""Serves in-process requests to a benchmark app and prints the cyclic garbage they left.

    python garbage_probe.py flask|fastapi N

Run in a fresh interpreter (traced when the environment activates the distro). After a
warm-up, the cycle collector is stopped and told to keep what it finds (`DEBUG_SAVEALL`);
N requests later one collection runs and the kinds of objects it found unreachable are
printed as JSON: what the requests left for the collector instead of freeing on the spot.
"""

from __future__ import annotations

import collections
import gc
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import cpu_driver  # noqa: E402

serve = {"flask": cpu_driver.flask_requests, "fastapi": cpu_driver.fastapi_requests}[sys.argv[1]]
count = int(sys.argv[2])
serve(20, cpu_driver.flush_points)  # warm-up: first-request set-up, memos, a first export
cpu_driver.flush()
gc.collect()
gc.disable()
gc.set_debug(gc.DEBUG_SAVEALL)
serve(count, lambda done: None)
gc.collect()
kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
gc.set_debug(0)
gc.garbage.clear()
print(json.dumps(dict(kinds)))
