"""The layer's software bill of materials: CycloneDX 1.6 JSON, `sbom.cdx.json` next to the
manifest, written with cyclonedx-python-lib.

One component per distribution per package set (bom-ref `<set>/<name>@<version>`), with its
version, package URL, the SHA-256 of the very wheel pip installed, and the set and lock it
belongs to as properties. The document is a function of the build's inputs alone: its serial
number is derived from them and its timestamp is SOURCE_DATE_EPOCH (else 1980-01-01), so two
builds of one commit write the same bytes.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from lumigo_injector.layer.locks import Lock
from lumigo_injector.layer.manifest import LayerManifest
from lumigo_injector.layer.sets import InstalledDist

SBOM_NAME = "sbom.cdx.json"
LAYER_COMPONENT = "lumigo-otel-python-layer"
_NAMESPACE = uuid.UUID("5b0a3d44-8f3e-4c55-9a53-6c1d2f0e7a11")  # ours, for uuid5


def _timestamp() -> dt.datetime:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or 315532800)
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)


def layer_sbom(
    manifest: LayerManifest,
    installed: Mapping[str, Sequence[InstalledDist]],
    locks: Mapping[str, Lock],
) -> str:
    """The CycloneDX JSON text for a layer whose sets hold `installed` (by set name)."""
    root = Component(
        name=LAYER_COMPONENT,
        version=manifest.layer_version,
        type=ComponentType.FRAMEWORK,
        bom_ref=LAYER_COMPONENT,
        properties=[
            Property(name="lumigo:distro-source-sha256", value=manifest.distro_source_hash)
        ],
    )
    components = []
    for set_name in sorted(installed):
        for dist in installed[set_name]:
            components.append(
                Component(
                    name=dist.name,
                    version=dist.version,
                    type=ComponentType.LIBRARY,
                    bom_ref=f"{set_name}/{dist.name}@{dist.version}",
                    purl=PackageURL(type="pypi", name=dist.name, version=dist.version),
                    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=dist.sha256)],
                    properties=[
                        Property(name="lumigo:package-set", value=set_name),
                        Property(name="lumigo:wheel", value=dist.file),
                        Property(name="lumigo:lock-sha256", value=locks[set_name].sha256),
                    ],
                )
            )
    seed = "|".join(
        [manifest.layer_version, manifest.distro_source_hash]
        + [f"{c.bom_ref.value}={c.hashes[0].content}" for c in components]
    )
    bom = Bom(
        components=components,
        serial_number=uuid.uuid5(_NAMESPACE, seed),
        metadata=BomMetaData(component=root, timestamp=_timestamp()),
    )
    bom.register_dependency(root, components)
    return str(JsonV1Dot6(bom).output_as_string(indent=2)) + "\n"
