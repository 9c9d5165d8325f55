"""The injection mutation: a pod (or a workload's pod template) in, the injected one out.

Pure: no I/O, no clock, no API calls. The webhook, `lumigo-injector inject -f` and the demo
call `inject`; ECS applies the same rules (from `spec/`) to task definitions in `ecs/`.
The mutation locates the pod (`site`), reads its annotations once (`options`), then runs small
steps (`steps`: volume, init container, per-container mount and environment), each of which
leaves what is already there alone and records what it added or changed in the annotation
`lumigo.io/injection-state`, so that `uninject` (`undo`) gives back the original exactly.
The steps change the pod through `edits`, which records each change as a JSON Patch operation:
`MutationResult.patch`, the webhook's answer without diffing the pod afterwards.

The delivery (`spec.delivery`) decides the volume: an emptyDir the init container fills, or the
init image as a read-only image volume (no init container); the environment is the same.

A pod injected with the current layer version and delivery comes back unchanged; one injected
with another version or delivery is uninjected and injected again (upgrade, or a switch). A pod
whose annotations would pass the API server's 256 KiB limit with the injection record
(thousands of containers) is left as it is, with the reason (`within_annotation_limit`, a
separate last check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lumigo_injector.k8s.edits import Edits, pointer
from lumigo_injector.k8s.options import InjectionSettings, pod_options
from lumigo_injector.k8s.site import PodSite, effective_annotations, is_injected, locate
from lumigo_injector.k8s.state_json import state_text
from lumigo_injector.k8s.steps import (
    add_init_container,
    add_mount,
    add_volume,
    ensure,
    existing_delivery,
    pod_blocker,
    select_containers,
    set_env,
)
from lumigo_injector.k8s.undo import uninject
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import INIT_CONTAINER, Delivery, pod_delivery
from lumigo_injector.spec.inject import raw_value, skip_reason, wants_injection
from lumigo_injector.spec.plain import as_map, plain_copy
from lumigo_injector.spec.records import cheap_init
from lumigo_injector.spec.workloads import POD_TEMPLATE_KINDS

__all__ = [
    "InjectionSettings",
    "MutationResult",
    "inject",
    "is_injected",
    "uninject",
]

_STATE_VERSION = 1
#: The JSON Pointer of each kind's pod (template), e.g. `/spec/template` for a Deployment.
_HOLDER_POINTERS = {kind: pointer(keys) for kind, keys in POD_TEMPLATE_KINDS.items()}
#: The API server refuses an object whose annotations (keys and values) pass this many bytes.
ANNOTATIONS_LIMIT = 256 * 1024


@cheap_init
@dataclass(frozen=True)
class MutationResult:
    """The outcome of `inject`: always a deep copy, mutated only when `injected`."""

    obj: dict[str, Any]
    injected: bool
    reason: str
    warnings: tuple[str, ...] = ()
    #: Skipped because neither the pod nor its namespace carries `lumigo.io/inject`.
    unannotated: bool = False
    #: The JSON Patch turning the object given into `obj`, when the mutation recorded it as
    #: it went (a fresh injection: see `edits`); None when it did not.
    patch: list[dict[str, Any]] | None = None


def inject(
    obj: Mapping[str, Any],
    settings: InjectionSettings,
    namespace_annotations: Mapping[str, str] | None = None,
    *,
    working_copy: dict[str, Any] | None = None,
) -> MutationResult:
    """Inject the Lumigo layer into a Pod or a workload's pod template.

    Returns a deep copy of `obj`, mutated only when the pod asks for injection (see
    `wants_injection`), is not injected yet, and has at least one injectable container.
    An object already injected with the same layer version and delivery comes back unchanged;
    one injected with another version or delivery is re-injected (upgrade, switch). Never
    raises on odd input: the reason says why nothing was done.

    `working_copy`, when the caller has one, is used as that deep copy (and changed): equal
    to `obj`, with no object shared with `obj` or within itself (e.g. `obj` parsed again
    from its JSON, which is several times faster than `plain_copy`). Or `obj` itself, when
    it shares no object within itself and the caller gives it up (the webhook's freshly
    parsed pod): it is then changed in place, and `result.obj` is `obj`, except that a pod
    the annotation limit turns away comes back uninjected (`uninject`: the original again).
    """
    out: dict[str, Any] = plain_copy(obj) if working_copy is None else working_copy
    site = locate(out)
    if isinstance(site, str):
        return MutationResult(out, False, f"skipped: {site}")
    annotations = effective_annotations(site)
    pod_meta = as_map(site.holder.get("metadata"))
    if not wants_injection(
        {"annotations": annotations}, namespace_annotations, settings.inject_all
    ):
        why = skip_reason(annotations, namespace_annotations)
        unasked = raw_value(annotations) is None and raw_value(namespace_annotations) is None
        return MutationResult(out, False, f"skipped: {why}", unannotated=unasked)
    if is_injected(pod_meta):
        version = as_map(pod_meta.get("annotations")).get(c.ANNOTATION_INJECTED)
        wanted = pod_delivery(annotations, namespace_annotations, settings.delivery, [])
        current = existing_delivery(site.holder["spec"]) or INIT_CONTAINER
        if version == settings.layer_version and current == wanted:
            return MutationResult(out, True, f"already injected (layer {version}, {current})")
        out = uninject(out)
        site = locate(out)
        assert not isinstance(site, str)
        # the edits are recorded from the uninjected copy, not from `obj`
        result = replace(
            _inject_site(out, site, annotations, namespace_annotations, settings), patch=None
        )
    else:
        result = _inject_site(out, site, annotations, namespace_annotations, settings)
    return within_annotation_limit(obj, site, result)


def annotations_size(annotations: Mapping[str, Any]) -> int:
    """The bytes the API server counts for an annotation map: every key and value."""
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())


def within_annotation_limit(
    original: Mapping[str, Any], site: PodSite, result: MutationResult
) -> MutationResult:
    """`result`, or the unchanged object with the reason when the injection record would
    make the pod's annotations pass the API server's limit (`ANNOTATIONS_LIMIT`)."""
    if not result.injected:
        return result
    annotations = as_map(as_map(site.holder.get("metadata")).get("annotations"))
    characters = sum(map(len, annotations)) + sum(map(len, map(str, annotations.values())))
    if characters * 4 <= ANNOTATIONS_LIMIT:  # UTF-8 takes at most 4 bytes a character
        return result
    size = annotations_size(annotations)
    if size <= ANNOTATIONS_LIMIT:
        return result
    why = (
        f"the injection record would make the pod's annotations {size} bytes, over the "
        f"API server's limit of {ANNOTATIONS_LIMIT}"
    )
    unchanged = uninject(result.obj) if original is result.obj else plain_copy(original)
    return MutationResult(unchanged, False, f"skipped: {why}", (why,))


def _choose_delivery(
    spec: Mapping[str, Any],
    annotations: Mapping[str, Any],
    namespace_annotations: Mapping[str, str] | None,
    settings: InjectionSettings,
    warnings: list[str],
) -> Delivery:
    """The pod's delivery; a `lumigo-otel` volume the pod already has decides it (kept)."""
    delivery = pod_delivery(annotations, namespace_annotations, settings.delivery, warnings)
    existing = existing_delivery(spec)
    if existing is not None and existing != delivery:
        warnings.append(
            f"the pod already has a {c.VOLUME_NAME!r} volume for {existing} delivery; "
            f"using it instead of {delivery}"
        )
        return existing
    return delivery


