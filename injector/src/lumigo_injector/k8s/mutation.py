"""The injection mutation: a pod (or a workload's pod template) in, the injected one out.

Pure: no I/O, no clock, no API calls. The webhook, `lumigo-injector inject -f`, the demo and
the ECS rewriter share it. The mutation is a sequence of small steps (volume, init container,
per-container mount and environment), each of which leaves what is already there alone, and
records what it added or changed in the annotation `lumigo.io/injection-state` so that
`uninject` gives back the original object exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from lumigo_injector.spec import names as c
from lumigo_injector.spec.naming import Workload, service_name, workload_attributes, workload_chain

__all__ = [
    "POD_TEMPLATE_KINDS",
    "InjectionSettings",
    "MutationResult",
    "inject",
    "is_injected",
    "uninject",
    "wants_injection",
]

#: Where each supported kind keeps its pod template ("" = the object is the pod).
POD_TEMPLATE_KINDS: Mapping[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

_STATE_VERSION = 1
_DOWNWARD_FIELDS = (
    ("k8s.namespace.name", c.ENV_K8S_NAMESPACE_NAME, "metadata.namespace"),
    ("k8s.pod.name", c.ENV_K8S_POD_NAME, "metadata.name"),
    ("k8s.pod.uid", c.ENV_K8S_POD_UID, "metadata.uid"),
    ("k8s.node.name", c.ENV_K8S_NODE_NAME, "spec.nodeName"),
)


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


@dataclass(frozen=True)
class MutationResult:
    """The outcome of `inject`: always a deep copy, mutated only when `injected`."""

    obj: dict[str, Any]
    injected: bool
    reason: str
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Small helpers over plain JSON-like data
# --------------------------------------------------------------------------------------------


def _as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def plain_copy(value: Any) -> Any:
    """A deep copy of JSON-like data in which no two places share an object.

    (`copy.deepcopy` keeps sharing, e.g. one env list used by two containers through a YAML
    anchor, and mutating one container would then change the other.)
    """
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_copy(item) for item in value]
    return value


def _annotation(annotations: Mapping[str, Any], key: str) -> str | None:
    value = annotations.get(key)
    return value.strip() if isinstance(value, str) else None


def _inject_value(annotations: Mapping[str, Any] | None) -> str | None:
    value = _annotation(_as_map(annotations), c.ANNOTATION_INJECT)
    return value.lower() if value is not None else None


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
    pod_value = _inject_value(_as_map(_as_map(pod_meta).get("annotations")))
    if pod_value is not None:
        return pod_value == c.INJECT_PYTHON
    namespace_value = _inject_value(namespace_annotations)
    if namespace_value is not None:
        return namespace_value == c.INJECT_PYTHON
    return inject_all


# --------------------------------------------------------------------------------------------
# Locating the pod inside an object
# --------------------------------------------------------------------------------------------


@dataclass
class _Site:
    """The pod (template) inside an object: the dict holding `metadata` and `spec`."""

    kind: str
    holder: dict[str, Any]
    outer_meta: Mapping[str, Any]


def _locate(obj: dict[str, Any]) -> _Site | str:
    """The pod site of `obj`, or the reason why there is none."""
    kind = obj.get("kind")
    if kind is None and isinstance(_as_map(obj.get("spec")).get("containers"), list):
        kind = "Pod"
    if not isinstance(kind, str) or kind not in POD_TEMPLATE_KINDS:
        return f"kind {kind!r} has no pod template"
    holder: Any = obj
    for key in POD_TEMPLATE_KINDS[kind]:
        holder = holder.get(key) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or not isinstance(holder.get("spec"), dict):
        return f"{kind} has no pod spec"
    if not isinstance(holder["spec"].get("containers"), list):
        return f"{kind} has no containers"
    return _Site(kind, holder, _as_map(obj.get("metadata")))


def _effective_annotations(site: _Site) -> dict[str, Any]:
    """Pod annotations; for a workload, its own annotations overlaid by the template's."""
    pod = dict(_as_map(_as_map(site.holder.get("metadata")).get("annotations")))
    if site.kind == "Pod":
        return pod
    merged = dict(_as_map(site.outer_meta.get("annotations")))
    merged.update(pod)
    return merged


