"""The start-up dependency report: resource attributes and installed distributions.

The body is `{"resourceAttributes": {...}, "dependencies": [{"name", "version"}, ...]}`,
the contract of Lumigo's backend; the resource's `process.environ` is left out (the
environment has no business there). Sent once, only with a token, the default endpoint
and `LUMIGO_REPORT_DEPENDENCIES` not false, on a daemon thread with a short timeout
(`LUMIGO_CONNECTION_TIMEOUT`, 3 s): it never delays start-up, and a daemon thread never
delays interpreter exit. Even the imports it needs (importlib.metadata, the HTTP client)
happen on that thread, not during the app's start-up.
"""

from __future__ import annotations

import os
import threading

from lumigo_opentelemetry._logging import logger
from lumigo_opentelemetry.config import Config, authorization_header

TYPE_CHECKING = False  # typing is not imported at start-up (it costs milliseconds)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Mapping, Union

#: resource attributes that never go into the report
EXCLUDED_ATTRIBUTES = frozenset({"process.environ"})
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
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in resource_attributes.items()
        if k not in EXCLUDED_ATTRIBUTES
    }
    return {"resourceAttributes": attributes, "dependencies": installed_distributions()}


def post_report(url: str, token: str, body: bytes, timeout: float) -> None:
    """POST the report body (JSON) with the Lumigo token; raises on failure."""
    from urllib.request import Request, urlopen

    request = Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": authorization_header(token)},
    )
    with urlopen(request, timeout=timeout) as response:
        response.read()


class _ForkGuard:
    """Keeps a fork from happening while the report thread imports modules.

    A child forked while another thread holds an import lock would hang on its next
    import of that module. The report thread holds this guard while it imports and reads
    package metadata; `os.fork()` (via register_at_fork) waits for it first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_in_parent,
                after_in_child=self._after_fork_in_child,
            )

    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork_in_parent(self) -> None:
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def report_in_background(
    config: Config,
    resource_attributes: Union[Mapping[str, Any], Callable[[], Mapping[str, Any]]],
) -> None:
    """Start the daemon thread that sends the report; returns immediately.

    `resource_attributes` may be a function: it is then called on the thread (building
    the resource imports part of the SDK, which the app's start-up need not wait for)."""
    if not config.should_report_dependencies or not config.token:
        return
    token = config.token
    url = config.dependencies_endpoint
    timeout = config.connection_timeout
    guard = _ForkGuard()

    def run() -> None:
        try:
            with guard:
                # everything the report imports, imported while no fork can happen
                import email.parser  # noqa: F401  (used by importlib.metadata)
                import encodings.idna  # noqa: F401  (used when resolving the host name)
                import importlib.metadata  # noqa: F401
                import json
                import urllib.request  # noqa: F401

                attributes = (
                    resource_attributes() if callable(resource_attributes) else resource_attributes
                )
                body = json.dumps(report_payload(attributes)).encode("utf-8")
            post_report(url, token, body, timeout)
            logger.debug("dependency report sent to %s", url)
        except Exception as exc:
            logger.debug("dependency report to %s failed: %s", url, exc)

    threading.Thread(target=run, name=THREAD_NAME, daemon=True).start()