def _inject_site(
    out: dict[str, Any],
    site: PodSite,
    annotations: Mapping[str, Any],
    namespace_annotations: Mapping[str, str] | None,
    settings: InjectionSettings,
) -> MutationResult:
    spec: dict[str, Any] = site.holder["spec"]
    blocker = pod_blocker(site.holder)
    if blocker:
        return MutationResult(out, False, f"skipped: {blocker}", (blocker,))
    options = pod_options(site, annotations, settings, namespace_annotations)
    warnings = options.warnings
    targets = select_containers(spec["containers"], options, warnings)
    if not targets:
        return MutationResult(out, False, "skipped: no container can be injected", tuple(warnings))

    delivery = _choose_delivery(spec, annotations, namespace_annotations, settings, warnings)

    state: dict[str, Any] = {"v": _STATE_VERSION, "created": [], "containers": {}}
    state["delivery"] = delivery
    edits = Edits()
    holder_path = _HOLDER_POINTERS.get(site.kind) or pointer(POD_TEMPLATE_KINDS[site.kind])
    meta_path = f"{holder_path}/metadata"
    spec_path = f"{holder_path}/spec"
    meta: dict[str, Any] = ensure(
        site.holder, "metadata", dict, state["created"], edits, holder_path
    )
    annotations_now: dict[str, Any] = ensure(
        meta, "annotations", dict, state["created"], edits, meta_path
    )

    add_volume(spec, settings, state, delivery, edits, spec_path)
    if delivery == INIT_CONTAINER:
        add_init_container(spec, settings, state, edits, spec_path)
    positions = {id(ct): index for index, ct in enumerate(spec["containers"])}
    changed = []  # the user's entries the record keeps: the only part that may hold a float
    for container in targets:
        record: dict[str, Any] = {"created": [], "added": [], "changed": {}}
        path = f"{spec_path}/containers/{positions[id(container)]}"
        add_mount(container, record, delivery, edits, path)
        set_env(container, options, settings, record, warnings, edits, path)
        state["containers"][container["name"]] = {k: v for k, v in record.items() if v}
        changed.append(record["changed"])

    annotations_path = f"{meta_path}/annotations"
    edits.put(annotations_now, annotations_path, c.ANNOTATION_INJECTED, settings.layer_version)
    text = state_text(state, changed)
    edits.put(annotations_now, annotations_path, c.ANNOTATION_INJECTION_STATE, text)
    names = ", ".join([str(ct["name"]) for ct in targets])
    why = f"injected containers: {names} ({delivery})"
    return MutationResult(out, True, why, tuple(warnings), patch=edits.ops)
