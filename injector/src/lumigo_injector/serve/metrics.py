"""Prometheus metrics of `serve`, on the health port at `GET /metrics`.

Admissions (by namespace and outcome: injected, skipped, failed), admission latency, and the
fleet's gauges and counters per namespace (pods injected, not injected although asked for,
outdated; workloads paused; rollbacks and restarts). One registry per process, never the
global default one, so nothing else ends up on the page.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

ADMISSIONS = Counter(
    "lumigo_injector_admissions",
    "Pod admissions by outcome: injected, skipped (by rule) or failed (admitted uninjected).",
    ["namespace", "outcome"],
    registry=REGISTRY,
)
ADMISSION_SECONDS = Histogram(
    "lumigo_injector_admission_duration_seconds",
    "Time to decide one pod admission.",
    ["namespace"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
PODS_INJECTED = Gauge(
    "lumigo_injector_pods_injected", "Running pods injected.", ["namespace"], registry=REGISTRY
)
PODS_MISSED = Gauge(
    "lumigo_injector_pods_not_injected",
    "Running pods that ask for injection and are not injected.",
    ["namespace"],
    registry=REGISTRY,
)
PODS_OUTDATED = Gauge(
    "lumigo_injector_pods_outdated",
    "Running pods injected with another layer version than the injector's.",
    ["namespace"],
    registry=REGISTRY,
)
WORKLOADS_PAUSED = Gauge(
    "lumigo_injector_workloads_paused",
    "Workloads whose injection is paused by a crash-loop rollback.",
    ["namespace"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "lumigo_injector_rollbacks",
    "Crash-loop rollbacks made (workloads paused).",
    ["namespace"],
    registry=REGISTRY,
)
RESTARTS = Counter(
    "lumigo_injector_restarts",
    "Workload restarts made by the operator, by reason (catch-up, upgrade).",
    ["namespace", "reason"],
    registry=REGISTRY,
)


_ADMISSION_CHILDREN: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
#: Namespaces x outcomes whose metric children are kept at hand (the registry keeps them all).
_MAX_CHILDREN = 4096


def observe_admission(namespace: str | None, outcome: str, seconds: float) -> None:
    """Count one admission (`outcome`: injected, skipped or failed) and its latency.

    The labelled children are looked up once per namespace and outcome, not per admission
    (`labels()` validates, formats and locks on every call)."""
    key = (namespace or "", outcome)
    children = _ADMISSION_CHILDREN.get(key)
    if children is None:
        children = (ADMISSIONS.labels(*key), ADMISSION_SECONDS.labels(key[0]))
        if len(_ADMISSION_CHILDREN) < _MAX_CHILDREN:
            _ADMISSION_CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


async def handler(_: web.Request) -> web.Response:
    """`GET /metrics`: the Prometheus text exposition format."""
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
