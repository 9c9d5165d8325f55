"""Serves in-process requests to a benchmark app and prints the cyclic garbage they left.

    python garbage_probe.py flask|fastapi|django|django-fresh|django-asgi PATH N

Run in a fresh interpreter (traced when the environment activates the distro). The
app gets the probe's extra endpoints (`garbage_routes`). After a warm-up, the cycle
collector is stopped and told to keep what it finds (`DEBUG_SAVEALL`); N requests later
the spans are flushed (the export queue lets go of them) and one collection runs. Printed
as JSON, by kind: `all` the objects it found unreachable (what the requests left for the
collector instead of freeing on the spot), `cyclic` those of them that are themselves on
a reference cycle (the rest were only held by one).
"""

from __future__ import annotations

import collections
import gc
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu_driver  # noqa: E402
import garbage_routes  # noqa: E402


def kind(o: object) -> str:
    return f"{type(o).__module__}.{type(o).__qualname__}"


def on_cycles(objects: List[Any]) -> List[Any]:
    """The objects that lie on a reference cycle among `objects` (Tarjan's strongly
    connected components, iterative: a component of two or more, or a self-reference)."""
    index_of = {id(o): i for i, o in enumerate(objects)}
    edges = [[index_of[id(r)] for r in gc.get_referents(o) if id(r) in index_of] for o in objects]
    order: List[int] = [-1] * len(objects)
    low = [0] * len(objects)
    on_stack = [False] * len(objects)
    stack: List[int] = []
    cyclic: List[Any] = []
    counter = 0
    for root in range(len(objects)):
        if order[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            v, next_edge = work.pop()
            if next_edge == 0:
                order[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            for j in range(next_edge, len(edges[v])):
                w = edges[v][j]
                if order[w] < 0:
                    work += [(v, j + 1), (w, 0)]
                    break
                if on_stack[w]:
                    low[v] = min(low[v], order[w])
            else:
                if low[v] == order[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack[w] = False
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1 or v in edges[v]:
                        cyclic += [objects[i] for i in component]
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
    return cyclic


apps: Dict[str, Callable[..., None]] = {
    "flask": cpu_driver.flask_requests,
    "fastapi": cpu_driver.fastapi_requests,
    "django": cpu_driver.django_requests,
    "django-fresh": cpu_driver.django_requests,
    "django-asgi": cpu_driver.django_asgi_requests,
}
app, path, count = apps[sys.argv[1]], sys.argv[2], int(sys.argv[3])
garbage_routes.ADD[sys.argv[1]]()


def serve(requests: int, every: Callable[[int], None]) -> None:
    app(requests, every, path)


serve(20, cpu_driver.flush_points)  # warm-up: first-request set-up, memos, a first export
cpu_driver.flush()
gc.collect()
gc.disable()
gc.set_debug(gc.DEBUG_SAVEALL)
serve(count, lambda done: None)
cpu_driver.flush()  # the spans leave the export queue: what they hold is no longer reachable
gc.collect()
found = list(gc.garbage)
gc.set_debug(0)
gc.garbage.clear()
print(
    json.dumps(
        {
            "all": collections.Counter(map(kind, found)),
            "cyclic": collections.Counter(map(kind, on_cycles(found))),
        }
    )
)
