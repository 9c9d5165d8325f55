"""The start-up dependency report: resource attributes and installed distributions.

Sent once, only with a token, the default endpoint and `LUMIGO_REPORT_DEPENDENCIES` not
false, on a daemon thread with a short timeout: it never delays start-up, and a daemon
thread never delays interpreter exit.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Mapping

from lumigo_opentelemetry._logging import logger
from lumigo_opentelemetry.config import Config

REPORT_TIMEOUT_SECONDS = 3.0
THREAD_NAME = "lumigo-dependency-report"


def installed_distributions() -> List[Dict[str, str]]:
    """(name, version) of every importable distribution, sorted and de-duplicated."""
    from importlib.metadata import distributions

    seen: Dict[str, str] = {}
    for dist in distributions():
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception:
            continue
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}\0{version}"
    pairs = (value.split("\0", 1) for value in seen.values())
    return sorted(({"name": n, "version": v} for n, v in pairs), key=lambda d: d["name"].lower())


def report_payload(resource_attributes: Mapping[str, Any]) -> Dict[str, Any]:
    attributes = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in resource_attributes.items()
    }
    return {"resourceAttributes": attributes, "packages": installed_distributions()}


def send_report(url: str, token: str, resource_attributes: Mapping[str, Any]) -> None:
    from urllib.request import Request, urlopen

    body = json.dumps(report_payload(resource_attributes)).encode("utf-8")
    request = Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"LumigoToken {token}"},
    )
    with urlopen(request, timeout=REPORT_TIMEOUT_SECONDS) as response:
        response.read()


def report_in_background(config: Config, resource_attributes: Mapping[str, Any]) -> None:
    """Start the daemon thread that sends the report; returns immediately."""
    if not config.should_report_dependencies or not config.token:
        return
    # Import here, on the calling thread: an import running on a background thread when the
    # app forks would leave the child holding that module's import lock forever.
    import email.parser  # noqa: F401  (used by importlib.metadata)
    import encodings.idna  # noqa: F401  (used when resolving the host name)
    import importlib.metadata  # noqa: F401
    import urllib.request  # noqa: F401

    token = config.token
    url = config.dependencies_endpoint
    attributes = dict(resource_attributes)

    def run() -> None:
        try:
            send_report(url, token, attributes)
            logger.debug("dependency report sent to %s", url)
        except Exception as exc:
            logger.debug("dependency report to %s failed: %s", url, exc)

    threading.Thread(target=run, name=THREAD_NAME, daemon=True).start()
