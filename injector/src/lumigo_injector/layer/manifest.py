"""The layer's data model: package set names, the manifest and the per-set requirement file.

Pure: no I/O beyond (de)serialising strings. The bootstrap (`bootstrap/sitecustomize.py`)
reads the per-set file written by `set_requirements_text`, so its format is kept trivial:
one record per line, fields separated by spaces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SUPPORTED_PYTHONS: tuple[str, ...] = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
PLATFORMS: tuple[str, ...] = ("glibc", "musl")
ARCHES: tuple[str, ...] = ("amd64", "arm64")
MANIFEST_FORMAT = 1

MANIFEST_NAME = "manifest.json"
SET_FILE = "lumigo-set.txt"  # inside each set directory; read by the bootstrap
SHARED_DIR = "shared"
BOOTSTRAP_DIR = "bootstrap"
BOOTSTRAP_IMPL_DIR = "bootstrap-impl"
COPY_SCRIPT = "copy-layer.sh"
ROOT_DIST = "lumigo-opentelemetry"

_MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}


def machine_for(arch: str) -> str:
    """The `platform.machine()` spelling of an image architecture (amd64 -> x86_64)."""
    return _MACHINE[arch]


def set_name(python: str, platform: str, arch: str) -> str:
    """Directory name of a package set, e.g. `py3.11-glibc-amd64`."""
    return f"py{python}-{platform}-{arch}"


def pip_platform_tags(platform: str, arch: str) -> list[str]:
    """Wheel platform tags pip may pick for a set (oldest libc first wins broad support)."""
    machine = machine_for(arch)
    if platform == "glibc":
        # manylinux_2_17 == manylinux2014: CentOS 7, Amazon Linux 2 and anything newer
        return [f"manylinux_2_17_{machine}", f"manylinux2014_{machine}"]
    if platform == "musl":
        return [f"musllinux_1_2_{machine}", f"musllinux_1_1_{machine}"]
    raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")


def validate_python(version: str) -> str:
    """Check a `3.X` version string; raises ValueError with the supported list otherwise."""
    if version not in SUPPORTED_PYTHONS:
        raise ValueError(
            f"unsupported Python {version!r}; expected one of {', '.join(SUPPORTED_PYTHONS)}"
        )
    return version


@dataclass(frozen=True)
class Requirement:
    """`name` must satisfy `specifier` ("" = any version) because `required_by` says so."""

    name: str
    specifier: str
    required_by: str


@dataclass(frozen=True)
class PackageSet:
    """One interpreter's packages inside the layer."""

    name: str
    python: str
    platform: str
    arch: str
    dists: dict[str, str]  # normalised distribution name -> version
    requires: tuple[Requirement, ...]
    min_glibc: str | None = None
    pth_files: tuple[str, ...] = ()
    bytecode: bool = False  # precompiled .pyc shipped for this set's Python
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class LayerManifest:
    """What a built layer holds; stored as `manifest.json` at the layer's root."""

    layer_version: str
    distro_version: str
    distro_source_hash: str
    sets: tuple[PackageSet, ...]
    shared_files: int = 0
    shared_bytes: int = 0
    disk_bytes: int = 0  # every distinct file counted once (hard links share storage)
    naive_bytes: int = 0  # what the sets would take without sharing
    format: int = MANIFEST_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise (stable key order, human-readable)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LayerManifest:
        """Parse what `to_json` wrote; raises ValueError on a different format."""
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unsupported layer manifest format {data.get('format')!r}")
        sets = tuple(_package_set(item) for item in data.pop("sets"))
        return cls(sets=sets, **data)

    def set_named(self, name: str) -> PackageSet:
        """The set called `name`; KeyError if the layer has none."""
        for pset in self.sets:
            if pset.name == name:
                return pset
        raise KeyError(name)

    def summary_table(self) -> str:
        """A plain-text table: one row per set, then the totals."""
        rows = [
            ("set", "lumigo_opentelemetry", "opentelemetry-sdk", "protobuf", "pyc", "files", "MB")
        ]
        for pset in self.sets:
            rows.append(
                (
                    pset.name,
                    pset.dists.get(ROOT_DIST, "?"),
                    pset.dists.get("opentelemetry-sdk", "-"),
                    pset.dists.get("protobuf", "-"),
                    "yes" if pset.bytecode else "no",
                    str(pset.files),
                    _mb(pset.bytes),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        lines.append(
            f"shared: {self.shared_files} files, {_mb(self.shared_bytes)} MB; "
            f"on disk: {_mb(self.disk_bytes)} MB (without sharing: {_mb(self.naive_bytes)} MB)"
        )
        return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f}"


def _package_set(data: Mapping[str, Any]) -> PackageSet:
    fields = dict(data)
    fields["requires"] = tuple(Requirement(**req) for req in fields.get("requires", ()))
    fields["pth_files"] = tuple(fields.get("pth_files", ()))
    return PackageSet(**fields)


def set_requirements_text(pset: PackageSet) -> str:
    """The per-set file the bootstrap reads (see `read_set_requirements` there)."""
    lines = [f"# {pset.name}: written by lumigo-injector build-layer, read at start-up"]
    if pset.min_glibc:
        lines.append(f"glibc {pset.min_glibc}")
    for name in sorted(pset.dists):
        lines.append(f"dist {name} {pset.dists[name]}")
    for req in sorted(pset.requires, key=lambda r: (r.name, r.required_by, r.specifier)):
        spec = req.specifier.replace(" ", "") or "*"
        lines.append(f"req {req.name} {spec} {req.required_by}")
    lines.extend(f"pth {name}" for name in pset.pth_files)
    return "\n".join(lines) + "\n"
