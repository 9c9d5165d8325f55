"""The steps of the mutation, each small and idempotent: what they add is added once.

`pod_blocker` and `container_blocker` say why a pod or a container cannot be injected at all;
`add_volume`, `add_init_container`, `add_mount`, `set_env` and `set_resource_attributes` then
change the pod in place and record what they added or changed (for `undo.uninject`).
The volume and the mount depend on the delivery (`spec.delivery`): an emptyDir filled by the
init container, or the init image itself as a read-only image volume (no init container).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lumigo_injector.k8s.edits import Edits
from lumigo_injector.k8s.options import InjectionSettings, PodOptions
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import IMAGE_VOLUME, INIT_CONTAINER, Delivery
from lumigo_injector.spec.env import (
    EXTENDED_VARIABLES,
    attribute_keys,
    container_variables,
    escape_reference,
    has_unclosed_reference,
    merged_attributes,
    merged_autowrapt,
    merged_pythonpath,
    mount_conflict,
)
from lumigo_injector.spec.naming import workload_attributes
from lumigo_injector.spec.plain import as_list, as_map, plain_copy

#: `set_env` appends what it adds to an env without `OTEL_RESOURCE_ATTRIBUTES` in one pass
#: (`_appended`); False: entry by entry through the general path (tests compare the two).
ONE_PASS_APPEND = True

DOWNWARD_FIELDS = (
    ("k8s.namespace.name", c.ENV_K8S_NAMESPACE_NAME, "metadata.namespace"),
    ("k8s.pod.name", c.ENV_K8S_POD_NAME, "metadata.name"),
    ("k8s.pod.uid", c.ENV_K8S_POD_UID, "metadata.uid"),
    ("k8s.node.name", c.ENV_K8S_NODE_NAME, "spec.nodeName"),
)


def literal_value(entry: Mapping[str, Any]) -> str | None:
    """The literal value of an env entry (a missing or null value is ""); None for `valueFrom`."""
    if entry.get("valueFrom") is not None:
        return None
    value = entry.get("value")
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def init_container(settings: InjectionSettings, pod_security: Mapping[str, Any]) -> dict[str, Any]:
    """The init container copying the layer into the shared volume.

    The init image's entrypoint copies its layer into the directory given as its argument,
    and the image runs as the numeric non-root user 65532. The container sets no user of its
    own (so platforms that assign user ids, like OpenShift, keep working) unless the pod runs
    as root, where it must override the pod's user to satisfy `runAsNonRoot`.
    """
    security: dict[str, Any] = {"runAsNonRoot": True}
    if pod_security:  # (an empty one, the common case, sets neither)
        if pod_security.get("runAsUser") == 0:
            security["runAsUser"] = c.INIT_CONTAINER_USER
        if pod_security.get("runAsGroup") == 0:
            security["runAsGroup"] = c.INIT_CONTAINER_USER
    security["readOnlyRootFilesystem"] = True
    security["allowPrivilegeEscalation"] = False
    security["privileged"] = False
    security["capabilities"] = {"drop": ["ALL"]}
    security["seccompProfile"] = {"type": "RuntimeDefault"}
    return {
        "name": c.INIT_CONTAINER_NAME,
        "image": settings.init_image,
        "imagePullPolicy": "IfNotPresent",
        "args": [c.MOUNT_PATH],
        "resources": {
            "requests": {
                "cpu": c.INIT_CONTAINER_CPU_REQUEST,
                "memory": c.INIT_CONTAINER_MEMORY_REQUEST,
            },
            "limits": {"cpu": c.INIT_CONTAINER_CPU_LIMIT, "memory": c.INIT_CONTAINER_MEMORY_LIMIT},
        },
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": c.VOLUME_NAME, "mountPath": c.MOUNT_PATH}],
    }


def ensure(
    holder: dict[str, Any], key: str, kind: type, created: list[str], edits: Edits, path: str
) -> Any:
    """`holder[key]`, made an empty list/dict when absent or null, recorded in `created`.

    Recorded as `key` when it was absent and `key=null` when it was an explicit null, so that
    `uninject` can put back exactly that. (Other types are refused earlier by the blockers.)
    `path` is `holder`'s JSON Pointer, for `edits`.
    """
    value = holder.get(key)
    if isinstance(value, kind):
        return value
    created.append(key if key not in holder else f"{key}=null")
    value = kind()
    edits.create(holder, path, key, value)
    return value


def wrong_type(holder: Mapping[str, Any], key: str, kind: type) -> str | None:
    """A message when `holder[key]` is present, not null and not of `kind`."""
    value = holder.get(key)
    if value is None or isinstance(value, kind):
        return None
    return f"its {key} is a {type(value).__name__}, not a {kind.__name__}"


def pod_blocker(holder: Mapping[str, Any]) -> str | None:
    spec: Mapping[str, Any] = holder["spec"]
    volumes, inits, meta = spec.get("volumes"), spec.get("initContainers"), holder.get("metadata")
    annotations = meta.get("annotations") if type(meta) is dict else None
    if not (  # parsed JSON, each absent or of its exact type: nothing to check one by one
        (volumes is None or type(volumes) is list)
        and (inits is None or type(inits) is list)
        and (meta is None or type(meta) is dict)
        and (annotations is None or type(annotations) is dict)
    ):
        wrong = (
            wrong_type(spec, "volumes", list)
            or wrong_type(spec, "initContainers", list)
            or wrong_type(holder, "metadata", dict)
            or wrong_type(as_map(meta), "annotations", dict)
        )
        if wrong:
            return f"the pod spec is malformed: {wrong}"
    if spec.get("os") is not None and as_map(spec.get("os")).get("name") == "windows":
        return "Windows pods are not supported"
    for ct in as_list(spec["containers"]):
        name = ct.get("name") if type(ct) is dict else as_map(ct).get("name")
        if name == c.INIT_CONTAINER_NAME:
            return f"an app container is named {c.INIT_CONTAINER_NAME!r}"
    for volume in volumes if type(volumes) is list else as_list(volumes):
        if as_map(volume).get("name") == c.VOLUME_NAME and volume_delivery(volume) is None:
            return (
                f"a volume named {c.VOLUME_NAME!r} already exists and is neither an emptyDir "
                "nor an image volume"
            )
    return None


def volume_delivery(volume: Any) -> Delivery | None:
    """The delivery a volume serves: emptyDir (init container), image, or None."""
    volume = as_map(volume)
    if "emptyDir" in volume:
        return INIT_CONTAINER
    if "image" in volume:
        return IMAGE_VOLUME
    return None


def existing_delivery(spec: Mapping[str, Any]) -> Delivery | None:
    """The delivery a `lumigo-otel` volume already in the pod dictates (it is kept as is)."""
    for volume in as_list(spec.get("volumes")):
        if as_map(volume).get("name") == c.VOLUME_NAME:
            return volume_delivery(volume)
    return None


def _mount_conflict(container: Mapping[str, Any]) -> str | None:
    for mount in as_list(container.get("volumeMounts")):
        path = str(as_map(mount).get("mountPath", "")).rstrip("/")
        if path == c.MOUNT_PATH and as_map(mount).get("name") == c.VOLUME_NAME:
            continue  # ours, from an earlier injection
        conflict = mount_conflict(path)
        if conflict:
            return conflict
    return None


def container_blocker(container: Mapping[str, Any]) -> str | None:
    """Why this container cannot be injected, or None."""
    env, mounts = container.get("env"), container.get("volumeMounts")
    if not ((env is None or type(env) is list) and (mounts is None or type(mounts) is list)):
        for key in ("env", "volumeMounts"):
            wrong = wrong_type(container, key, list)
            if wrong:
                return wrong
    if env:
        names = [
            entry.get("name") if type(entry) is dict or isinstance(entry, Mapping) else None
            for entry in env
        ]
        for name in EXTENDED_VARIABLES:
            if name in names:  # where it is defined last (`last_index`)
                index = len(names) - 1 - names[::-1].index(name)
                if literal_value(env[index]) is None:
                    return f"its {name} comes from valueFrom and cannot be extended"
    return _mount_conflict(container) if mounts else None


def select_containers(
    containers: list[Any], options: PodOptions, warnings: list[str]
) -> list[dict[str, Any]]:
    by_name = {
        str(ct.get("name")): ct
        for ct in containers
        if isinstance(ct, dict) and isinstance(ct.get("name"), str)
    }
    if options.container_names is None:
        wanted = list(by_name)
    else:
        wanted = [name for name in options.container_names if name in by_name]
        for name in options.container_names:
            if name not in by_name:
                warnings.append(f"{c.ANNOTATION_CONTAINER_NAMES}: no container named {name!r}")
    selected = []
    for name in wanted:
        blocker = container_blocker(by_name[name])
        if blocker:
            warnings.append(f"container {name!r} not injected: {blocker}")
        else:
            selected.append(by_name[name])
    return selected


def layer_volume(settings: InjectionSettings, delivery: Delivery) -> dict[str, Any]:
    """The `lumigo-otel` volume: an emptyDir to copy into, or the init image mounted as is."""
    if delivery == IMAGE_VOLUME:
        image = {"reference": settings.init_image, "pullPolicy": "IfNotPresent"}
        return {"name": c.VOLUME_NAME, "image": image}
    return {"name": c.VOLUME_NAME, "emptyDir": {"sizeLimit": settings.volume_size_limit}}


def layer_mount(delivery: Delivery) -> dict[str, Any]:
    """The app containers' read-only mount of the layer at `/lumigo-otel`.

    An image volume holds the whole image: the subPath picks the layer's folder in it, so
    the app sees the same tree at the same path as with the init container's copy.
    """
    mount: dict[str, Any] = {"name": c.VOLUME_NAME, "mountPath": c.MOUNT_PATH, "readOnly": True}
    if delivery == IMAGE_VOLUME:
        mount["subPath"] = c.LAYER_IMAGE_SUBPATH
    return mount


def add_volume(
    spec: dict[str, Any],
    settings: InjectionSettings,
    state: dict[str, Any],
    delivery: Delivery,
    edits: Edits,
    path: str,
) -> None:
    """The layer's volume, unless the pod has one of that name; `path` is `spec`'s pointer."""
    volumes: list[Any] = ensure(spec, "volumes", list, state["created"], edits, path)
    if volumes and any(as_map(v).get("name") == c.VOLUME_NAME for v in volumes):
        return
    edits.append(volumes, f"{path}/volumes", layer_volume(settings, delivery))
    state["volume"] = True


def add_init_container(
    spec: dict[str, Any],
    settings: InjectionSettings,
    state: dict[str, Any],
    edits: Edits,
    path: str,
) -> None:
    """The init container, unless the pod has one of that name; `path` is `spec`'s pointer."""
    init_containers: list[Any] = ensure(spec, "initContainers", list, state["created"], edits, path)
    if init_containers and any(
        as_map(ic).get("name") == c.INIT_CONTAINER_NAME for ic in init_containers
    ):
        return
    ours = init_container(settings, as_map(spec.get("securityContext")))
    edits.append(init_containers, f"{path}/initContainers", ours)
    state["initContainer"] = True


