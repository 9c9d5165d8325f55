"""The init-container layer: build it, copy it, cache it (see docs/layer.md).

The implementation lives in small modules; this is the public face:
`build_layer` (build), `copy_layer` (copy), `cached_layer` (cache), the package sets (sets)
and the manifest model (manifest). `bootstrap/` is what the layer puts on the app's PYTHONPATH.
"""

from __future__ import annotations

from lumigo_injector.layer.build import build_layer, default_distro_source, host_arch
from lumigo_injector.layer.cache import cache_root, cached_layer
from lumigo_injector.layer.copy import DEFAULT_DESTINATION, LayerCopyError, copy_layer
from lumigo_injector.layer.manifest import (
    ARCHES,
    MANIFEST_NAME,
    PLATFORMS,
    SUPPORTED_PYTHONS,
    LayerManifest,
    PackageSet,
    Requirement,
    set_name,
)
from lumigo_injector.layer.sets import LayerBuildError

__all__ = [
    "ARCHES",
    "DEFAULT_DESTINATION",
    "MANIFEST_NAME",
    "PLATFORMS",
    "SUPPORTED_PYTHONS",
    "LayerBuildError",
    "LayerCopyError",
    "LayerManifest",
    "PackageSet",
    "Requirement",
    "build_layer",
    "cache_root",
    "cached_layer",
    "copy_layer",
    "default_distro_source",
    "host_arch",
    "set_name",
]
