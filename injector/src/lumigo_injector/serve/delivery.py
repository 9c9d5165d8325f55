"""The operator's layer delivery, decided once at start-up.

`auto` asks the API server for its version (`GET /version`) and picks the image volume on
Kubernetes 1.35 or newer, the init container otherwise or when the version cannot be read
(`lumigo_injector.spec.delivery` decides; this module only fetches and logs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from lumigo_injector.spec.delivery import AUTO, Delivery, DeliveryChoice, resolve, server_version

log = logging.getLogger("lumigo_injector.serve")


def read_server_version(api_client: Any) -> tuple[int, int] | None:
    """(major, minor) of the API server through the kubernetes client (blocking).

    The answer is read as plain JSON, not through the client's model, which refuses answers
    missing fields we do not need.
    """
    from kubernetes import client

    versions: Any = client.VersionApi(api_client)
    response = versions.get_code(_request_timeout=5, _preload_content=False)
    info = json.loads(response.data)
    return server_version(info) if isinstance(info, dict) else None


async def choose(choice: DeliveryChoice, api_client: Any) -> Delivery:
    """The delivery for pods that do not say otherwise; logs what was chosen and why."""
    version: tuple[int, int] | None = None
    if choice == AUTO:
        try:
            version = await asyncio.to_thread(read_server_version, api_client)
        except Exception as exc:
            status = getattr(exc, "status", None)  # an ApiException's text carries the body
            why = f"HTTP {status}" if status else str(exc) or exc.__class__.__name__
            log.warning("cannot read the API server version (%s); assuming before 1.35", why)
    delivery = resolve(choice, version)
    shown = f"{version[0]}.{version[1]}" if version else None
    log.info(
        "layer delivery: %s",
        delivery,
        extra={"delivery": delivery, "configured": choice, "server_version": shown},
    )
    return delivery