def add_mount(
    container: dict[str, Any], record: dict[str, Any], delivery: Delivery, edits: Edits, path: str
) -> None:
    """The layer's mount, unless the container has it; `path` is the container's pointer."""
    mounts: list[Any] = ensure(container, "volumeMounts", list, record["created"], edits, path)
    if mounts and any(
        as_map(m).get("name") == c.VOLUME_NAME
        and str(as_map(m).get("mountPath", "")).rstrip("/") == c.MOUNT_PATH
        for m in mounts
    ):
        return
    edits.append(mounts, f"{path}/volumeMounts", layer_mount(delivery))
    record["mount"] = True


class EnvEdits:
    """A container's `env` list while the injection changes it through `edits`.

    Knows where each name is defined last (the definition that wins), kept current as
    entries go in, so each variable is looked up without scanning the list; the names it
    adds go to `added` (the container's record).
    """

    def __init__(self, entries: list[Any], path: str, edits: Edits, added: list[str]) -> None:
        self.entries = entries
        self._path = path
        self._edits = edits
        #: the patch's operations when `entries` is the user's list (else the list itself,
        #: created by the injection, carries what is added to it)
        self._ops = edits.ops if edits.records(entries) else None
        self._added = added
        #: where each name is defined last
        self.last: dict[str, int] = {}
        for position, entry in enumerate(entries):
            name = as_map(entry).get("name")
            if isinstance(name, str):
                self.last[name] = position

    def add(self, entry: dict[str, Any], position: int | None = None) -> None:
        """Put `entry`, whose name is not defined yet, at `position` (default: the end)."""
        entries = self.entries
        last = self.last
        if position is None:
            position = len(entries)
        elif position < len(entries):  # the names at and after it move up one
            for name, index in last.items():
                if index >= position:
                    last[name] = index + 1
        if self._ops is not None:
            self._ops.append({"op": "add", "path": f"{self._path}/{position}", "value": entry})
        entries.insert(position, entry)
        name = entry["name"]
        last[name] = position
        self._added.append(name)

    def extend(self, new: list[dict[str, Any]]) -> None:
        """`add` of each entry of `new` (names not defined yet, none twice) at the end, in
        order: the same list, record and operations, in one pass."""
        entries = self.entries
        start = len(entries)
        if self._ops is not None:
            path = self._path
            self._ops += [
                {"op": "add", "path": f"{path}/{start + offset}", "value": entry}
                for offset, entry in enumerate(new)
            ]
        entries += new
        names = [entry["name"] for entry in new]
        self._added += names
        self.last.update(zip(names, range(start, start + len(names))))

    def set_value(self, index: int, value: str) -> None:
        """The entry at `index` gets `value` as its `value` (its other keys are kept)."""
        self._edits.put(self.entries[index], f"{self._path}/{index}", "value", value)


