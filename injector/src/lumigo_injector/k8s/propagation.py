"""Pure: a workload's `lumigo.io/inject` annotation -> a merge patch of its pod template.

`kubectl annotate deployment web lumigo.io/inject=python` marks the Deployment itself; pods
only see their template. The operator copies the workload annotation onto the pod template
(so a normal rollout brings up injected pods) and takes it away again when the workload
annotation is removed, restoring whatever the template said before.

To restore exactly, the first propagation records the template's previous value (empty for
"absent") in the workload annotation `lumigo.io/inject-template-previous`. A template value
the user wrote themselves, with no record, is never touched. Everything here is
level-triggered: `plan()` looks only at the current object, so running it again, late, or
from two replicas at once gives the same answer, and `None` once the object is in shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lumigo_injector.spec import names as c
from lumigo_injector.spec.inject import PROPAGATED_VALUES, asks_for_python, inject_value
from lumigo_injector.spec.names import ANNOTATION_TEMPLATE_PREVIOUS
from lumigo_injector.spec.plain import annotations_of, as_map
from lumigo_injector.spec.workloads import PROPAGATED_KINDS

#: Where each workload kind whose annotation is propagated keeps its pod template.
TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = {w.kind: w.template_path for w in PROPAGATED_KINDS}


@dataclass(frozen=True)
class TemplateChange:
    """A JSON merge patch for the workload (None deletes a key) and why."""

    patch: dict[str, Any]
    description: str


def template_of(workload: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The pod template of a workload (empty when absent or malformed)."""
    node: Mapping[str, Any] = workload
    for key in TEMPLATE_PATHS[kind]:
        node = as_map(node.get(key))
    return node


def workload_value(workload: Mapping[str, Any]) -> str | None:
    """The workload's own inject annotation, normalised; `None` when absent or empty."""
    return inject_value(annotations_of(workload)) or None


def _template_patch(kind: str, annotations: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {"metadata": {"annotations": annotations}}
    for key in reversed(TEMPLATE_PATHS[kind]):
        patch = {key: patch}
    return patch


def _template_metadata(patch: dict[str, Any], kind: str) -> dict[str, Any]:
    node = patch
    for key in TEMPLATE_PATHS[kind]:
        node = node[key]
    metadata: dict[str, Any] = node["metadata"]
    return metadata


def plan(workload: Mapping[str, Any], kind: str) -> TemplateChange | None:
    """What to change so that the template reflects the workload annotation, or None."""
    if kind not in TEMPLATE_PATHS:
        raise ValueError(f"unsupported workload kind: {kind!r}")
    wanted = workload_value(workload)
    if wanted is not None and wanted not in PROPAGATED_VALUES:
        wanted = None  # an unknown value means "not asked", like on a pod
    workload_annotations = annotations_of(workload)
    if c.ANNOTATION_INJECT_PAUSED in workload_annotations:
        wanted = c.INJECT_FALSE  # paused by a rollback: no injection, whatever asks for it
    template_annotations = annotations_of(template_of(workload, kind))
    current = template_annotations.get(c.ANNOTATION_INJECT)
    current = current if isinstance(current, str) else None
    previous = workload_annotations.get(ANNOTATION_TEMPLATE_PREVIOUS)
    recorded = isinstance(previous, str)

    if wanted is not None:
        if current == wanted:
            return None
        record = previous if recorded else (current or "")
        patch = _template_patch(kind, {c.ANNOTATION_INJECT: wanted})
        patch["metadata"] = {"annotations": {ANNOTATION_TEMPLATE_PREVIOUS: record}}
        return TemplateChange(patch, f"pod template annotation {c.ANNOTATION_INJECT}={wanted}")

    if not recorded:
        return None  # nothing of ours to take back
    restored = previous or None
    # Drop a map we leave empty, so the object reads exactly as before we touched it.
    if restored is None and set(template_annotations) <= {c.ANNOTATION_INJECT}:
        patch = _template_patch(kind, {})
        _template_metadata(patch, kind)["annotations"] = None
    else:
        patch = _template_patch(kind, {c.ANNOTATION_INJECT: restored})
    if set(workload_annotations) <= {ANNOTATION_TEMPLATE_PREVIOUS}:
        patch["metadata"] = {"annotations": None}
    else:
        patch["metadata"] = {"annotations": {ANNOTATION_TEMPLATE_PREVIOUS: None}}
    what = f"restored to {restored!r}" if restored else "removed"
    return TemplateChange(patch, f"pod template annotation {c.ANNOTATION_INJECT} {what}")


def injects_in_namespace(workload: Mapping[str, Any], kind: str) -> bool:
    """Whether this workload's pods ask for injection (so its namespace needs the Secret)."""
    return asks_for_python(annotations_of(workload)) or asks_for_python(
        annotations_of(template_of(workload, kind))
    )
