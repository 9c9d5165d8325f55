"""The `lumigo.io/inject` annotation: the one parser of its value, and what it asks for.

Values are compared trimmed and lower-cased: `python` asks for injection, `false` opts out
(and wins over a namespace annotation or `--all`), anything else (e.g. `java`) asks for
nothing. The same reading holds on a pod, a pod template, a workload and a namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lumigo_injector.spec.names import ANNOTATION_INJECT, INJECT_FALSE, INJECT_PYTHON
from lumigo_injector.spec.plain import as_map

#: The values a workload annotation may carry that the operator copies onto its template.
PROPAGATED_VALUES = (INJECT_PYTHON, INJECT_FALSE)


def raw_value(annotations: Any) -> str | None:
    """The annotation as written, trimmed; None when absent or not a string."""
    value = as_map(annotations).get(ANNOTATION_INJECT)
    return value.strip() if isinstance(value, str) else None


def inject_value(annotations: Any) -> str | None:
    """The annotation trimmed and lower-cased (`""` when empty); None when absent."""
    value = raw_value(annotations)
    return value.lower() if value is not None else None


def asks_for_python(annotations: Any) -> bool:
    """Whether these annotations say `lumigo.io/inject: python`."""
    return inject_value(annotations) == INJECT_PYTHON


def wants_injection(
    pod_meta: Mapping[str, Any],
    namespace_annotations: Mapping[str, Any] | None,
    inject_all: bool,
) -> bool:
    """Whether a pod with this metadata asks for injection.

    `lumigo.io/inject: "false"` on the pod wins over everything; `"python"` on the pod asks
    for it. Without a pod annotation the namespace's annotation decides the same way, and
    without either `inject_all` does. Any other value (e.g. ``"java"``) means no.
    """
    pod_value = inject_value(as_map(as_map(pod_meta).get("annotations")))
    if pod_value is not None:
        return pod_value == INJECT_PYTHON
    namespace_value = inject_value(namespace_annotations)
    if namespace_value is not None:
        return namespace_value == INJECT_PYTHON
    return inject_all


def skip_reason(
    annotations: Mapping[str, Any], namespace_annotations: Mapping[str, Any] | None
) -> str:
    """Why a pod that does not want injection is skipped (for logs, Events and the CLI)."""
    value = raw_value(annotations)
    if value is not None:
        return f"annotation {ANNOTATION_INJECT}={value!r}"
    namespace_value = inject_value(namespace_annotations)
    if namespace_value is not None:
        return f"namespace annotation {ANNOTATION_INJECT}={namespace_value!r}"
    return f"no {ANNOTATION_INJECT} annotation"