def _set_merged(
    env: EnvEdits, name: str, merge: Any, record: dict[str, Any], warnings: list[str]
) -> None:
    """Set `name` to merge(existing literal) in place, or append it if absent."""
    index = env.last.get(name)
    if index is None:
        env.add({"name": name, "value": merge("")})
        return
    entry = env.entries[index]
    existing = literal_value(entry)
    if existing is None:  # guarded by container_blocker for the variables that matter
        warnings.append(f"{name} comes from valueFrom; left unchanged")
        return
    new = merge(existing)
    if new != existing or "value" not in entry:
        record["changed"][name] = plain_copy(entry)
        env.set_value(index, new)


def set_env(
    container: dict[str, Any],
    options: PodOptions,
    settings: InjectionSettings,
    record: dict[str, Any],
    warnings: list[str],
    edits: Edits,
    path: str,
) -> None:
    """Our variables into the container's env; `path` is the container's pointer."""
    entries: list[Any] = ensure(container, "env", list, record["created"], edits, path)
    env = EnvEdits(entries, f"{path}/env", edits, record["added"])
    last = env.last
    if c.ENV_PYTHONPATH not in last and as_list(container.get("envFrom")):
        # A PYTHONPATH from a ConfigMap/Secret in envFrom would be shadowed by ours; the
        # kubelet expands $(PYTHONPATH) to it (and leaves the harmless text if there is none).
        inherit = {"name": c.ENV_PYTHONPATH, "value": f"{c.BOOTSTRAP_PATH}:$({c.ENV_PYTHONPATH})"}
        env.add(inherit)
    _set_merged(env, c.ENV_PYTHONPATH, merged_pythonpath, record, warnings)
    _set_merged(env, c.ENV_AUTOWRAPT_BOOTSTRAP, merged_autowrapt, record, warnings)
    if ONE_PASS_APPEND and c.ENV_RESOURCE_ATTRIBUTES not in last:  # the rest only appends
        env.extend(_appended(str(container["name"]), options, settings, last))
        return
    for entry in _missing_variables(str(container["name"]), options, settings, last):
        env.add(entry)
    set_resource_attributes(container, env, options, record, warnings)


