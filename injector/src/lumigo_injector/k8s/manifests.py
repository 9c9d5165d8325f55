"""Reading and writing Kubernetes manifests: multi-document YAML, JSON, Lists and kinds.

Pure functions over text and plain data; the `inject` command does the file I/O. Text in
and out is `manifest_io`: YAML is read the way Kubernetes reads it (dates stay strings) and
written back block-style with the keys in their original order. JSON in gives JSON out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lumigo_injector.k8s.manifest_io import (
    Format,
    ManifestError,
    detect_format,
    dump_documents,
    load_documents,
)
from lumigo_injector.spec.workloads import POD_TEMPLATE_KINDS

#: Kinds of the built-in API groups ("" is the core group of apiVersion "v1").
#: A kind in one of these groups that is not listed here is a typo or unknown: an error.
#: Kinds of other groups (custom resources) pass through unchanged with a note.
BUILTIN_KINDS: Mapping[str, frozenset[str]] = {
    "": frozenset(
        [
            "Pod",
            "ReplicationController",
            "Service",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Namespace",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Endpoints",
            "LimitRange",
            "ResourceQuota",
            "PodTemplate",
            "Node",
            "Event",
            "Binding",
            "ComponentStatus",
        ]
    ),
    "apps": frozenset(
        ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"]
    ),
    "batch": frozenset({"Job", "CronJob"}),
    "extensions": frozenset(
        ["Deployment", "DaemonSet", "ReplicaSet", "Ingress", "NetworkPolicy", "PodSecurityPolicy"]
    ),
    "autoscaling": frozenset({"HorizontalPodAutoscaler"}),
    "policy": frozenset({"PodDisruptionBudget", "PodSecurityPolicy", "Eviction"}),
    "networking.k8s.io": frozenset(
        ["Ingress", "IngressClass", "NetworkPolicy", "IPAddress", "ServiceCIDR"]
    ),
    "rbac.authorization.k8s.io": frozenset(
        ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]
    ),
    "storage.k8s.io": frozenset(
        [
            "StorageClass",
            "VolumeAttachment",
            "CSIDriver",
            "CSINode",
            "CSIStorageCapacity",
            "VolumeAttributesClass",
        ]
    ),
    "apiextensions.k8s.io": frozenset({"CustomResourceDefinition"}),
    "admissionregistration.k8s.io": frozenset(
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
        ]
    ),
    "scheduling.k8s.io": frozenset({"PriorityClass"}),
    "coordination.k8s.io": frozenset({"Lease", "LeaseCandidate"}),
    "node.k8s.io": frozenset({"RuntimeClass"}),
    "discovery.k8s.io": frozenset({"EndpointSlice"}),
    "certificates.k8s.io": frozenset({"CertificateSigningRequest", "ClusterTrustBundle"}),
    "flowcontrol.apiserver.k8s.io": frozenset({"FlowSchema", "PriorityLevelConfiguration"}),
    "apiregistration.k8s.io": frozenset({"APIService"}),
    "events.k8s.io": frozenset({"Event"}),
    "resource.k8s.io": frozenset(
        ["ResourceClaim", "ResourceClaimTemplate", "DeviceClass", "ResourceSlice"]
    ),
}


# Parsing and printing live in `manifest_io` (bounded reading, type-keeping writing).
__all__ = ["Format", "ManifestError", "detect_format", "dump_documents", "load_documents"]


# --------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------


def api_group(api_version: str) -> str:
    """The API group of an apiVersion ("v1" -> "", "apps/v1" -> "apps")."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


Role = Literal["workload", "list", "other", "custom"]


def classify(document: Mapping[str, Any]) -> Role:
    """What to do with a document: inject it, recurse into it, or pass it through.

    Raises ManifestError for a document without kind/apiVersion or an unknown kind of a
    built-in API group (most likely a typo such as ``Deploymnet``).
    """
    kind, api_version = document.get("kind"), document.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise ManifestError("object has no kind")
    if not isinstance(api_version, str) or not api_version:
        raise ManifestError(f"{kind} has no apiVersion")
    if kind.endswith("List") and isinstance(document.get("items"), list):
        return "list"
    group = api_group(api_version)
    known = BUILTIN_KINDS.get(group)
    if known is None:
        return "custom"
    if kind not in known:
        shown = "core (v1)" if group == "" else group
        raise ManifestError(
            f"unknown kind {kind!r} in API group {shown} (apiVersion {api_version})"
        )
    return "workload" if kind in POD_TEMPLATE_KINDS else "other"


def describe(document: Mapping[str, Any]) -> str:
    """`Kind/name` for messages (`generateName` or `<unnamed>` when there is no name)."""
    meta = document.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    namespace = meta.get("namespace")
    prefix = f"{namespace}/" if isinstance(namespace, str) and namespace else ""
    return f"{document.get('kind')}/{prefix}{name}"


@dataclass
class Outcome:
    """The transformed documents and what to tell the user about them."""

    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def transform(
    documents: list[dict[str, Any]],
    mutate: Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]],
) -> Outcome:
    """Apply `mutate` to every workload, inside Lists too; pass other kinds through.

    `mutate` returns the new object and notes. Raises ManifestError (with the document
    number) on the first unknown kind, so nothing is half-written.
    """
    outcome = Outcome([])
    for number, document in enumerate(documents, start=1):
        try:
            outcome.documents.append(_transform_one(document, mutate, outcome.notes))
        except ManifestError as exc:
            raise ManifestError(f"document {number}: {exc}") from None
    return outcome


def _transform_one(
    document: dict[str, Any],
    mutate: Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]],
    notes: list[str],
) -> dict[str, Any]:
    role = classify(document)
    if role == "workload":
        new, messages = mutate(document)
        notes.extend(messages)
        return new
    if role == "list":
        items = []
        for index, item in enumerate(document["items"]):
            if not isinstance(item, dict):
                raise ManifestError(f"item {index} of the {document['kind']} is not an object")
            try:
                items.append(_transform_one(item, mutate, notes))
            except ManifestError as exc:
                raise ManifestError(f"item {index} of the {document['kind']}: {exc}") from None
        return {**document, "items": items}
    if role == "custom":
        notes.append(f"{describe(document)}: custom resource, passed through unchanged")
    return document


def iter_workloads(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every workload object in the documents, Lists flattened (for tests and reports)."""
    for document in documents:
        kind = document.get("kind")
        if (
            isinstance(kind, str)
            and kind.endswith("List")
            and isinstance(document.get("items"), list)
        ):
            yield from iter_workloads([i for i in document["items"] if isinstance(i, dict)])
        elif kind in POD_TEMPLATE_KINDS:
            yield document
