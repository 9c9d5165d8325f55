"""How the layer reaches a pod, and how that choice is made.

Two deliveries: `init-container` (an init container copies the layer from the init image
into an emptyDir) and `image-volume` (the kubelet mounts the init image itself read-only as
a volume, KEP-4639: no copy, no init container, no emptyDir). `auto` picks the image volume
when the API server is Kubernetes 1.35 or newer (image volumes on by default) and the init
container otherwise. The annotation `lumigo.io/delivery` on a pod, else on its namespace,
overrides the operator's choice. Pure: the server version is read by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from lumigo_injector.spec.names import ANNOTATION_DELIVERY

Delivery = Literal["init-container", "image-volume"]
DeliveryChoice = Literal["auto", "init-container", "image-volume"]

INIT_CONTAINER: Final[Delivery] = "init-container"
IMAGE_VOLUME: Final[Delivery] = "image-volume"
AUTO: Final[DeliveryChoice] = "auto"
DELIVERIES: Final[tuple[Delivery, ...]] = (INIT_CONTAINER, IMAGE_VOLUME)
CHOICES: Final[tuple[DeliveryChoice, ...]] = (AUTO, INIT_CONTAINER, IMAGE_VOLUME)

#: The first Kubernetes version with image volumes enabled by default.
IMAGE_VOLUME_SINCE: Final = (1, 35)

_GIT_VERSION = re.compile(r"^v?(\d+)\.(\d+)")
_NUMBER = re.compile(r"^(\d+)")


def parse_choice(text: str) -> DeliveryChoice | None:
    """`auto`, `init-container` or `image-volume` (trimmed, any case); None otherwise."""
    value = text.strip().lower()
    for choice in CHOICES:
        if value == choice:
            return choice
    return None


def server_version(info: Mapping[str, Any]) -> tuple[int, int] | None:
    """(major, minor) of a `/version` answer; None when unreadable.

    `gitVersion` (`v1.35.2-eks-...`) first, else `major`/`minor` (managed clusters may
    write `"35+"`).
    """
    match = _GIT_VERSION.match(str(info.get("gitVersion") or ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    major = _NUMBER.match(str(info.get("major") or ""))
    minor = _NUMBER.match(str(info.get("minor") or ""))
    if major and minor:
        return int(major.group(1)), int(minor.group(1))
    return None


def auto_delivery(version: tuple[int, int] | None) -> Delivery:
    """What `auto` means on a server of this version (unknown: the init container)."""
    if version is not None and version >= IMAGE_VOLUME_SINCE:
        return IMAGE_VOLUME
    return INIT_CONTAINER


def resolve(choice: DeliveryChoice, version: tuple[int, int] | None) -> Delivery:
    """The operator's delivery: the configured one, or `auto` decided by the server version."""
    if choice == AUTO:
        return auto_delivery(version)
    return IMAGE_VOLUME if choice == IMAGE_VOLUME else INIT_CONTAINER


def pod_delivery(
    annotations: Mapping[str, Any],
    namespace_annotations: Mapping[str, Any] | None,
    default: Delivery,
    warnings: list[str],
) -> Delivery:
    """The delivery for one pod: its annotation, else its namespace's, else `default`.

    `auto` on either means the operator's choice (`default`); an unknown value adds a warning
    and is treated as absent.
    """
    for where, source in (("", annotations), ("namespace ", namespace_annotations or {})):
        value = source.get(ANNOTATION_DELIVERY)
        if not isinstance(value, str):
            continue
        choice = parse_choice(value)
        if choice is None:
            warnings.append(
                f"{where}{ANNOTATION_DELIVERY}={value!r} is not one of {', '.join(CHOICES)}; "
                "ignored"
            )
            continue
        return resolve(choice, None) if choice != AUTO else default
    return default