#: Our resource attributes read from the downward-API variables, e.g. `k8s.pod.name`.
_DOWNWARD_REFERENCES = tuple((key, f"$({var})") for key, var, _ in DOWNWARD_FIELDS)
#: Their text in `OTEL_RESOURCE_ATTRIBUTES` (`merged_attributes` of them onto nothing).
_DOWNWARD_TEXT = ",".join(f"{key}={value}" for key, value in _DOWNWARD_REFERENCES)


def _missing_variables(
    name: str, options: PodOptions, settings: InjectionSettings, last: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Our token, service name, endpoint and per-container variables that the env of
    container `name` lacks (`last`: its names), in the order they are added."""
    new: list[dict[str, Any]] = []
    if c.ENV_TRACER_TOKEN not in last:
        secret = {"name": options.secret_name, "key": options.secret_key, "optional": True}
        new.append({"name": c.ENV_TRACER_TOKEN, "valueFrom": {"secretKeyRef": secret}})
    if options.service_name and c.ENV_SERVICE_NAME not in last:
        new.append({"name": c.ENV_SERVICE_NAME, "value": escape_reference(options.service_name)})
    if settings.endpoint and c.ENV_ENDPOINT not in last:
        new.append({"name": c.ENV_ENDPOINT, "value": escape_reference(settings.endpoint)})
    for variable, value in container_variables(name, options.enable_logs):
        if variable not in last:
            new.append({"name": variable, "value": escape_reference(value)})
    return new


def _appended(
    name: str, options: PodOptions, settings: InjectionSettings, last: Mapping[str, int]
) -> list[dict[str, Any]]:
    """What the rest of `set_env` adds to an env without `OTEL_RESOURCE_ATTRIBUTES`: each
    entry `env.add` would append, in its order (the downward-API variables, then the
    attributes that reference them, come last, as `set_resource_attributes` puts them)."""
    new = _missing_variables(name, options, settings, last)
    for _, variable, path in DOWNWARD_FIELDS:
        if variable not in last:
            new.append({"name": variable, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    attributes = f"{_DOWNWARD_TEXT},k8s.container.name={name}"
    for key, workload in workload_attributes(options.workloads):
        attributes += f",{key}={workload}"
    new.append({"name": c.ENV_RESOURCE_ATTRIBUTES, "value": attributes})
    return new


def set_resource_attributes(
    container: Mapping[str, Any],
    env: EnvEdits,
    options: PodOptions,
    record: dict[str, Any],
    warnings: list[str],
) -> None:
    ours = list(_DOWNWARD_REFERENCES)
    ours.append(("k8s.container.name", str(container.get("name", ""))))
    ours.extend(workload_attributes(options.workloads))
    index = env.last.get(c.ENV_RESOURCE_ATTRIBUTES)
    existing = ""
    if index is not None:
        literal = literal_value(env.entries[index])
        if literal is None:
            warnings.append(
                f"container {container.get('name')!r}: {c.ENV_RESOURCE_ATTRIBUTES} comes from "
                "valueFrom; Kubernetes attributes not added"
            )
            return
        existing = literal
        if has_unclosed_reference(existing):
            warnings.append(
                f"container {container.get('name')!r}: {c.ENV_RESOURCE_ATTRIBUTES} has an "
                "unclosed $( reference; Kubernetes attributes not added"
            )
            return
    user_keys = attribute_keys(existing) if existing else set()
    needed = [(key, var, path) for key, var, path in DOWNWARD_FIELDS if key not in user_keys]
    # Downward-API variables must be defined before the variable that references them.
    position = len(env.entries) if index is None else index
    for _, var, path in needed:
        if var not in env.last:
            env.add({"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}, position)
            position += 1
    _set_merged(
        env, c.ENV_RESOURCE_ATTRIBUTES, lambda old: merged_attributes(old, ours), record, warnings
    )
