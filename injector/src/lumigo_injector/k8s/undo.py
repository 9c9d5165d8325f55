"""Undoing the mutation: `uninject` gives back the original object exactly.

It works from the `lumigo.io/injection-state` record the steps wrote; without a readable
record it removes only what is unmistakably ours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from lumigo_injector.k8s.site import is_injected, locate
from lumigo_injector.k8s.steps import DOWNWARD_FIELDS, literal_value
from lumigo_injector.spec import names as c
from lumigo_injector.spec.env import UNMERGES, last_index
from lumigo_injector.spec.plain import as_list, as_map, plain_copy


def _remove_named(items: list[Any], name: str) -> None:
    for index in range(len(items) - 1, -1, -1):
        if as_map(items[index]).get("name") == name:
            del items[index]
            return


def _drop_if_created(holder: MutableMapping[str, Any], key: str, created: list[str]) -> None:
    """Undo `ensure`: remove (or null again) a list or map `inject` created, if still empty."""
    if holder.get(key) not in ([], {}):
        return
    if key in created:
        del holder[key]
    elif f"{key}=null" in created:
        holder[key] = None


def _uninject_container(container: dict[str, Any], record: Mapping[str, Any]) -> None:
    created = list(record.get("created", ()))
    env = container.get("env")
    if isinstance(env, list):
        for name in record.get("added", ()):
            _remove_named(env, name)
        for name, original in as_map(record.get("changed")).items():
            index = last_index(env, name)
            if index is not None:
                env[index] = plain_copy(original)
    mounts = container.get("volumeMounts")
    if record.get("mount") and isinstance(mounts, list):
        for index in range(len(mounts) - 1, -1, -1):
            mount = as_map(mounts[index])
            if mount.get("name") == c.VOLUME_NAME and mount.get("mountPath") == c.MOUNT_PATH:
                del mounts[index]
                break
    _drop_if_created(container, "env", created)
    _drop_if_created(container, "volumeMounts", created)


def uninject(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Remove everything `inject` added; gives back the original object exactly.

    Works from the `lumigo.io/injection-state` record. An object that is not injected comes
    back as an unchanged deep copy.
    """
    out: dict[str, Any] = plain_copy(obj)
    site = locate(out)
    if isinstance(site, str):
        return out
    meta = site.holder.get("metadata")
    if not isinstance(meta, dict) or not is_injected(meta):
        return out
    annotations: dict[str, Any] = meta["annotations"]
    try:
        state = json.loads(annotations.get(c.ANNOTATION_INJECTION_STATE, ""))
    except (TypeError, ValueError):
        state = None
    if not isinstance(state, dict):
        state = _guess_state(site.holder["spec"])
    created = list(as_list(state.get("created")))
    spec: dict[str, Any] = site.holder["spec"]
    for container in as_list(spec.get("containers")):
        if not isinstance(container, dict):
            continue
        record = as_map(as_map(state.get("containers")).get(str(container.get("name"))))
        if record:
            _uninject_container(container, record)
    if state.get("initContainer") and isinstance(spec.get("initContainers"), list):
        _remove_named(spec["initContainers"], c.INIT_CONTAINER_NAME)
    if state.get("volume") and isinstance(spec.get("volumes"), list):
        _remove_named(spec["volumes"], c.VOLUME_NAME)
    _drop_if_created(spec, "initContainers", created)
    _drop_if_created(spec, "volumes", created)
    annotations.pop(c.ANNOTATION_INJECTED, None)
    annotations.pop(c.ANNOTATION_INJECTION_STATE, None)
    _drop_if_created(meta, "annotations", created)
    _drop_if_created(site.holder, "metadata", created)
    return out


def _guess_state(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Best effort when the state record is missing: undo only what is unmistakably ours.

    Our downward-API variables and the token reference are removed, our prefix of PYTHONPATH,
    our AUTOWRAPT_BOOTSTRAP entry and our `$(LUMIGO_K8S_*)` attributes are stripped.
    """
    ours = {c.ENV_TRACER_TOKEN} | {var for _, var, _ in DOWNWARD_FIELDS}
    containers: dict[str, Any] = {}
    for container in as_list(spec.get("containers")):
        container = as_map(container)
        added: list[str] = []
        changed: dict[str, Any] = {}
        for entry in as_list(container.get("env")):
            entry = as_map(entry)
            name, value = entry.get("name"), literal_value(entry)
            if name in ours:
                added.append(str(name))
            elif value is None:
                continue
            elif name in UNMERGES:
                _guess_one(entry, value, UNMERGES[name](value), added, changed)
            elif name == c.ENV_RESOURCE_ATTRIBUTES:
                kept = [p for p in value.split(",") if "$(LUMIGO_K8S_" not in p]
                _guess_one(entry, value, ",".join(kept) if kept else None, added, changed)
        containers[str(container.get("name"))] = {"added": added, "changed": changed, "mount": True}
    return {"containers": containers, "volume": True, "initContainer": True, "created": []}


def _guess_one(
    entry: Mapping[str, Any],
    value: str,
    original: str | None,
    added: list[str],
    changed: dict[str, Any],
) -> None:
    """Record `entry` as added (original None) or changed (original differs)."""
    if original is None:
        added.append(str(entry["name"]))
    elif original != value:
        changed[str(entry["name"])] = {**entry, "value": original}
