"""The distro's OpenTelemetry resource: SDK defaults and env, process, ECS, Kubernetes.

Precedence: what the user sets (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`) wins over
what the distro detects; `telemetry.sdk.*` comes from the SDK. Kubernetes attributes
(`k8s.*`, set by the injector in `OTEL_RESOURCE_ATTRIBUTES`) therefore arrive unchanged.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, Mapping, Optional

from lumigo_opentelemetry.config import Config
from lumigo_opentelemetry.resources.ecs import ecs_attributes
from lumigo_opentelemetry.resources.process import process_attributes
from lumigo_opentelemetry.version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

DISTRO_VERSION_ATTRIBUTE = "lumigo.distro.version"
TAG_ATTRIBUTE = "lumigo.tag"
CONTAINER_NAME_ATTRIBUTE = "k8s.container.name"


def detected_attributes(
    config: Config, environ: Optional[Mapping[str, str]] = None
) -> Dict[str, object]:
    """Everything the distro detects itself (process, ECS, its own version) and the
    LUMIGO_TAG / LUMIGO_CONTAINER_NAME settings."""
    env = os.environ if environ is None else environ
    attributes: Dict[str, object] = {DISTRO_VERSION_ATTRIBUTE: __version__}
    if config.tag:
        attributes[TAG_ATTRIBUTE] = config.tag
    if config.container_name:
        attributes[CONTAINER_NAME_ATTRIBUTE] = config.container_name
    attributes.update(process_attributes(config.masking, env))
    attributes.update(ecs_attributes(env))
    return attributes


def build_resource(config: Config, environ: Optional[Mapping[str, str]] = None) -> Resource:
    """The resource every span carries."""
    from opentelemetry.sdk.resources import Resource

    detected = Resource(detected_attributes(config, environ))  # type: ignore[arg-type]
    return detected.merge(Resource.create({}))
