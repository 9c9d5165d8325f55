"""Service name and Kubernetes workload attributes, derived from metadata alone.

No API calls: at admission time a pod only carries its own metadata (often without a name
or namespace), its labels and its `ownerReferences`. The owning Deployment of a ReplicaSet
and the CronJob of a Job are recovered from the naming conventions of their controllers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lumigo_injector.spec.names import ANNOTATION_SERVICE_NAME
from lumigo_injector.spec.plain import as_map, text
from lumigo_injector.spec.workloads import SERVICE_OWNER_KINDS, WORKLOAD_ATTRIBUTES

LABEL_APP_NAME = "app.kubernetes.io/name"
LABEL_POD_TEMPLATE_HASH = "pod-template-hash"
# The CronJob controller names its Jobs "<cronjob>-<scheduled time in minutes since epoch>".
_CRONJOB_JOB_NAME = re.compile(r"^(?P<cronjob>.+)-(?P<minutes>\d{8,})$")


@dataclass(frozen=True)
class Workload:
    """One Kubernetes workload object, e.g. ``Workload("Deployment", "web")``."""

    kind: str
    name: str

    @property
    def attribute(self) -> str | None:
        """The resource attribute naming this workload, if the conventions define one."""
        return WORKLOAD_ATTRIBUTES.get(self.kind)


def controller_reference(meta: Mapping[str, Any], named: bool = False) -> Mapping[str, Any] | None:
    """The owner reference marked `controller: true`, else the first one, else None.

    `named`: only references with a `kind` and a `name` count (an Event needs both)."""
    refs = meta.get("ownerReferences")
    if type(refs) is not list and (not isinstance(refs, Sequence) or isinstance(refs, str)):
        return None
    first = None
    for ref in refs:
        if type(ref) is dict or isinstance(ref, Mapping):  # parsed JSON: no ABC check
            if named and not (ref.get("kind") and ref.get("name")):
                continue
            if ref.get("controller") is True:
                return ref
            if first is None:
                first = ref
    return first


def _owner_chain(kind: str, name: str, meta: Mapping[str, Any]) -> tuple[Workload, ...]:
    """A workload and the parent its controller's naming convention reveals."""
    template_hash = None
    if kind == "ReplicaSet":
        template_hash = text(as_map(meta.get("labels")).get(LABEL_POD_TEMPLATE_HASH))
    return _named_chain(kind, name, template_hash)


@lru_cache(maxsize=1024)
def _named_chain(kind: str, name: str, template_hash: str | None) -> tuple[Workload, ...]:
    """`_owner_chain` from the names alone (the pods of one ReplicaSet share it)."""
    chain = [Workload(kind, name)]
    if kind == "ReplicaSet":
        if template_hash and name.endswith("-" + template_hash):
            chain.append(Workload("Deployment", name[: -len(template_hash) - 1]))
    elif kind == "Job":
        match = _CRONJOB_JOB_NAME.match(name)
        if match:
            chain.append(Workload("CronJob", match.group("cronjob")))
    return tuple(chain)


def workload_chain(kind: str | None, meta: Mapping[str, Any]) -> tuple[Workload, ...]:
    """The workloads a pod (or a workload object) belongs to, innermost first.

    For a Pod: its controller owner and that owner's parent, e.g. ReplicaSet
    ``web-7d4b9c`` (pod label ``pod-template-hash=7d4b9c``) then Deployment ``web``.
    For a workload object: the object itself, then its controller owner if any.
    """
    meta = as_map(meta)
    if kind and kind != "Pod":
        own_name = text(meta.get("name"))
        chain: list[Workload] = [Workload(kind, own_name)] if own_name else []
        ref = controller_reference(meta)
        if ref is not None:
            owner_kind, owner_name = text(ref.get("kind")), text(ref.get("name"))
            if owner_kind in SERVICE_OWNER_KINDS and owner_name:
                chain.append(Workload(owner_kind, owner_name))
        return tuple(chain)
    ref = controller_reference(meta)
    if ref is None:
        return ()
    owner_kind, owner_name = text(ref.get("kind")), text(ref.get("name"))
    if owner_kind not in SERVICE_OWNER_KINDS or not owner_name:
        return ()
    # A pod carries the ReplicaSet's pod-template-hash label itself.
    return _owner_chain(owner_kind, owner_name, meta)


def service_name(
    annotations: Mapping[str, Any],
    labels: Mapping[str, Any],
    chain: Sequence[Workload],
    pod_meta: Mapping[str, Any],
) -> str | None:
    """The service name: annotation, app label, outermost workload, then the pod's own name."""
    explicit = text(annotations.get(ANNOTATION_SERVICE_NAME))
    if explicit and explicit.strip():
        return explicit.strip()
    app = text(labels.get(LABEL_APP_NAME))
    if app:
        return app
    if chain:
        return chain[-1].name
    name = text(pod_meta.get("name"))
    if name:
        return name
    generate_name = text(pod_meta.get("generateName"))
    if generate_name and generate_name.rstrip("-"):
        return generate_name.rstrip("-")
    return None


def workload_attributes(chain: Sequence[Workload]) -> list[tuple[str, str]]:
    """Resource attributes for the chain, e.g. ``[("k8s.deployment.name", "web")]``."""
    attributes: list[tuple[str, str]] = []
    seen: set[str] = set()
    for workload in chain:
        key = WORKLOAD_ATTRIBUTES.get(workload.kind)  # `workload.attribute`, without a call
        if key and key not in seen:
            seen.add(key)
            attributes.append((key, workload.name))
    return attributes
