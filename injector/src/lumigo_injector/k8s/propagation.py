"""Pure: a workload's `lumigo.io/inject` (and `lumigo.io/enable-logs`) annotation -> a merge
patch of its pod template.

`kubectl annotate deployment web lumigo.io/inject=python` marks the Deployment itself; pods
only see their template. The operator copies the workload annotation onto the pod template
(so a normal rollout brings up injected pods) and takes it away again when the workload
annotation is removed, restoring whatever the template said before.

To restore exactly, the first propagation records the template's previous value (empty for
"absent") in the workload annotation `lumigo.io/inject-template-previous` (for enable-logs:
`lumigo.io/enable-logs-template-previous`); each annotation is copied and restored on its
own. A template value the user wrote themselves, with no record, is never touched. Everything
here is level-triggered: `plan()` looks only at the current object, so running it again, late, or
from two replicas at once gives the same answer, and `None` once the object is in shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lumigo_injector.spec import names as c
from lumigo_injector.spec.inject import PROPAGATED_VALUES, asks_for_python, inject_value
from lumigo_injector.spec.logs import LOGS_VALUES, logs_value
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


@dataclass(frozen=True)
class Propagated:
    """A workload annotation the operator copies onto the pod template."""

    annotation: str
    #: The workload annotation recording the template's value before the first copy.
    previous: str
    #: The values that are copied (normalised); any other value means "not asked".
    values: tuple[str, ...]
    #: The annotation's reader: trimmed, lower-cased, None when absent.
    read: Callable[[Any], str | None]


#: Every annotation the operator propagates, each restored on its own.
PROPAGATED = (
    Propagated(c.ANNOTATION_INJECT, ANNOTATION_TEMPLATE_PREVIOUS, PROPAGATED_VALUES, inject_value),
    Propagated(
        c.ANNOTATION_ENABLE_LOGS,
        c.ANNOTATION_ENABLE_LOGS_TEMPLATE_PREVIOUS,
        LOGS_VALUES,
        logs_value,
    ),
)


def concerns_us(annotations: Mapping[str, Any]) -> bool:
    """Whether a workload's annotations hold something to propagate or to take back."""
    return any(p.annotation in annotations or p.previous in annotations for p in PROPAGATED)


def _plan_one(
    workload_annotations: Mapping[str, Any],
    template_annotations: Mapping[str, Any],
    p: Propagated,
) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """(template changes, workload changes, description) for one annotation, or None."""
    wanted = p.read(workload_annotations) or None
    if wanted is not None and wanted not in p.values:
        wanted = None  # an unknown value means "not asked", like on a pod
    paused = c.ANNOTATION_INJECT_PAUSED in workload_annotations
    if p.annotation == c.ANNOTATION_INJECT and paused:
        wanted = c.INJECT_FALSE  # paused by a rollback: no injection, whatever asks for it
    current = template_annotations.get(p.annotation)
    current = current if isinstance(current, str) else None
    previous = workload_annotations.get(p.previous)
    recorded = isinstance(previous, str)
    if wanted is not None:
        if current == wanted:
            return None
        record = previous if recorded else (current or "")
        return {p.annotation: wanted}, {p.previous: record}, f"{p.annotation}={wanted}"
    if not recorded:
        return None  # nothing of ours to take back
    restored = previous or None
    what = f"restored to {restored!r}" if restored else "removed"
    return {p.annotation: restored}, {p.previous: None}, f"{p.annotation} {what}"


def _emptied(annotations: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
    """Whether applying `changes` (None deletes) leaves `annotations` empty after a deletion."""
    if None not in changes.values():
        return False
    after = {**annotations, **changes}
    return all(value is None for value in after.values())


def plan(workload: Mapping[str, Any], kind: str) -> TemplateChange | None:
    """What to change so that the template reflects the workload annotations, or None."""
    if kind not in TEMPLATE_PATHS:
        raise ValueError(f"unsupported workload kind: {kind!r}")
    workload_annotations = annotations_of(workload)
    template_annotations = annotations_of(template_of(workload, kind))
    template_changes: dict[str, Any] = {}
    workload_changes: dict[str, Any] = {}
    descriptions = []
    for p in PROPAGATED:
        one = _plan_one(workload_annotations, template_annotations, p)
        if one is not None:
            template_changes.update(one[0])
            workload_changes.update(one[1])
            descriptions.append(one[2])
    if not descriptions:
        return None
    patch = _template_patch(kind, template_changes)
    # Drop a map we leave empty, so the object reads exactly as before we touched it.
    if _emptied(template_annotations, template_changes):
        _template_metadata(patch, kind)["annotations"] = None
    if _emptied(workload_annotations, workload_changes):
        patch["metadata"] = {"annotations": None}
    else:
        patch["metadata"] = {"annotations": workload_changes}
    return TemplateChange(patch, "pod template annotation " + ", ".join(descriptions))


def injects_in_namespace(workload: Mapping[str, Any], kind: str) -> bool:
    """Whether this workload's pods ask for injection (so its namespace needs the Secret)."""
    return asks_for_python(annotations_of(workload)) or asks_for_python(
        annotations_of(template_of(workload, kind))
    )
