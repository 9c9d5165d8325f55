"""The webhook's JSONPatch for a fresh injection of a Pod, written as JSON text directly.

`inject` changes the pod through `edits`, which records each change as a JSONPatch
operation; the webhook then writes those operations as JSON. For the common admission (a
Pod asking for injection, not injected yet, with its metadata and annotations in place,
no `OTEL_RESOURCE_ATTRIBUTES` of its own, nothing of ours in it already) `written` gives
the same JSON text, byte for byte, without changing the pod and without building the
operations, the volume, the init container or the env entries as objects: the parts that
only depend on the settings (the volume, the init container, the mount, the fixed env
entries) are JSON made once per settings object (`_Constants`, a bounded memo) from the
very functions the general path calls; the rest is joined from the values the general
path would put there, each written by orjson.

It reads the pod with the general path's own functions (`pod_options`, `select_containers`,
the delivery, the blockers) and returns None for anything else (a workload, an upgrade, a
blocked or odd pod, a pod whose annotations would pass the limit, orjson missing): the
caller then runs `inject`. `tests/k8s/test_patch_writer.py` compares the two over
generated pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lumigo_injector.k8s.edits import escape
from lumigo_injector.k8s.mutation import ANNOTATIONS_LIMIT, _choose_delivery
from lumigo_injector.k8s.options import InjectionSettings, PodOptions, pod_options
from lumigo_injector.k8s.site import PodSite
from lumigo_injector.k8s.state_json import state_text
from lumigo_injector.k8s.steps import (
    _DOWNWARD_TEXT,
    DOWNWARD_FIELDS,
    init_container,
    layer_mount,
    layer_volume,
    literal_value,
    pod_blocker,
    select_containers,
)
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import INIT_CONTAINER, Delivery
from lumigo_injector.spec.env import escape_reference, merged_autowrapt, merged_pythonpath
from lumigo_injector.spec.inject import skip_reason, wants_injection
from lumigo_injector.spec.naming import workload_attributes
from lumigo_injector.spec.plain import as_list, as_map, plain_copy

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; without it: `inject`
    orjson = None  # type: ignore[assignment]

#: False: the webhook always runs `inject` (tests compare the two).
ENABLED = True

_STATE_VERSION = 1
#: Settings objects whose constant JSON is kept (an operator has one; tests make more).
_MAX_SETTINGS = 16


@dataclass(frozen=True)
class Written:
    """A fresh injection's answer: the JSONPatch's JSON text, the reason and the warnings."""

    patch_json: bytes
    reason: str
    warnings: tuple[str, ...]
    #: False: the pod does not ask for injection (no patch; `reason` says why, as `inject`'s)
    injected: bool = True


def _dumps(value: Any) -> str:
    """`value` as orjson writes it (as text: the patch is joined as text, encoded once)."""
    return orjson.dumps(value).decode()


def _entry(name: str, value: str) -> str:
    """`{"name": name, "value": value}` as orjson writes it."""
    return f'{{"name":{_dumps(name)},"value":{_dumps(value)}}}'


class _Constants:
    """The JSON of what the injection adds that depends on the settings alone."""

    def __init__(self, settings: InjectionSettings) -> None:
        self.settings = settings
        self._volume: dict[Delivery, str] = {}
        self._mount: dict[Delivery, str] = {}
        self._init: dict[tuple[bool, bool], str] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self.endpoint = (
            _entry(c.ENV_ENDPOINT, escape_reference(settings.endpoint)) if settings.endpoint else ""
        )
        self.injected_op = _op("add", _INJECTED_PATH, _dumps(settings.layer_version))

    def volume(self, delivery: Delivery) -> str:
        found = self._volume.get(delivery)
        if found is None:
            found = self._volume[delivery] = _dumps(layer_volume(self.settings, delivery))
        return found

    def mount(self, delivery: Delivery) -> str:
        found = self._mount.get(delivery)
        if found is None:
            found = self._mount[delivery] = _dumps(layer_mount(delivery))
        return found

    def init_container(self, pod_security: Mapping[str, Any]) -> str:
        key = (pod_security.get("runAsUser") == 0, pod_security.get("runAsGroup") == 0)
        found = self._init.get(key)
        if found is None:
            security = {"runAsUser": 0} if key[0] else {}
            if key[1]:
                security["runAsGroup"] = 0
            found = self._init[key] = _dumps(init_container(self.settings, security))
        return found

    def token(self, name: str, key: str) -> str:
        found = self._tokens.get((name, key))
        if found is None:
            secret = {"name": name, "key": key, "optional": True}
            found = _dumps({"name": c.ENV_TRACER_TOKEN, "valueFrom": {"secretKeyRef": secret}})
            if len(self._tokens) < _MAX_SETTINGS:
                self._tokens[(name, key)] = found
        return found


def _op(kind: str, path: str, value: str) -> str:
    """An operation; `path` is one of ours (ASCII names, `~1` and numbers: nothing JSON
    escapes), so its JSON is the text in quotes."""
    return f'{{"op":"{kind}","path":"{path}","value":{value}}}'


_PYTHONPATH_NEW = _entry(c.ENV_PYTHONPATH, merged_pythonpath(""))
_AUTOWRAPT_NEW = _entry(c.ENV_AUTOWRAPT_BOOTSTRAP, merged_autowrapt(""))
_INHERIT = _entry(c.ENV_PYTHONPATH, f"{c.BOOTSTRAP_PATH}:$({c.ENV_PYTHONPATH})")
_ENABLE_LOGS = _entry(c.ENV_ENABLE_LOGS, escape_reference("true"))
_DOWNWARD = tuple(
    (variable, _dumps({"name": variable, "valueFrom": {"fieldRef": {"fieldPath": path}}}))
    for _, variable, path in DOWNWARD_FIELDS
)
_NEW_ENTRIES = {c.ENV_PYTHONPATH: _PYTHONPATH_NEW, c.ENV_AUTOWRAPT_BOOTSTRAP: _AUTOWRAPT_NEW}
_MERGES = ((c.ENV_PYTHONPATH, merged_pythonpath), (c.ENV_AUTOWRAPT_BOOTSTRAP, merged_autowrapt))
_INJECTED_PATH = "/metadata/annotations/" + escape(c.ANNOTATION_INJECTED)
_STATE_PATH = "/metadata/annotations/" + escape(c.ANNOTATION_INJECTION_STATE)
#: The service name and container name entries' text before the value's JSON.
_SERVICE_HEAD = f'{{"name":{_dumps(c.ENV_SERVICE_NAME)},"value":'
_CONTAINER_HEAD = f'{{"name":{_dumps(c.ENV_CONTAINER_NAME)},"value":'
_ATTRIBUTES_HEAD = f'{{"name":{_dumps(c.ENV_RESOURCE_ATTRIBUTES)},"value":'

_CONSTANTS: dict[InjectionSettings, _Constants] = {}
#: The settings object last asked for and its constants (one operator: always the same),
#: as one tuple: swapped whole, so no thread ever reads one's settings with another's JSON.
_last: tuple[InjectionSettings | None, _Constants | None] = (None, None)


def _constants(settings: InjectionSettings) -> _Constants:
    global _last
    last_settings, last_constants = _last
    if last_settings is settings and last_constants is not None:
        return last_constants
    found = _CONSTANTS.get(settings)
    if found is None:
        if len(_CONSTANTS) >= _MAX_SETTINGS:
            _CONSTANTS.clear()
        found = _CONSTANTS[settings] = _Constants(settings)
    _last = (settings, found)
    return found


def _list_target(
    holder: Mapping[str, Any], key: str, created: list[str]
) -> tuple[str, list[Any] | None] | None:
    """How an item is put into `holder[key]` (a list, absent or null): None when the value
    is something else (the general path decides)."""
    value = holder.get(key)
    if type(value) is list:
        return "add", value
    if value is not None:
        return None
    if key in holder:
        created.append(f"{key}=null")
        return "replace", None
    created.append(key)
    return "add", None


def written(
    pod: Mapping[str, Any],
    settings: InjectionSettings,
    namespace_annotations: Mapping[str, str] | None = None,
) -> Written | None:
    """`inject`'s JSONPatch for `pod` as JSON text, with its reason and warnings, when `pod`
    is a fresh injection of the common shape (see module docstring), or `inject`'s reason
    when such a pod does not ask for injection (`injected` False); else None."""
    if orjson is None or not ENABLED or type(pod) is not dict or pod.get("kind") != "Pod":
        return None
    meta, spec = pod.get("metadata"), pod.get("spec")
    if type(meta) is not dict or type(spec) is not dict:
        return None
    pod_annotations = meta.get("annotations")
    containers = spec.get("containers")
    if type(pod_annotations) is not dict or type(containers) is not list:
        return None
    if c.ANNOTATION_INJECTED in pod_annotations or c.ANNOTATION_INJECTION_STATE in pod_annotations:
        return None  # an upgrade, a switch, or a record of ours: `inject` decides
    annotations = dict(pod_annotations)  # `effective_annotations` of a Pod
    if not wants_injection(
        {"annotations": annotations}, namespace_annotations, settings.inject_all
    ):  # `inject`'s answer for it: skipped, the reason, no warnings
        why = f"skipped: {skip_reason(annotations, namespace_annotations)}"
        return Written(b"", why, (), injected=False)
    if pod_blocker(pod):
        return None
    site = PodSite("Pod", pod, meta)
    options = pod_options(site, annotations, settings, namespace_annotations)
    warnings = options.warnings
    targets = select_containers(containers, options, warnings)
    if not targets:
        return None
    delivery = _choose_delivery(spec, annotations, namespace_annotations, settings, warnings)
    constants = _constants(settings)
    ops: list[str] = []
    created: list[str] = []
    state: dict[str, Any] = {"v": _STATE_VERSION, "created": created, "containers": {}}
    state["delivery"] = delivery

    target = _list_target(spec, "volumes", created)
    if target is None:
        return None
    kind, volumes = target
    if volumes is None:
        ops.append(_op(kind, "/spec/volumes", f"[{constants.volume(delivery)}]"))
        state["volume"] = True
    elif not any(as_map(v).get("name") == c.VOLUME_NAME for v in volumes):
        ops.append(_op(kind, f"/spec/volumes/{len(volumes)}", constants.volume(delivery)))
        state["volume"] = True
    if delivery == INIT_CONTAINER:
        target = _list_target(spec, "initContainers", created)
        if target is None:
            return None
        kind, inits = target
        if inits is None or not any(
            as_map(ic).get("name") == c.INIT_CONTAINER_NAME for ic in inits
        ):
            ours = constants.init_container(as_map(spec.get("securityContext")))
            if inits is None:
                ops.append(_op(kind, "/spec/initContainers", f"[{ours}]"))
            else:
                ops.append(_op(kind, f"/spec/initContainers/{len(inits)}", ours))
            state["initContainer"] = True

    records = state["containers"]
    changed: list[Any] = []  # the user's entries the record keeps that hold more than text
    positions = (
        {id(ct): index for index, ct in enumerate(containers)} if len(containers) > 1 else None
    )
    for container in targets:
        position = positions[id(container)] if positions is not None else 0
        record = _container(container, position, options, constants, delivery, ops, changed)
        if record is None:
            return None
        records[container["name"]] = {k: v for k, v in record.items() if v}

    text = state_text(state, changed)
    after = dict(pod_annotations)  # the annotations the API server will count
    after[c.ANNOTATION_INJECTED] = settings.layer_version
    after[c.ANNOTATION_INJECTION_STATE] = text
    characters = sum(map(len, after)) + sum(map(len, map(str, after.values())))
    if characters * 4 > ANNOTATIONS_LIMIT:
        return None  # maybe over the limit: `inject` decides and says why
    ops.append(constants.injected_op)
    ops.append(_op("add", _STATE_PATH, _dumps(text)))
    names = ", ".join([str(ct["name"]) for ct in targets])
    reason = f"injected containers: {names} ({delivery})"
    return Written(f"[{','.join(ops)}]".encode(), reason, tuple(warnings))


def _container(
    container: dict[str, Any],
    position: int,
    options: PodOptions,
    constants: _Constants,
    delivery: Delivery,
    ops: list[str],
    changed: list[Any],
) -> dict[str, Any] | None:
    """The operations of one container (into `ops`) and its record; None: `inject` decides.
    The user's entries the record keeps that hold anything but text go to `changed`."""
    created: list[str] = []
    added: list[str] = []
    record: dict[str, Any] = {"created": created, "added": added, "changed": {}}
    path = f"/spec/containers/{position}"
    target = _list_target(container, "volumeMounts", created)
    if target is None:
        return None
    kind, mounts = target
    mount = constants.mount(delivery)
    if mounts is None:
        ops.append(_op(kind, f"{path}/volumeMounts", f"[{mount}]"))
    elif any(
        as_map(m).get("name") == c.VOLUME_NAME
        and str(as_map(m).get("mountPath", "")).rstrip("/") == c.MOUNT_PATH
        for m in mounts
    ):
        return None  # ours already (the general path keeps it): rare, `inject` decides
    else:
        ops.append(_op(kind, f"{path}/volumeMounts/{len(mounts)}", mount))
    record["mount"] = True

    target = _list_target(container, "env", created)
    if target is None:
        return None
    kind, entries = target
    last: dict[str, int] = {}
    if entries:
        for position_, entry in enumerate(entries):
            name = entry.get("name") if type(entry) is dict else as_map(entry).get("name")
            if isinstance(name, str):
                last[name] = position_
        if c.ENV_RESOURCE_ATTRIBUTES in last:
            return None  # merged with the user's: the general path
    new: list[str] = []  # the entries appended, in order (their names go to `added`)
    size = len(entries) if entries is not None else 0
    env_path = f"{path}/env/"
    if c.ENV_PYTHONPATH not in last and as_list(container.get("envFrom")):
        new.append(_INHERIT)
        added.append(c.ENV_PYTHONPATH)
        last[c.ENV_PYTHONPATH] = -1  # ours: unchanged by the merge below
    for variable, merge in _MERGES:
        index = last.get(variable)
        if index is None:
            new.append(_NEW_ENTRIES[variable])
            added.append(variable)
            continue
        if index < 0:
            continue
        entry = entries[index]  # type: ignore[index]
        existing = literal_value(entry)
        if existing is None:  # blocked by `container_blocker`; the general path warns
            return None
        value = merge(existing)
        if value != existing or "value" not in entry:
            kept = record["changed"][variable] = plain_copy(entry)
            if not all(type(part) is str for part in kept.values()):
                changed.append(kept)  # may hold a float: `state_text` looks
            # the entries appended so far come first, as the general path puts them
            ops += [
                f'{{"op":"add","path":"{env_path}{size + n}","value":{e}}}'
                for n, e in enumerate(new)
            ]
            size += len(new)
            new = []
            op = "replace" if "value" in entry else "add"
            ops.append(f'{{"op":"{op}","path":"{env_path}{index}/value","value":{_dumps(value)}}}')
    name = str(container["name"])
    if c.ENV_TRACER_TOKEN not in last:
        new.append(constants.token(options.secret_name, options.secret_key))
        added.append(c.ENV_TRACER_TOKEN)
    if options.service_name and c.ENV_SERVICE_NAME not in last:
        new.append(f"{_SERVICE_HEAD}{_dumps(escape_reference(options.service_name))}}}")
        added.append(c.ENV_SERVICE_NAME)
    if constants.endpoint and c.ENV_ENDPOINT not in last:
        new.append(constants.endpoint)
        added.append(c.ENV_ENDPOINT)
    if c.ENV_CONTAINER_NAME not in last:
        new.append(f"{_CONTAINER_HEAD}{_dumps(escape_reference(name))}}}")
        added.append(c.ENV_CONTAINER_NAME)
    if options.enable_logs and c.ENV_ENABLE_LOGS not in last:
        new.append(_ENABLE_LOGS)
        added.append(c.ENV_ENABLE_LOGS)
    for variable, encoded in _DOWNWARD:
        if variable not in last:
            new.append(encoded)
            added.append(variable)
    attributes = f"{_DOWNWARD_TEXT},k8s.container.name={name}"
    for key, workload in workload_attributes(options.workloads):
        attributes += f",{key}={workload}"
    new.append(f"{_ATTRIBUTES_HEAD}{_dumps(attributes)}}}")
    added.append(c.ENV_RESOURCE_ATTRIBUTES)
    if entries is None:  # the list the injection creates, as its operation carries it
        ops.append(_op(kind, f"{path}/env", f"[{','.join(new)}]"))
    else:
        ops += [
            f'{{"op":"add","path":"{env_path}{size + n}","value":{e}}}' for n, e in enumerate(new)
        ]
    return record
