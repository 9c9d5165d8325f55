"""Reading and writing Kubernetes manifests: multi-document YAML, JSON, Lists and kinds.

Pure functions over text and plain data; the `inject` command does the file I/O. YAML is
read the way Kubernetes reads it (dates stay strings) and written back block-style with the
keys in their original order. JSON in gives JSON out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from lumigo_injector.spec.workloads import POD_TEMPLATE_KINDS

Format = Literal["yaml", "json"]

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


class ManifestError(ValueError):
    """Input that cannot be processed; the message is meant for the user as is."""


# --------------------------------------------------------------------------------------------
# Parsing and printing
# --------------------------------------------------------------------------------------------

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _KubernetesLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML loading with timestamps kept as strings, as Kubernetes does."""


_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def detect_format(text: str) -> Format:
    """JSON when the first meaningful character opens a JSON object or array."""
    stripped = text.lstrip(" \t\r\n\ufeff")
    return "json" if stripped[:1] in ("{", "[") else "yaml"


def _load_json(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    position = 0
    text = text.lstrip("\ufeff")
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            return documents
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        documents.append(document)


def _load_yaml(text: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_KubernetesLoader))
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML{_yaml_location(exc)}") from None


def _yaml_location(exc: yaml.YAMLError) -> str:
    """` at line L, column C: problem (context started at line ...)` from a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    text = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    text += f": {getattr(exc, 'problem', None) or exc}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark:
        line, column = context_mark.line + 1, context_mark.column + 1
        text += f" ({context} started at line {line}, column {column})"
    return text


def _as_json(document: dict[str, Any], number: int) -> dict[str, Any]:
    """The document as plain JSON data, the way the API server sees it.

    YAML anchors become independent copies, and non-string keys become strings (as kubectl's
    YAML-to-JSON conversion does). Values JSON cannot carry (binary, NaN) are an error.
    """
    try:
        plain: dict[str, Any] = json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"document {number} has a value JSON cannot represent: {exc}") from None
    return plain


def load_documents(text: str) -> tuple[list[dict[str, Any]], Format]:
    """Parse YAML or JSON text into its documents (empty YAML documents are dropped).

    Raises ManifestError for a syntax error or a document that is not an object.
    """
    fmt = detect_format(text)
    raw = _load_json(text) if fmt == "json" else _load_yaml(text)
    documents: list[dict[str, Any]] = []
    for number, document in enumerate(raw, start=1):
        if document is None:
            continue
        if not isinstance(document, dict) or not all(isinstance(k, str) for k in document):
            raise ManifestError(
                f"document {number} is not a Kubernetes object "
                f"(expected a mapping with apiVersion and kind, got {type(document).__name__})"
            )
        documents.append(_as_json(document, number))
    return documents, fmt


def dump_documents(documents: list[dict[str, Any]], fmt: Format) -> str:
    """Serialize documents: YAML separated by `---`, or one indented JSON value each."""
    if not documents:
        return ""
    if fmt == "json":
        return "".join(json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for doc in documents)
    return yaml.dump_all(
        documents,
        Dumper=_BaseDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )


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
