"""The `lumigo.io/enable-logs` annotation: the one parser of its value, and what it decides.

Values are compared trimmed and lower-cased: `true` turns on `LUMIGO_ENABLE_LOGS=true` in every
injected container, `false` keeps it off. The pod's own value (for a workload: the workload's
annotations overlaid by its template's) decides; without one, the namespace's; without either,
logs stay off. Any other value is reported and ignored, so the next level decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lumigo_injector.spec.names import ANNOTATION_ENABLE_LOGS
from lumigo_injector.spec.plain import as_map

LOGS_TRUE = "true"
LOGS_FALSE = "false"
#: The values the annotation may carry (and that the operator copies onto pod templates).
LOGS_VALUES = (LOGS_TRUE, LOGS_FALSE)


def logs_value(annotations: Any) -> str | None:
    """The annotation trimmed and lower-cased; None when absent or not a string."""
    value = as_map(annotations).get(ANNOTATION_ENABLE_LOGS)
    return value.strip().lower() if isinstance(value, str) else None


def logs_enabled(
    pod_annotations: Mapping[str, Any], namespace_annotations: Mapping[str, Any] | None
) -> tuple[bool, list[str]]:
    """Whether the injected containers get `LUMIGO_ENABLE_LOGS=true`, with warnings."""
    warnings: list[str] = []
    for where, level in (("", pod_annotations), ("namespace ", namespace_annotations)):
        value = logs_value(level)
        if value in LOGS_VALUES:
            return value == LOGS_TRUE, warnings
        if value is not None:
            raw = as_map(level)[ANNOTATION_ENABLE_LOGS]
            warnings.append(
                f"{where}annotation {ANNOTATION_ENABLE_LOGS}={raw!r} is not true or false; ignored"
            )
    return False, warnings
