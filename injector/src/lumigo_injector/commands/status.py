"""`lumigo-injector status` (also `kubectl lumigo status`): is injection working?

One row per Deployment, StatefulSet and DaemonSet that asks for injection (its own
annotation, its template's or its namespace's) or is paused by a rollback: pods injected out
of running, the layer versions they run, the pods that ask for injection and are not (with
why, from the injector's Events), and the pause reason. Reads the cluster of the current
kubeconfig context. Exit status: 0 when every pod that should be injected is, 1 when any is
not, 2 when the cluster cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from lumigo_injector.spec.names import DEFAULT_LAYER_VERSION

OUTPUTS = ("table", "json")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="show which workloads are injected, outdated, missed or paused",
        description=(
            "Reads the cluster of the current kubeconfig context and shows, per workload that "
            "asks for injection: pods injected/total, layer versions, pods that should be "
            "injected and are not (and why), and a rollback pause. Exit 1 when any pod that "
            "should be injected is not."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="every namespace of the cluster"
    )
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table", help="table or json")
    parser.add_argument(
        "--layer-version",
        default=DEFAULT_LAYER_VERSION,
        help=f"layer pods should run; others are outdated (default {DEFAULT_LAYER_VERSION})",
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.set_defaults(func=run)


def _client(context: str | None) -> tuple[Any, str]:
    """An ApiClient for the kubeconfig (or in-cluster) and the context's namespace."""
    from kubernetes import client, config

    namespace = "default"
    try:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        if context is None and active:
            namespace = active.get("context", {}).get("namespace") or namespace
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient(), namespace


def _getter(api: Any) -> Callable[[str], Any]:
    """GET a path of the API server as JSON, with the kubeconfig's address and credentials."""
    import urllib.request

    from lumigo_injector.serve.kube_http import _auth_headers, _ssl_context

    configuration = api.configuration
    context = _ssl_context(configuration)

    def get(path: str) -> Any:
        headers = {**_auth_headers(configuration), "Accept": "application/json"}
        request = urllib.request.Request(configuration.host.rstrip("/") + path, headers=headers)
        tls = context if not isinstance(context, bool) else None
        with urllib.request.urlopen(request, timeout=30, context=tls) as response:
            return json.loads(response.read())

    return get


def collect(get: Callable[[str], Any], namespace: str | None) -> dict[str, Any]:
    """Namespaces, workloads, pods and Events of one namespace (None: all), as plain dicts."""
    from lumigo_injector.k8s.fleet import FLEET_KINDS
    from lumigo_injector.serve.namespaces import opt_in_view
    from lumigo_injector.spec.workloads import KINDS

    scope = f"/namespaces/{namespace}" if namespace else ""
    if namespace:
        namespaces = [get(f"/api/v1/namespaces/{namespace}")]
    else:
        namespaces = get("/api/v1/namespaces")["items"]
    workloads = []
    for kind in FLEET_KINDS:
        info = KINDS[kind]
        path = f"/apis/{info.group}/{info.version}{scope}/{info.resource}"
        workloads += [(kind, obj) for obj in get(path)["items"]]
    return {
        "namespaces": {
            n["metadata"]["name"]: opt_in_view(n.get("metadata") or {}) for n in namespaces
        },
        "workloads": workloads,
        "pods": get(f"/api/v1{scope}/pods")["items"],
        "events": get(f"/api/v1{scope}/events")["items"],
    }


def _versions(versions: dict[str, int]) -> str:
    return ", ".join(f"{v} ({n})" for v, n in versions.items()) or "-"


def render_table(reports: list[Any]) -> str:
    """The table `status` prints: one row per workload, then the pods not injected."""
    header = ("NAMESPACE", "WORKLOAD", "INJECTED", "LAYERS", "NOT INJECTED", "PAUSED")
    rows = [header]
    for r in reports:
        rows.append(
            (
                r.namespace,
                f"{r.kind.lower()}/{r.name}",
                f"{r.injected}/{len(r.pods)}",
                _versions(r.versions),
                str(len(r.missed)),
                r.paused or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
        for row in rows
    ]
    missed = [
        f"  {r.namespace}/{pod}: {why}" for r in reports for pod, why in sorted(r.missed.items())
    ]
    if missed:
        lines += ["", "Pods that should be injected and are not:", *missed]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    from lumigo_injector.k8s.fleet import assess

    try:
        api, context_namespace = _client(args.context)
        namespace = None if args.all_namespaces else (args.namespace or context_namespace)
        found = collect(_getter(api), namespace)
    except Exception as exc:
        print(f"lumigo-injector status: cannot read the cluster: {exc}", file=sys.stderr)
        return 2
    reports = assess(
        found["workloads"],
        found["pods"],
        found["namespaces"],
        args.layer_version,
        now=time.time(),
        events=found["events"],
    )
    if args.output == "json":
        print(json.dumps({"workloads": [r.as_json() for r in reports]}, indent=2))
    elif reports:
        print(render_table(reports))
    else:
        where = "the cluster" if namespace is None else f"namespace {namespace}"
        print(f"No workload in {where} asks for injection.")
    return 1 if any(r.missed for r in reports) else 0
