"""The built layer, its copy step and the Dockerfile that ships them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumigo_injector.layer import (
    SUPPORTED_PYTHONS,
    LayerManifest,
    build_layer,
    cache_root,
    copy_layer,
    set_name,
)
from lumigo_injector.layer.build import host_arch
from tests.helpers.layer_apps import LAYER_PLATFORMS, layer_for_tests
from tests.helpers.need import executable

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SIZE_TARGET = 60_000_000  # bytes on disk for the six glibc sets of one architecture


@pytest.fixture(scope="module")
def layer() -> Path:
    return layer_for_tests()


@pytest.fixture(scope="module")
def manifest(layer: Path) -> LayerManifest:
    return LayerManifest.from_json((layer / "manifest.json").read_text())


def _files(root: Path) -> Iterator[Path]:
    for folder, _dirs, names in os.walk(root):
        for name in names:
            yield Path(folder, name)


def _unique_bytes(roots: list[Path]) -> int:
    seen: dict[tuple[int, int], int] = {}
    for root in roots:
        for path in _files(root):
            info = path.lstat()
            seen[(info.st_dev, info.st_ino)] = info.st_size
    return sum(seen.values())


def _shape(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, index of its hard-link group), comparable between copies."""
    groups: dict[tuple[int, int], int] = {}
    shape = {}
    for path in sorted(_files(root)):
        info = path.lstat()
        group = groups.setdefault((info.st_dev, info.st_ino), len(groups))
        shape[str(path.relative_to(root))] = (info.st_size, group)
    return shape


def test_a_set_for_every_python_libc_and_arch(layer: Path, manifest: LayerManifest) -> None:
    arch = host_arch()
    expected = {set_name(v, p, arch) for v in SUPPORTED_PYTHONS for p in LAYER_PLATFORMS}
    assert {s.name for s in manifest.sets} == expected
    for pset in manifest.sets:
        assert pset.dists["lumigo-opentelemetry"] == manifest.distro_version
        assert {"opentelemetry-sdk", "opentelemetry-api", "wrapt", "autowrapt"} <= set(pset.dists)
        assert (layer / pset.name / "lumigo-set.txt").read_text().startswith(f"# {pset.name}")
        assert (pset.min_glibc is not None) is (pset.platform == "glibc")
    table = manifest.summary_table()
    assert all(name in table for name in expected)


def test_sets_carry_nothing_written_for_the_build_machine(
    layer: Path, manifest: LayerManifest
) -> None:
    for pset in manifest.sets:
        pset_dir = layer / pset.name
        assert not (pset_dir / "bin").exists()
        assert not list(pset_dir.glob("*.pth")), "autowrapt's .pth must not ship"
        tag = "cpython-" + pset.python.replace(".", "")
        pyc = list(pset_dir.rglob("*.pyc"))
        assert all(f".{tag}." in p.name for p in pyc), "bytecode of another Python"
        assert bool(pyc) is pset.bytecode
    # the interpreters this machine has get bytecode; a missing one only costs start-up time
    assert [s.bytecode for s in manifest.sets if s.python == "3.11"] == [True, True]
    # a file where Python would create its cache directory: no bytecode is ever written
    assert (layer / "bootstrap" / "__pycache__").is_file()


def test_glibc_sets_share_files_and_fit_the_size_target(
    layer: Path, manifest: LayerManifest
) -> None:
    glibc = [layer / s.name for s in manifest.sets if s.platform == "glibc"]
    assert len(glibc) == len(SUPPORTED_PYTHONS)
    on_disk = _unique_bytes(glibc)
    assert on_disk < SIZE_TARGET
    # bytecode is per Python; everything else is shared: six sets cost about two
    sources = [p for root in glibc for p in _files(root) if p.suffix != ".pyc"]
    naive_sources = sum(p.lstat().st_size for p in sources)
    unique_sources = sum({(p.lstat().st_ino): p.lstat().st_size for p in sources}.values())
    assert unique_sources < naive_sources / 2.5
    assert manifest.disk_bytes == _unique_bytes([layer / s.name for s in manifest.sets])


