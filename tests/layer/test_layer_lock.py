"""A layer you can reproduce and audit: every package set comes from a lock kept in the
repository (hashes required), two builds of one commit are identical file for file, and the
layer carries a CycloneDX SBOM that lists what each set holds."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from lumigo_injector.layer.build import build_layer, default_distro_source, host_arch
from lumigo_injector.layer.locks import (
    LOCK_COMMAND,
    check_lock,
    declared_requirements,
    input_sha256,
    lock_path,
    read_lock,
    stale_reason,
)
from lumigo_injector.layer.manifest import ARCHES, PLATFORMS, SUPPORTED_PYTHONS
from lumigo_injector.layer.sbom import SBOM_NAME
from lumigo_injector.layer.sets import LayerBuildError, marker_environment

COMBOS = [(v, p, a) for p in PLATFORMS for a in ARCHES for v in SUPPORTED_PYTHONS]
_HASHED_PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)",
    re.M,
)


@pytest.mark.parametrize(("python", "platform", "arch"), COMBOS)
def test_every_set_has_a_current_lock(python: str, platform: str, arch: str) -> None:
    """Fails when the distro's declared dependencies no longer match the locks: run
    `uv run --frozen lumigo-injector lock-layer` and commit the locks."""
    declared = declared_requirements(default_distro_source())
    lock = check_lock(python, platform, arch, declared, marker_environment(python, arch))
    text = lock.path.read_text()
    hashed = {m.group(1).lower(): m.group(3).count("--hash") for m in _HASHED_PIN.finditer(text)}
    assert len(hashed) == len(lock.pins) >= len(declared), "every pin carries its hashes"


def _lock_copy(tmp_path: Path, python: str, platform: str, arch: str) -> Path:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(exist_ok=True)
    shutil.copy(lock_path(python, platform, arch), lock_path(python, platform, arch, lock_dir))
    return lock_dir


def test_a_changed_dependency_makes_the_lock_stale() -> None:
    declared = declared_requirements(default_distro_source())
    lock = read_lock(lock_path("3.12", "glibc", "amd64"))
    env = marker_environment("3.12", "amd64")
    assert stale_reason(lock, declared, env) is None
    assert "changed" in str(stale_reason(lock, [*declared, "httpx>=0.27"], env))
    # a lock whose recorded input matches but whose pin no longer satisfies it
    wrapt = next(line for line in declared if line.startswith("wrapt"))
    tightened = [line for line in declared if line != wrapt] + ["wrapt>=99"]
    forged = lock.__class__(lock.path, input_sha256(tightened), lock.pins, lock.sha256)
    assert "does not satisfy >=99" in str(stale_reason(forged, tightened, env))


def test_the_build_refuses_a_stale_lock(tmp_path: Path) -> None:
    lock_dir = _lock_copy(tmp_path, "3.12", "glibc", host_arch())
    path = lock_path("3.12", "glibc", host_arch(), lock_dir)
    path.write_text(path.read_text().replace("# lumigo-input-sha256: ", "# lumigo-input-sha256: 0"))
    with pytest.raises(LayerBuildError, match=re.escape(LOCK_COMMAND)):
        build_layer(tmp_path / "layer", ["3.12"], "glibc", host_arch(), lock_dir=lock_dir)
    assert not (tmp_path / "layer").exists()


@pytest.mark.slow
def test_pip_refuses_a_file_whose_hash_is_not_in_the_lock(tmp_path: Path) -> None:
    lock_dir = _lock_copy(tmp_path, "3.12", "glibc", host_arch())
    path = lock_path("3.12", "glibc", host_arch(), lock_dir)
    text = path.read_text()
    block = re.search(r"^wrapt==.*\n(?:    .*\n)+", text, re.M)
    assert block is not None and block.group(0).count("--hash") > 1
    tampered = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, block.group(0))
    path.write_text(text.replace(block.group(0), tampered))
    with pytest.raises(LayerBuildError, match=r"(?i)hash"):
        build_layer(tmp_path / "layer", ["3.12"], "glibc", host_arch(), lock_dir=lock_dir)


def _tree(root: Path) -> dict[str, Any]:
    """Every path under `root`: type, mode, mtime, content, and which paths share an inode."""
    entries: dict[str, Any] = {}
    inodes: dict[int, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder, name)
            info = path.lstat()
            rel = str(path.relative_to(root))
            entry: dict[str, Any] = {"mode": stat.filemode(info.st_mode), "mtime": info.st_mtime}
            if stat.S_ISREG(info.st_mode):
                entry["bytes"] = path.read_bytes()
                entry["linked_to"] = inodes.setdefault(info.st_ino, rel)
            elif stat.S_ISLNK(info.st_mode):
                entry["target"] = os.readlink(path)
            entries[rel] = entry
    return entries


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One set built twice from scratch (no set cache), as two CI runs of one commit would."""
    out = tmp_path_factory.mktemp("repro")
    arch = host_arch()
    first = out / "first"
    second = out / "second"
    build_layer(first, ["3.11"], "glibc", arch)
    build_layer(second, ["3.11"], "glibc", arch)
    return first, second


@pytest.mark.slow
def test_two_builds_of_one_commit_are_identical(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    a, b = _tree(first), _tree(second)
    assert sorted(a) == sorted(b)
    differing = [path for path in a if a[path] != b[path]]
    assert not differing, f"differ between builds: {differing[:20]}"
    assert any(path.endswith(".pyc") for path in a), "bytecode is part of the comparison"
    assert (first / "manifest.json").read_bytes() == (second / "manifest.json").read_bytes()
    assert (first / SBOM_NAME).read_bytes() == (second / SBOM_NAME).read_bytes()


@pytest.mark.slow
def test_the_sbom_lists_every_installed_distribution(two_builds: tuple[Path, Path]) -> None:
    layer, _ = two_builds
    manifest = json.loads((layer / "manifest.json").read_text())
    sbom = json.loads((layer / SBOM_NAME).read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert sbom["metadata"]["component"]["name"] == "lumigo-otel-python-layer"
    (pset,) = manifest["sets"]
    name = pset["name"]
    lock_text = lock_path(pset["python"], pset["platform"], pset["arch"]).read_text()
    listed = {}
    for component in sbom["components"]:
        props = {p["name"]: p["value"] for p in component["properties"]}
        assert props["lumigo:package-set"] == name
        (digest,) = [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]
        assert component["purl"] == f"pkg:pypi/{component['name']}@{component['version']}"
        assert props["lumigo:wheel"].endswith(".whl")
        if component["name"] != "lumigo-opentelemetry":
            assert f"--hash=sha256:{digest}" in lock_text, component["name"]
        listed[component["name"]] = component["version"]
    installed = {
        d.name.split("-")[0].lower().replace("_", "-"): d.name
        for d in (layer / name).glob("*.dist-info")
    }
    assert len(listed) == len(installed) == len(pset["dists"])
    assert listed == {k.replace("_", "-"): v for k, v in pset["dists"].items()}
    # and the set's dists are exactly the lock's pins plus the distro itself
    pins = read_lock(lock_path(pset["python"], pset["platform"], pset["arch"])).pins
    assert {k: v for k, v in listed.items() if k != "lumigo-opentelemetry"} == pins
