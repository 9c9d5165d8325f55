"""Kubernetes resource attributes.

The injector passes `k8s.*` attributes (and `service.name`) in `OTEL_RESOURCE_ATTRIBUTES`;
the SDK's environment detector reads them, and the distro never overrides them. This module
only names the attributes that arrive that way, for documentation and tests.
"""

from __future__ import annotations

from typing import Dict, Mapping

PASSTHROUGH_PREFIX = "k8s."


def kubernetes_attributes(resource_attributes: Mapping[str, object]) -> Dict[str, object]:
    """The `k8s.*` attributes of a resource (unchanged)."""
    return {k: v for k, v in resource_attributes.items() if k.startswith(PASSTHROUGH_PREFIX)}
