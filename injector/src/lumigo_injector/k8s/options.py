"""What to inject with: operator-wide settings, and the per-pod options read from annotations.

Annotations are parsed here, once: a bad Secret name or key becomes a warning and the
operator's default, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lumigo_injector.k8s.site import PodSite
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import INIT_CONTAINER, Delivery
from lumigo_injector.spec.logs import logs_enabled
from lumigo_injector.spec.naming import Workload, service_name, workload_chain
from lumigo_injector.spec.plain import as_map


@dataclass(frozen=True)
class InjectionSettings:
    """Operator-wide settings; annotations on a pod may override the secret name and key."""

    init_image: str = c.DEFAULT_INIT_IMAGE
    secret_name: str = c.DEFAULT_SECRET_NAME
    secret_key: str = c.DEFAULT_SECRET_KEY
    endpoint: str | None = None
    layer_version: str = c.DEFAULT_LAYER_VERSION
    volume_size_limit: str = c.DEFAULT_VOLUME_SIZE_LIMIT
    inject_all: bool = False
    #: How the layer reaches pods that do not say otherwise (`lumigo.io/delivery`).
    delivery: Delivery = INIT_CONTAINER


@dataclass
class PodOptions:
    """What the annotations of one pod ask for, parsed once."""

    secret_name: str
    secret_key: str
    service_name: str | None
    container_names: tuple[str, ...] | None
    workloads: tuple[Workload, ...]
    warnings: list[str] = field(default_factory=list)
    #: `lumigo.io/enable-logs` on the pod, else on its namespace (see `spec.logs`).
    enable_logs: bool = False


def _annotation(annotations: Mapping[str, Any], key: str) -> str | None:
    value = annotations.get(key)
    return value.strip() if isinstance(value, str) else None


def _is_dns_subdomain(value: str) -> bool:
    if not 0 < len(value) <= 253:
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return set(value) <= allowed and value[0].isalnum() and value[-1].isalnum()


def _is_secret_key(value: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
    return 0 < len(value) <= 253 and set(value) <= allowed and value not in (".", "..")


def _override(
    annotations: Mapping[str, Any],
    key: str,
    valid: Callable[[str], bool],
    what: str,
    default: str,
    warnings: list[str],
) -> str:
    """The annotation's value when it is a valid `what`; else a warning and `default`."""
    value = _annotation(annotations, key) if key in annotations else None
    if value is None:
        return default
    if valid(value):
        return value
    warnings.append(f"{key}={value!r} is not a valid {what}; using {default!r}")
    return default


def pod_options(
    site: PodSite,
    annotations: Mapping[str, Any],
    settings: InjectionSettings,
    namespace_annotations: Mapping[str, Any] | None = None,
) -> PodOptions:
    """Secret, service name, containers, workloads and logs for this pod, with warnings."""
    warnings: list[str] = []
    secret_name, secret_key = settings.secret_name, settings.secret_key
    if c.ANNOTATION_SECRET_NAME in annotations:
        secret_name = _override(
            annotations,
            c.ANNOTATION_SECRET_NAME,
            _is_dns_subdomain,
            "Secret name",
            settings.secret_name,
            warnings,
        )
    if c.ANNOTATION_SECRET_KEY in annotations:
        secret_key = _override(
            annotations, c.ANNOTATION_SECRET_KEY, _is_secret_key, "Secret key",
            settings.secret_key, warnings,
        )  # fmt: skip
    container_names: tuple[str, ...] | None = None
    value = None
    if c.ANNOTATION_CONTAINER_NAMES in annotations:
        value = _annotation(annotations, c.ANNOTATION_CONTAINER_NAMES)
    if value is not None:
        names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
        if names:
            container_names = names
        else:
            warnings.append(f"{c.ANNOTATION_CONTAINER_NAMES} is empty; injecting every container")
    pod_meta = as_map(site.holder.get("metadata"))
    if site.kind == "Pod":
        chain = workload_chain("Pod", pod_meta)
    else:
        chain = workload_chain(site.kind, site.outer_meta)
    labels = dict(as_map(site.outer_meta.get("labels"))) if site.kind != "Pod" else {}
    labels.update(as_map(pod_meta.get("labels")))
    name = service_name(annotations, labels, chain, pod_meta)
    if c.ANNOTATION_ENABLE_LOGS in annotations or (
        namespace_annotations and c.ANNOTATION_ENABLE_LOGS in namespace_annotations
    ):
        enable_logs, logs_warnings = logs_enabled(annotations, namespace_annotations)
        warnings.extend(logs_warnings)
    else:  # what `logs_enabled` says without either annotation
        enable_logs = False
    return PodOptions(secret_name, secret_key, name, container_names, chain, warnings, enable_logs)