def test_builds_arm64_sets_on_any_machine(tmp_path: Path) -> None:
    """pip's cross-target install: an arm64 layer from this (amd64) machine, no emulation."""
    out = tmp_path / "arm64-layer"
    manifest = build_layer(
        out, ["3.12"], ["glibc", "musl"], "arm64",
        set_cache=cache_root() / "sets", bytecode=False,
    )  # fmt: skip
    assert [s.name for s in manifest.sets] == ["py3.12-glibc-arm64", "py3.12-musl-arm64"]
    for pset, libc in zip(manifest.sets, ("gnu", "musl")):
        [extension] = (out / pset.name / "wrapt").glob("_wrappers.*.so")
        assert extension.name == f"_wrappers.cpython-312-aarch64-linux-{libc}.so"
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64


def test_copy_script_and_python_copy_agree_and_keep_hard_links(layer: Path, tmp_path: Path) -> None:
    by_script, by_python = tmp_path / "script", tmp_path / "python"
    by_script.mkdir()
    (by_script / "stale-from-an-earlier-copy").write_text("old")
    result = subprocess.run(
        ["/bin/sh", str(layer / "copy-layer.sh"), str(by_script)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"lumigo-otel layer copied to {by_script}"
    copy_layer(layer, by_python)
    assert _shape(by_script) == _shape(by_python) == _shape(layer)
    assert _unique_bytes([by_script]) == _unique_bytes([layer])


def test_copy_replaces_previous_read_only_contents(layer: Path, tmp_path: Path) -> None:
    dest = tmp_path / "volume"
    copy_layer(layer, dest)
    old = dest / "py3.11-glibc-amd64"
    for folder, _dirs, _names in os.walk(dest):
        os.chmod(folder, 0o555)
    os.chmod(dest, 0o755)
    copy_layer(layer, dest)
    assert _shape(dest) == _shape(layer)
    assert old.exists() == (layer / old.name).exists()


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = executable("hadolint")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.strip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    found = []
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def test_dockerfile_project_commands_run_for_real(tmp_path: Path) -> None:
    """Each RUN/ENTRYPOINT step, with image paths mapped into a temporary directory."""
    layer_out, volume = tmp_path / "lumigo-layer", tmp_path / "lumigo-otel"
    mapping = {
        "${TARGETARCH}": host_arch(),
        "/src/distro": str(REPO / "distro"),
        "./distro": str(REPO / "distro"),
        "./injector": str(REPO / "injector"),
        "/lumigo-layer": str(layer_out),
        "/lumigo-otel": str(volume),
    }

    def mapped(text: str) -> str:
        for image_path, local in mapping.items():
            text = text.replace(image_path, local)
        return text

    bin_dir = Path(sys.executable).parent
    steps = _instructions()
    runs = [args for word, args in steps if word == "RUN"]
    assert runs, "the Dockerfile has RUN steps"
    built = False
    for command in runs:
        argv = shlex.split(mapped(command))
        if argv[:2] == ["pip", "install"]:
            # the real install minus dependencies and side effects: both projects build
            argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", *argv[2:]]
        elif argv[0] == "lumigo-injector":
            argv = [str(bin_dir / "lumigo-injector"), *argv[1:]]
            built = built or argv[1] == "build-layer"
        else:
            pytest.fail(f"RUN step without a project command the tests know: {command}")
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert built and (layer_out / "manifest.json").is_file()

    entrypoints = [json.loads(args) for word, args in steps if word == "ENTRYPOINT"]
    cmds = [json.loads(args) for word, args in steps if word == "CMD"]
    init_entry = next(e for e in entrypoints if "copy-layer.sh" in " ".join(e))
    argv = [mapped(part) for part in init_entry + cmds[0]]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (volume / "bootstrap" / "sitecustomize.py").is_file()
    assert _shape(volume) == _shape(layer_out)
    manifest = LayerManifest.from_json((volume / "manifest.json").read_text())
    assert {s.platform for s in manifest.sets} == {"glibc", "musl"}
    assert {s.arch for s in manifest.sets} == {host_arch()}

    injector_entry = next(e for e in entrypoints if e[0] == "lumigo-injector")
    help_run = subprocess.run(
        [str(bin_dir / "lumigo-injector"), *injector_entry[1:], "--help"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert help_run.returncode == 0, help_run.stderr
