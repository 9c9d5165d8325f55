"""Namespace annotations for the admission path, without an API call per pod.

The operator's namespace watcher (a kopf event handler) keeps this directory current, so a
lookup at admission is a dict read. A namespace the watcher has not reported yet (created a
moment ago, or right after start-up) is read once from the API with a short timeout and
cached; a failed read counts as "no annotations" for a few seconds (injection of that pod
then depends on its own annotations only) and is logged. The failed reads remembered are
bounded (`max_failed`, oldest dropped first); names come bounded from the review parser.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from lumigo_injector.spec.names import ANNOTATION_INJECT

log = logging.getLogger("lumigo_injector.namespaces")

Annotations = Mapping[str, str]
Fetcher = Callable[[str], "Annotations | None"]


def opt_in_view(metadata: Mapping[str, Any]) -> dict[str, str]:
    """A namespace's annotations, with its `lumigo.io/inject` label counted as the annotation.

    A webhook configuration can select namespaces by label only, so the Helm chart's
    namespace opt-in is the label `lumigo.io/inject=python`; an annotation, when present,
    wins over the label.
    """
    annotations = metadata.get("annotations")
    labels = metadata.get("labels")
    view = {k: v for k, v in (annotations or {}).items() if isinstance(v, str)}
    label = (labels or {}).get(ANNOTATION_INJECT)
    if isinstance(label, str) and ANNOTATION_INJECT not in view:
        view[ANNOTATION_INJECT] = label
    return view


class NamespaceDirectory:
    """name -> annotations, fed by a watcher, with an on-miss fetch."""

    def __init__(
        self,
        fetch: Fetcher | None,
        *,
        fetch_timeout: float = 2.0,
        negative_ttl: float = 5.0,
        max_failed: int = 1024,
    ) -> None:
        self._known: dict[str, Annotations] = {}
        self._failed: OrderedDict[str, float] = OrderedDict()
        self._max_failed = max_failed
        self._fetch = fetch
        self._fetch_timeout = fetch_timeout
        self._negative_ttl = negative_ttl

    def update(self, name: str, annotations: Mapping[str, Any] | None) -> None:
        """Record a namespace's current annotations (watcher: ADDED/MODIFIED/listing)."""
        clean = {k: v for k, v in (annotations or {}).items() if isinstance(v, str)}
        self._known[name] = clean
        self._failed.pop(name, None)

    def forget(self, name: str) -> None:
        """Drop a deleted namespace."""
        self._known.pop(name, None)

    def cached(self, name: str) -> Annotations | None:
        return self._known.get(name)

    async def get(self, name: str) -> Annotations:
        """The namespace's annotations; empty when unknown and unreadable."""
        known = self._known.get(name)
        if known is not None:
            return known
        failed_at = self._failed.get(name)
        if self._fetch is None or (
            failed_at is not None and time.monotonic() - failed_at < self._negative_ttl
        ):
            return {}
        try:
            fetched = await asyncio.wait_for(
                asyncio.to_thread(self._fetch, name), timeout=self._fetch_timeout
            )
        except Exception as exc:
            self._remember_failure(name)
            log.warning(
                "cannot read namespace %s (%s); using its pods' own annotations only",
                name,
                exc.__class__.__name__ if isinstance(exc, TimeoutError) else exc,
                extra={"namespace": name},
            )
            return {}
        if fetched is None:  # the namespace does not exist (yet)
            self._remember_failure(name)
            return {}
        if name not in self._known:  # the watcher may have been faster
            self.update(name, fetched)
        return self._known[name]

    def _remember_failure(self, name: str) -> None:
        self._failed.pop(name, None)
        self._failed[name] = time.monotonic()
        while len(self._failed) > self._max_failed:
            self._failed.popitem(last=False)

    @property
    def failed_count(self) -> int:
        """How many failed lookups are remembered (bounded by `max_failed`)."""
        return len(self._failed)


def api_fetcher(core: Any) -> Fetcher:
    """A blocking fetch of a namespace's annotations through the kubernetes client."""

    def fetch(name: str) -> Annotations | None:
        from kubernetes.client.exceptions import ApiException

        try:
            namespace = core.read_namespace(name, _request_timeout=2)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        metadata = namespace.metadata
        return opt_in_view({"annotations": metadata.annotations, "labels": metadata.labels})

    return fetch
