"""The admission handler in kopf's form, and its registration with kopf.

`webhook.Admission.mutate_pod` is a `@kopf.on.mutate` handler: it takes kopf's keyword
arguments (`body`, `patch`, `warnings`, `namespace`, `operation`, `dryrun`, ...), never raises
(any error admits the pod unchanged) and writes its JSONPatch into kopf's `patch` as one
`PatchOps` transformation. `register` puts it in a kopf registry for pod CREATEs under the id
`mutate-pods`, so kopf's own webhook server routes `POST /mutate-pods` to it
(`kopf_server` builds that server from the chart's certificate files).

`serve` does not run kopf's server: its own aiohttp server (`webhook.build_app`) calls the
decision behind this handler (`Admission.admit`) directly and answers with its JSONPatch,
instead of letting kopf deep-copy and re-diff the pod. kopf's server answers the admission
benchmark several times slower than the target (docs/operator.md, "The webhook and kopf's
admission server"), drops the review's namespace for pods that have none in their metadata,
and denies the pod when a handler fails, where the chart wants it admitted. The admission
registry is therefore kept apart from the operator's: kopf refuses to run admission handlers
without its server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonpatch
import kopf

HANDLER_ID = "mutate-pods"  # kopf's server routes POST /<id>: the chart's path /mutate-pods

Handler = Callable[..., Awaitable[None]]


class PatchOps:
    """A kopf patch transformation that applies a JSONPatch (RFC 6902) to the body."""

    def __init__(self, ops: list[dict[str, Any]]) -> None:
        self.ops = ops

    def __call__(self, body: kopf.RawBody) -> None:
        jsonpatch.apply_patch(body, self.ops, in_place=True)

    def __repr__(self) -> str:
        return f"PatchOps({len(self.ops)} ops)"


def register(
    handler: Handler, registry: kopf.OperatorRegistry | None = None
) -> kopf.OperatorRegistry:
    """Register `handler` as the mutating handler of pod CREATEs; return the registry."""
    registry = registry if registry is not None else kopf.OperatorRegistry()
    kopf.on.mutate(
        "",
        "v1",
        "pods",
        id=HANDLER_ID,
        operations=["CREATE"],
        side_effects=True,  # Events and Secrets, skipped on dry runs
        ignore_failures=True,  # the chart's failurePolicy: Ignore
        registry=registry,
    )(handler)
    return registry


def kopf_server(
    *, host: str, port: int, cert_file: Path, key_file: Path, reload_interval: float = 5.0
) -> kopf.WebhookServer:
    """kopf's own HTTPS admission server on the chart's certificate files."""
    return kopf.WebhookServer(
        addr=host,
        port=port,
        certfile=str(cert_file),
        pkeyfile=str(key_file),
        file_check_interval=reload_interval,
    )
