"""Making one package set: pip's cross-target install, trimming, and reading what it holds.

pip installs `lumigo_opentelemetry` and its dependencies for a Python version and
platform other than the one running pip (`--target --python-version --platform
--only-binary=:all:`), so one build machine makes every set. The dependencies come from the
set's lock (`layer.locks`), installed with hashes required and nothing resolved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PackagingRequirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lumigo_injector.layer.manifest import (
    ROOT_DIST,
    PackageSet,
    Requirement,
    machine_for,
    pip_platform_tags,
    set_name,
)

# Files pip leaves that a set must not carry: console scripts (their shebang points at the
# build machine) and autowrapt's start-up hook (the bootstrap registers the hooks itself).
_DROP_TOP_LEVEL = ("bin", "autowrapt-init.pth", "autowrapt-init.start")
#: What pip installed into a set (name, version, wheel file, sha256), for the SBOM.
INSTALLED_FILE = ".lumigo-installed.json"


class LayerBuildError(RuntimeError):
    """A package set could not be built; the message says which and why."""


def pip_install_command(
    requirements: Sequence[Path],
    target: Path,
    python: str,
    platform: str,
    arch: str,
    report: Path | None = None,
) -> list[str]:
    """The pip command line that fills `target` with the set for (python, platform, arch).

    Nothing is resolved: every distribution comes pinned, with its hashes, from the
    requirement files (the set's lock and the distro wheel), and pip refuses any file
    whose hash is not listed.
    """
    command = [
        sys.executable, "-m", "pip", "install",
        "--target", str(target),
        "--python-version", python,
        "--implementation", "cp",
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
        "--no-compile",
        "--no-warn-script-location",
        "--disable-pip-version-check",
        "--quiet",
    ]  # fmt: skip
    for tag in pip_platform_tags(platform, arch):
        command += ["--platform", tag]
    if report is not None:
        command += ["--report", str(report)]
    for path in requirements:
        command += ["-r", str(path)]
    return command


def wheel_requirement(wheel: Path) -> str:
    """A hash-pinned requirement line for a local wheel."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"{ROOT_DIST} @ {wheel.resolve().as_uri()} --hash=sha256:{digest}"


def install_set(
    wheel: Path, target: Path, python: str, platform: str, arch: str, lock: Path
) -> None:
    """Install the locked set into `target` (created fresh), trim it, record what came in."""
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory(prefix="lumigo-set-") as tmp:
        distro = Path(tmp, "distro.txt")
        distro.write_text(wheel_requirement(wheel) + "\n", encoding="utf-8")
        report = Path(tmp, "report.json")
        command = pip_install_command([lock, distro], target, python, platform, arch, report)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            errors = [
                line
                for line in (result.stderr + result.stdout).splitlines()
                if "is ignored: it is neither a file nor a directory" not in line
                and not line.strip().startswith("Expected     or")  # one per listed hash
            ]
            raise LayerBuildError(
                f"pip could not build {set_name(python, platform, arch)}:\n"
                + "\n".join(errors[-30:])
            )
        installed = installed_from_report(json.loads(report.read_text(encoding="utf-8")))
    trim_set(target)
    (target / INSTALLED_FILE).write_text(
        json.dumps([d.to_json() for d in installed], indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )


@dataclass(frozen=True)
class InstalledDist:
    """One distribution pip installed into a set, and the file it came from."""

    name: str
    version: str
    file: str  # wheel file name
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> InstalledDist:
        return cls(data["name"], data["version"], data["file"], data["sha256"])


def installed_from_report(report: dict[str, Any]) -> list[InstalledDist]:
    """The distributions of a `pip install --report` (sorted by name), without local paths."""
    found = []
    for item in report.get("install", []):
        info = item.get("download_info") or {}
        hashes = (info.get("archive_info") or {}).get("hashes") or {}
        digest = hashes.get("sha256") or ""
        if not digest:
            raise LayerBuildError(f"pip reported no sha256 for {info.get('url')}")
        found.append(
            InstalledDist(
                name=canonicalize_name(item["metadata"]["name"]),
                version=str(item["metadata"]["version"]),
                file=unquote(urlsplit(str(info.get("url", ""))).path.rsplit("/", 1)[-1]),
                sha256=digest,
            )
        )
    return sorted(found, key=lambda d: d.name)


def read_installed(target: Path) -> list[InstalledDist]:
    """What `install_set` recorded for a set."""
    data = json.loads((target / INSTALLED_FILE).read_text(encoding="utf-8"))
    return [InstalledDist.from_json(item) for item in data]


def trim_set(target: Path) -> None:
    """Drop console scripts, autowrapt's .pth hook and any bytecode from a fresh install."""
    for name in _DROP_TOP_LEVEL:
        path = target / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    # pip records where a local wheel came from (a temporary path): not part of the set.
    for direct_url in target.glob("*.dist-info/direct_url.json"):
        direct_url.unlink()
        record = direct_url.parent / "RECORD"
        if record.exists():
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [
                line
                for line in lines
                if not line.startswith(f"{direct_url.parent.name}/direct_url.json,")
            ]
            record.write_text("".join(kept), encoding="utf-8")


# OpenTelemetry's own packages pin `opentelemetry-api==X.Y.Z` (they are released in
# lockstep), and the contrib packages often trail the newest API patch release by days.
# Libraries such as FastAPI depend on the newest `opentelemetry-api`, so an app can hold
# api X.Y.Z+1 while the set's SDK pins X.Y.Z. API patch releases keep the API, so the layer
# accepts the app's api from the same minor series at the pinned patch or newer.
LOCKSTEP_RELAXED = "opentelemetry-api"


def relax_lockstep_pin(name: str, required_by: str, spec: str) -> str:
    """`==X.Y.Z` on opentelemetry-api from an OpenTelemetry package -> `>=X.Y.Z,==X.Y.*`."""
    if name != LOCKSTEP_RELAXED or not required_by.startswith("opentelemetry-"):
        return spec
    if not spec.startswith("==") or "," in spec or "*" in spec:
        return spec
    try:
        pinned = Version(spec[2:])
    except InvalidVersion:
        return spec
    if pinned.is_prerelease or len(pinned.release) < 3 or pinned.local:
        return spec
    return f">={pinned},=={pinned.major}.{pinned.minor}.*"


def marker_environment(python: str, arch: str) -> dict[str, str]:
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": "posix",
        "platform_machine": machine_for(arch),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": "linux",
    }


def _marker_applies(marker: Marker | None, env: dict[str, str], extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": extra}) for extra in (extras or {""}))


def _read_metadata(dist_info: Path) -> tuple[str, str, list[str]]:
    headers = HeaderParser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
    name = canonicalize_name(headers["Name"])
    return name, str(headers["Version"]), headers.get_all("Requires-Dist") or []


def _min_glibc(dist_info: Path) -> tuple[int, int] | None:
    """The oldest glibc one of the wheel's tags accepts (None for pure-Python wheels)."""
    wheel = dist_info / "WHEEL"
    if not wheel.exists():
        return None
    found: list[tuple[int, int]] = []
    for line in wheel.read_text(encoding="utf-8").splitlines():
        if not line.startswith("Tag:"):
            continue
        platform_tag = line.split(":", 1)[1].strip().split("-")[-1]
        for tag in platform_tag.split("."):
            if tag.startswith("manylinux_"):
                major, minor = tag.split("_")[1:3]
                found.append((int(major), int(minor)))
            elif tag.startswith("manylinux2014"):
                found.append((2, 17))
            elif tag.startswith("manylinux2010"):
                found.append((2, 12))
            elif tag.startswith("manylinux1"):
                found.append((2, 5))
    return min(found) if found else None


def read_package_set(target: Path, python: str, platform: str, arch: str) -> PackageSet:
    """What the installed set holds, and every requirement among its distributions.

    Requirements are followed from `lumigo_opentelemetry` with markers evaluated for the
    set's interpreter, so the bootstrap needs no marker logic at start-up.
    """
    metadata: dict[str, tuple[str, list[str]]] = {}
    glibc: list[tuple[int, int]] = []
    for dist_info in sorted(target.glob("*.dist-info")):
        name, version, requires = _read_metadata(dist_info)
        metadata[name] = (version, requires)
        wheel_glibc = _min_glibc(dist_info)
        if wheel_glibc:
            glibc.append(wheel_glibc)
    if ROOT_DIST not in metadata:
        raise LayerBuildError(f"{target}: {ROOT_DIST} is not installed")
    env = marker_environment(python, arch)
    requirements: set[Requirement] = set()
    queue: deque[tuple[str, frozenset[str]]] = deque([(ROOT_DIST, frozenset())])
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        current, extras = queue.popleft()
        if (current, extras) in seen or current not in metadata:
            continue
        seen.add((current, extras))
        for line in metadata[current][1]:
            try:
                req = PackagingRequirement(line)
            except InvalidRequirement as exc:
                raise LayerBuildError(f"{current}: bad requirement {line!r}: {exc}") from exc
            if not _marker_applies(req.marker, env, set(extras)):
                continue
            dep = canonicalize_name(req.name)
            spec = relax_lockstep_pin(dep, current, str(req.specifier).replace(" ", ""))
            requirements.add(Requirement(dep, spec, current))
            queue.append((dep, frozenset(req.extras)))
    missing = sorted({req.name for req in requirements} - set(metadata))
    if missing:
        raise LayerBuildError(f"{target}: pip did not install {', '.join(missing)}")
    files, size = _tree_size(target)
    return PackageSet(
        name=set_name(python, platform, arch),
        python=python,
        platform=platform,
        arch=arch,
        dists={name: version for name, (version, _) in sorted(metadata.items())},
        requires=tuple(sorted(requirements, key=lambda r: (r.name, r.required_by))),
        min_glibc=".".join(map(str, max(glibc))) if glibc and platform == "glibc" else None,
        pth_files=tuple(sorted(p.name for p in target.glob("*.pth"))),
        files=files,
        bytes=size,
    )


def _tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size
