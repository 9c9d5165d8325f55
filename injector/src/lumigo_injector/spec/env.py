"""Environment variables the injection sets by merging with the app's own values.

`PYTHONPATH` gets our bootstrap directory first, `AUTOWRAPT_BOOTSTRAP` gets our entry point
last, `OTEL_RESOURCE_ATTRIBUTES` gets our attributes for keys the app does not set. Each merge
keeps the app's value verbatim and is idempotent; each has an inverse that takes our part
out again. Kubernetes and ECS both merge through these functions, and both take the
per-container variables (`LUMIGO_CONTAINER_NAME`, `LUMIGO_ENABLE_LOGS`) from
`container_variables`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lumigo_injector.spec.names import (
    AUTOWRAPT_ENTRY_POINT,
    BOOTSTRAP_PATH,
    ENV_AUTOWRAPT_BOOTSTRAP,
    ENV_CONTAINER_NAME,
    ENV_ENABLE_LOGS,
    ENV_PYTHONPATH,
    MOUNT_PATH,
)

#: Variables we extend rather than set: a value the injector cannot read (a Kubernetes
#: `valueFrom`, an ECS secret) blocks the container.
EXTENDED_VARIABLES = (ENV_PYTHONPATH, ENV_AUTOWRAPT_BOOTSTRAP)


def last_index(entries: Sequence[Any], name: str) -> int | None:
    """Index of the effective (last) `{"name": name, ...}` entry, if any.

    The last definition wins both in a Kubernetes `env` list and in an ECS `environment`.
    """
    names = [
        entry.get("name") if type(entry) is dict or isinstance(entry, Mapping) else None
        for entry in entries
    ]
    if name not in names:  # the common case, at C speed
        return None
    names.reverse()
    return len(names) - 1 - names.index(name)


def merged_pythonpath(existing: str) -> str:
    """Our bootstrap directory first, then the user's entries (unchanged if already first)."""
    if existing.split(":", 1)[0] == BOOTSTRAP_PATH:
        return existing
    return f"{BOOTSTRAP_PATH}:{existing}" if existing else BOOTSTRAP_PATH


def merged_autowrapt(existing: str) -> str:
    """The user's comma list of autowrapt bootstraps, verbatim, with ours appended (once)."""
    if not existing.strip():  # (then it cannot hold ours either)
        return AUTOWRAPT_ENTRY_POINT
    if AUTOWRAPT_ENTRY_POINT in [e.strip() for e in existing.split(",")]:
        return existing
    separator = "" if existing.rstrip().endswith(",") else ","
    return f"{existing}{separator}{AUTOWRAPT_ENTRY_POINT}"


def pythonpath_without_ours(value: str) -> str | None:
    """`value` without our leading bootstrap directory; None when nothing else is left."""
    if value == BOOTSTRAP_PATH:
        return None
    prefix = BOOTSTRAP_PATH + ":"
    return value[len(prefix) :] if value.startswith(prefix) else value


def autowrapt_without_ours(value: str) -> str | None:
    """`value` without our trailing entry point; None when nothing else is left."""
    if value.strip() == AUTOWRAPT_ENTRY_POINT:
        return None
    suffix = "," + AUTOWRAPT_ENTRY_POINT
    return value[: -len(suffix)] if value.endswith(suffix) else value


#: The merge of each extended variable, and its inverse.
MERGES = {ENV_PYTHONPATH: merged_pythonpath, ENV_AUTOWRAPT_BOOTSTRAP: merged_autowrapt}
UNMERGES = {
    ENV_PYTHONPATH: pythonpath_without_ours,
    ENV_AUTOWRAPT_BOOTSTRAP: autowrapt_without_ours,
}


def container_variables(container_name: str, enable_logs: bool) -> list[tuple[str, str]]:
    """Variables each injected container gets unless it sets them itself (then its own value
    stays): its name as `LUMIGO_CONTAINER_NAME`, and `LUMIGO_ENABLE_LOGS=true` when asked."""
    variables = [(ENV_CONTAINER_NAME, container_name)]
    if enable_logs:
        variables.append((ENV_ENABLE_LOGS, "true"))
    return variables


def escape_reference(value: str) -> str:
    """A literal for a Kubernetes env value: `$` doubled so the kubelet does not expand `$(...)`."""
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
    keys = attribute_keys(existing) if existing else set()
    extra = ",".join([f"{k}={v}" for k, v in ours if k not in keys])
    if not extra:
        return existing
    head = existing.rstrip()
    if not head.strip():
        return extra
    return f"{head}{extra}" if head.endswith(",") else f"{head},{extra}"


def mount_conflict(path: str) -> str | None:
    """Why a container already mounting `path` cannot take the layer's volume, or None."""
    path = path.rstrip("/")
    if path == MOUNT_PATH or path.startswith(MOUNT_PATH + "/"):
        return f"it already mounts something at {path}"
    return None