# --------------------------------------------------------------------------------------------
# Parsing annotations into options, once
# --------------------------------------------------------------------------------------------


@dataclass
class _Options:
    secret_name: str
    secret_key: str
    service_name: str | None
    container_names: tuple[str, ...] | None
    workloads: tuple[Workload, ...]
    warnings: list[str] = field(default_factory=list)


def _is_dns_subdomain(value: str) -> bool:
    if not 0 < len(value) <= 253:
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return set(value) <= allowed and value[0].isalnum() and value[-1].isalnum()


def _is_secret_key(value: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
    return 0 < len(value) <= 253 and set(value) <= allowed and value not in (".", "..")


def _options(site: _Site, annotations: Mapping[str, Any], settings: InjectionSettings) -> _Options:
    warnings: list[str] = []
    secret_name = settings.secret_name
    value = _annotation(annotations, c.ANNOTATION_SECRET_NAME)
    if value is not None:
        if _is_dns_subdomain(value):
            secret_name = value
        else:
            warnings.append(
                f"{c.ANNOTATION_SECRET_NAME}={value!r} is not a valid Secret name; "
                f"using {secret_name!r}"
            )
    secret_key = settings.secret_key
    value = _annotation(annotations, c.ANNOTATION_SECRET_KEY)
    if value is not None:
        if _is_secret_key(value):
            secret_key = value
        else:
            warnings.append(
                f"{c.ANNOTATION_SECRET_KEY}={value!r} is not a valid Secret key; "
                f"using {secret_key!r}"
            )
    container_names: tuple[str, ...] | None = None
    value = _annotation(annotations, c.ANNOTATION_CONTAINER_NAMES)
    if value is not None:
        names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
        if names:
            container_names = names
        else:
            warnings.append(f"{c.ANNOTATION_CONTAINER_NAMES} is empty; injecting every container")
    pod_meta = _as_map(site.holder.get("metadata"))
    if site.kind == "Pod":
        chain = workload_chain("Pod", pod_meta)
    else:
        chain = workload_chain(site.kind, site.outer_meta)
    labels = dict(_as_map(site.outer_meta.get("labels"))) if site.kind != "Pod" else {}
    labels.update(_as_map(pod_meta.get("labels")))
    name = service_name(annotations, labels, chain, pod_meta)
    return _Options(secret_name, secret_key, name, container_names, chain, warnings)


# --------------------------------------------------------------------------------------------
# Env list helpers
# --------------------------------------------------------------------------------------------


def _last_index(env: list[Any], name: str) -> int | None:
    """Index of the effective (last) definition of `name`, if any."""
    for index in range(len(env) - 1, -1, -1):
        entry = env[index]
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return index
    return None


def _literal(entry: Mapping[str, Any]) -> str | None:
    """The literal value of an env entry (a missing or null value is ""); None for `valueFrom`."""
    if entry.get("valueFrom") is not None:
        return None
    value = entry.get("value")
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def merged_pythonpath(existing: str) -> str:
    """Our bootstrap directory first, then the user's entries (unchanged if already first)."""
    if existing.split(":", 1)[0] == c.BOOTSTRAP_PATH:
        return existing
    return f"{c.BOOTSTRAP_PATH}:{existing}" if existing else c.BOOTSTRAP_PATH


def merged_autowrapt(existing: str) -> str:
    """The user's comma list of autowrapt bootstraps, verbatim, with ours appended (once)."""
    if c.AUTOWRAPT_ENTRY_POINT in (e.strip() for e in existing.split(",")):
        return existing
    if not existing.strip():
        return c.AUTOWRAPT_ENTRY_POINT
    separator = "" if existing.rstrip().endswith(",") else ","
    return f"{existing}{separator}{c.AUTOWRAPT_ENTRY_POINT}"


def escape_reference(value: str) -> str:
    """A literal for an env value: `$` doubled so the kubelet does not expand `$(...)`."""
    return value.replace("$", "$$")


def has_unclosed_reference(value: str) -> bool:
    """Whether the kubelet would read text appended to `value` as part of a `$(` reference."""
    index = 0
    while index < len(value) - 1:
        if value[index] == "$":
            if value[index + 1] == "(" and ")" not in value[index + 2 :]:
                return True
            if value[index + 1] == "(":
                index = value.index(")", index + 2) + 1
                continue
            index += 2
            continue
        index += 1
    return False


def attribute_keys(value: str) -> set[str]:
    """Keys present in an OTEL_RESOURCE_ATTRIBUTES value (``k=v,k2=v2``)."""
    return {part.split("=", 1)[0].strip() for part in value.split(",") if "=" in part}


def merged_attributes(existing: str, ours: list[tuple[str, str]]) -> str:
    """The user's attributes verbatim, then ours for keys the user does not set."""
    keys = attribute_keys(existing)
    extra = ",".join(f"{k}={v}" for k, v in ours if k not in keys)
    if not extra:
        return existing
    head = existing.rstrip()
    if not head.strip():
        return extra
    return f"{head}{extra}" if head.endswith(",") else f"{head},{extra}"


# --------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------


def _init_container(settings: InjectionSettings, pod_security: Mapping[str, Any]) -> dict[str, Any]:
    """The init container copying the layer into the shared volume.

    The init image's entrypoint copies its layer into the directory given as its argument,
    and the image runs as the numeric non-root user 65532. The container sets no user of its
    own (so platforms that assign user ids, like OpenShift, keep working) unless the pod runs
    as root, where it must override the pod's user to satisfy `runAsNonRoot`.
    """
    security: dict[str, Any] = {"runAsNonRoot": True}
    if pod_security.get("runAsUser") == 0:
        security["runAsUser"] = c.INIT_CONTAINER_USER
    if pod_security.get("runAsGroup") == 0:
        security["runAsGroup"] = c.INIT_CONTAINER_USER
    security.update(
        {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    )
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


def _ensure(holder: dict[str, Any], key: str, kind: type, created: list[str]) -> Any:
    """`holder[key]`, made an empty list/dict when absent or null, recorded in `created`.

    Recorded as `key` when it was absent and `key=null` when it was an explicit null, so that
    `uninject` can put back exactly that. (Other types are refused earlier by the blockers.)
    """
    value = holder.get(key)
    if isinstance(value, kind):
        return value
    created.append(key if key not in holder else f"{key}=null")
    holder[key] = value = kind()
    return value


def _ensure_list(holder: dict[str, Any], key: str, created: list[str]) -> list[Any]:
    value: list[Any] = _ensure(holder, key, list, created)
    return value


def _wrong_type(holder: Mapping[str, Any], key: str, kind: type) -> str | None:
    """A message when `holder[key]` is present, not null and not of `kind`."""
    value = holder.get(key)
    if value is None or isinstance(value, kind):
        return None
    return f"its {key} is a {type(value).__name__}, not a {kind.__name__}"


def _step_volume(spec: dict[str, Any], settings: InjectionSettings, state: dict[str, Any]) -> None:
    volumes = _ensure_list(spec, "volumes", state["created"])
    if any(_as_map(v).get("name") == c.VOLUME_NAME for v in volumes):
        return
    volumes.append({"name": c.VOLUME_NAME, "emptyDir": {"sizeLimit": settings.volume_size_limit}})
    state["volume"] = True


def _step_init_container(
    spec: dict[str, Any], settings: InjectionSettings, state: dict[str, Any]
) -> None:
    init_containers = _ensure_list(spec, "initContainers", state["created"])
    if any(_as_map(ic).get("name") == c.INIT_CONTAINER_NAME for ic in init_containers):
        return
    init_containers.append(_init_container(settings, _as_map(spec.get("securityContext"))))
    state["initContainer"] = True


def _mount_conflict(container: Mapping[str, Any]) -> str | None:
    for mount in _as_list(container.get("volumeMounts")):
        path = str(_as_map(mount).get("mountPath", "")).rstrip("/")
        if path == c.MOUNT_PATH and _as_map(mount).get("name") == c.VOLUME_NAME:
            continue
        if path == c.MOUNT_PATH or path.startswith(c.MOUNT_PATH + "/"):
            return f"it already mounts something at {path}"
    return None


def _container_blocker(container: Mapping[str, Any]) -> str | None:
    """Why this container cannot be injected, or None."""
    for key in ("env", "volumeMounts"):
        wrong = _wrong_type(container, key, list)
        if wrong:
            return wrong
    env = _as_list(container.get("env"))
    for name in (c.ENV_PYTHONPATH, c.ENV_AUTOWRAPT_BOOTSTRAP):
        index = _last_index(env, name)
        if index is not None and _literal(env[index]) is None:
            return f"its {name} comes from valueFrom and cannot be extended"
    return _mount_conflict(container)


def _step_mount(container: dict[str, Any], record: dict[str, Any]) -> None:
    mounts = _ensure_list(container, "volumeMounts", record["created"])
    if any(
        _as_map(m).get("name") == c.VOLUME_NAME
        and str(_as_map(m).get("mountPath", "")).rstrip("/") == c.MOUNT_PATH
        for m in mounts
    ):
        return
    mounts.append({"name": c.VOLUME_NAME, "mountPath": c.MOUNT_PATH, "readOnly": True})
    record["mount"] = True


def _set_merged(
    env: list[Any], name: str, merge: Any, record: dict[str, Any], warnings: list[str]
) -> None:
    """Set `name` to merge(existing literal) in place, or append it if absent."""
    index = _last_index(env, name)
    if index is None:
        env.append({"name": name, "value": merge("")})
        record["added"].append(name)
        return
    entry = env[index]
    existing = _literal(entry)
    if existing is None:  # guarded by _container_blocker for the variables that matter
        warnings.append(f"{name} comes from valueFrom; left unchanged")
        return
    new = merge(existing)
    if new != existing or "value" not in entry:
        record["changed"][name] = plain_copy(entry)
        env[index] = {**entry, "value": new}


def _append_if_absent(env: list[Any], entry: dict[str, Any], record: dict[str, Any]) -> None:
    if _last_index(env, entry["name"]) is None:
        env.append(entry)
        record["added"].append(entry["name"])


def _step_env(
    container: dict[str, Any],
    options: _Options,
    settings: InjectionSettings,
    record: dict[str, Any],
    warnings: list[str],
) -> None:
    env = _ensure_list(container, "env", record["created"])
    if _last_index(env, c.ENV_PYTHONPATH) is None and _as_list(container.get("envFrom")):
        # A PYTHONPATH from a ConfigMap/Secret in envFrom would be shadowed by ours; the
        # kubelet expands $(PYTHONPATH) to it (and leaves the harmless text if there is none).
        inherit = {"name": c.ENV_PYTHONPATH, "value": f"{c.BOOTSTRAP_PATH}:$({c.ENV_PYTHONPATH})"}
        _append_if_absent(env, inherit, record)
    _set_merged(env, c.ENV_PYTHONPATH, merged_pythonpath, record, warnings)
    _set_merged(env, c.ENV_AUTOWRAPT_BOOTSTRAP, merged_autowrapt, record, warnings)
    token = {
        "name": c.ENV_TRACER_TOKEN,
        "valueFrom": {
            "secretKeyRef": {
                "name": options.secret_name,
                "key": options.secret_key,
                "optional": True,
            }
        },
    }
    _append_if_absent(env, token, record)
    if options.service_name:
        service = {"name": c.ENV_SERVICE_NAME, "value": escape_reference(options.service_name)}
        _append_if_absent(env, service, record)
    if settings.endpoint:
        endpoint = {"name": c.ENV_ENDPOINT, "value": escape_reference(settings.endpoint)}
        _append_if_absent(env, endpoint, record)
    _step_resource_attributes(container, env, options, record, warnings)


def _step_resource_attributes(
    container: Mapping[str, Any],
    env: list[Any],
    options: _Options,
    record: dict[str, Any],
    warnings: list[str],
) -> None:
    ours = [(key, f"$({var})") for key, var, _ in _DOWNWARD_FIELDS]
    ours.append(("k8s.container.name", str(container.get("name", ""))))
    ours.extend(workload_attributes(options.workloads))
    index = _last_index(env, c.ENV_RESOURCE_ATTRIBUTES)
    existing = ""
    if index is not None:
        literal = _literal(env[index])
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
    user_keys = attribute_keys(existing)
    needed = [(key, var, path) for key, var, path in _DOWNWARD_FIELDS if key not in user_keys]
    # Downward-API variables must be defined before the variable that references them.
    position = len(env) if index is None else index
    for _, var, path in needed:
        if _last_index(env, var) is None:
            env.insert(position, {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}})
            record["added"].append(var)
            position += 1
    _set_merged(
        env, c.ENV_RESOURCE_ATTRIBUTES, lambda old: merged_attributes(old, ours), record, warnings
    )


# --------------------------------------------------------------------------------------------
# inject / uninject
# --------------------------------------------------------------------------------------------


def is_injected(pod_meta: Mapping[str, Any]) -> bool:
    """Whether this pod (template) metadata carries our `lumigo.io/injected` mark."""
    return c.ANNOTATION_INJECTED in _as_map(_as_map(pod_meta).get("annotations"))


def _select_containers(
    containers: list[Any], options: _Options, warnings: list[str]
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
        blocker = _container_blocker(by_name[name])
        if blocker:
            warnings.append(f"container {name!r} not injected: {blocker}")
        else:
            selected.append(by_name[name])
    return selected


def _pod_blocker(holder: Mapping[str, Any]) -> str | None:
    spec: Mapping[str, Any] = holder["spec"]
    wrong = (
        _wrong_type(spec, "volumes", list)
        or _wrong_type(spec, "initContainers", list)
        or _wrong_type(holder, "metadata", dict)
        or _wrong_type(_as_map(holder.get("metadata")), "annotations", dict)
    )
    if wrong:
        return f"the pod spec is malformed: {wrong}"
    if _as_map(spec.get("os")).get("name") == "windows":
        return "Windows pods are not supported"
    if any(_as_map(ct).get("name") == c.INIT_CONTAINER_NAME for ct in _as_list(spec["containers"])):
        return f"an app container is named {c.INIT_CONTAINER_NAME!r}"
    for volume in _as_list(spec.get("volumes")):
        if _as_map(volume).get("name") == c.VOLUME_NAME and "emptyDir" not in _as_map(volume):
            return f"a volume named {c.VOLUME_NAME!r} already exists and is not an emptyDir"
    return None


def inject(
    obj: Mapping[str, Any],
    settings: InjectionSettings,
    namespace_annotations: Mapping[str, str] | None = None,
) -> MutationResult:
    """Inject the Lumigo layer into a Pod or a workload's pod template.

    Returns a deep copy of `obj`, mutated only when the pod asks for injection (see
    `wants_injection`), is not injected yet, and has at least one injectable container.
    An object already injected with the same layer version comes back unchanged; one injected
    with another version is re-injected (upgrade). Never raises on odd input: the reason
    says why nothing was done.
    """
    out: dict[str, Any] = plain_copy(obj)
    site = _locate(out)
    if isinstance(site, str):
        return MutationResult(out, False, f"skipped: {site}")
    annotations = _effective_annotations(site)
    pod_meta = _as_map(site.holder.get("metadata"))
    if not wants_injection(
        {"annotations": annotations}, namespace_annotations, settings.inject_all
    ):
        value = _annotation(annotations, c.ANNOTATION_INJECT)
        if value is not None:
            why = f"annotation {c.ANNOTATION_INJECT}={value!r}"
        elif (ns_value := _inject_value(namespace_annotations)) is not None:
            why = f"namespace annotation {c.ANNOTATION_INJECT}={ns_value!r}"
        else:
            why = f"no {c.ANNOTATION_INJECT} annotation"
        return MutationResult(out, False, f"skipped: {why}")
    if is_injected(pod_meta):
        version = _as_map(pod_meta.get("annotations")).get(c.ANNOTATION_INJECTED)
        if version == settings.layer_version:
            return MutationResult(out, True, f"already injected (layer {version})")
        out = uninject(out)
        site = _locate(out)
        assert not isinstance(site, str)
    return _inject_site(out, site, annotations, settings)


def _inject_site(
    out: dict[str, Any], site: _Site, annotations: Mapping[str, Any], settings: InjectionSettings
) -> MutationResult:
    spec: dict[str, Any] = site.holder["spec"]
    blocker = _pod_blocker(site.holder)
    if blocker:
        return MutationResult(out, False, f"skipped: {blocker}", (blocker,))
    options = _options(site, annotations, settings)
    warnings = options.warnings
    targets = _select_containers(spec["containers"], options, warnings)
    if not targets:
        return MutationResult(out, False, "skipped: no container can be injected", tuple(warnings))

    state: dict[str, Any] = {"v": _STATE_VERSION, "created": [], "containers": {}}
    meta: dict[str, Any] = _ensure(site.holder, "metadata", dict, state["created"])
    _ensure(meta, "annotations", dict, state["created"])

    _step_volume(spec, settings, state)
    _step_init_container(spec, settings, state)
    for container in targets:
        record: dict[str, Any] = {"created": [], "added": [], "changed": {}}
        _step_mount(container, record)
        _step_env(container, options, settings, record, warnings)
        state["containers"][container["name"]] = {k: v for k, v in record.items() if v}

    meta["annotations"][c.ANNOTATION_INJECTED] = settings.layer_version
    meta["annotations"][c.ANNOTATION_INJECTION_STATE] = json.dumps(
        state, separators=(",", ":"), sort_keys=True
    )
    names = ", ".join(str(ct["name"]) for ct in targets)
    return MutationResult(out, True, f"injected containers: {names}", tuple(warnings))


def _remove_named(items: list[Any], name: str) -> None:
    for index in range(len(items) - 1, -1, -1):
        if _as_map(items[index]).get("name") == name:
            del items[index]
            return


def _drop_if_created(holder: MutableMapping[str, Any], key: str, created: list[str]) -> None:
    """Undo `_ensure`: remove (or null again) a list or map `inject` created, if still empty."""
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
        for name, original in _as_map(record.get("changed")).items():
            index = _last_index(env, name)
            if index is not None:
                env[index] = plain_copy(original)
    mounts = container.get("volumeMounts")
    if record.get("mount") and isinstance(mounts, list):
        for index in range(len(mounts) - 1, -1, -1):
            mount = _as_map(mounts[index])
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
    site = _locate(out)
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
    created = list(_as_list(state.get("created")))
    spec: dict[str, Any] = site.holder["spec"]
    for container in _as_list(spec.get("containers")):
        if not isinstance(container, dict):
            continue
        record = _as_map(_as_map(state.get("containers")).get(str(container.get("name"))))
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
    ours = {c.ENV_TRACER_TOKEN} | {var for _, var, _ in _DOWNWARD_FIELDS}
    containers: dict[str, Any] = {}
    for container in _as_list(spec.get("containers")):
        container = _as_map(container)
        added: list[str] = []
        changed: dict[str, Any] = {}
        for entry in _as_list(container.get("env")):
            entry = _as_map(entry)
            name, value = entry.get("name"), _literal(entry)
            if name in ours:
                added.append(str(name))
            elif value is None:
                continue
            elif name == c.ENV_PYTHONPATH:
                original = _strip_prefix(value, c.BOOTSTRAP_PATH, ":")
                _guess_one(entry, value, original, added, changed)
            elif name == c.ENV_AUTOWRAPT_BOOTSTRAP:
                original = _strip_suffix(value, c.AUTOWRAPT_ENTRY_POINT, ",")
                _guess_one(entry, value, original, added, changed)
            elif name == c.ENV_RESOURCE_ATTRIBUTES:
                kept = [p for p in value.split(",") if "$(LUMIGO_K8S_" not in p]
                _guess_one(entry, value, ",".join(kept) if kept else None, added, changed)
        containers[str(container.get("name"))] = {"added": added, "changed": changed, "mount": True}
    return {"containers": containers, "volume": True, "initContainer": True, "created": []}


def _strip_prefix(value: str, ours: str, separator: str) -> str | None:
    if value == ours:
        return None
    return value[len(ours) + 1 :] if value.startswith(ours + separator) else value


def _strip_suffix(value: str, ours: str, separator: str) -> str | None:
    if value == ours:
        return None
    return value[: -len(ours) - 1] if value.endswith(separator + ours) else value


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
