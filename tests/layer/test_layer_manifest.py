"""The layer's data model, the pip command line, argument checks and the copy's guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumigo_injector.cli import main
from lumigo_injector.layer import (
    LayerCopyError,
    LayerManifest,
    PackageSet,
    Requirement,
    build_layer,
    copy_layer,
)
from lumigo_injector.layer.manifest import pip_platform_tags
from lumigo_injector.layer.sets import pip_install_command, relax_lockstep_pin


def _manifest() -> LayerManifest:
    pset = PackageSet(
        name="py3.9-musl-arm64", python="3.9", platform="musl", arch="arm64",
        dists={"lumigo-opentelemetry": "0.1.0", "opentelemetry-sdk": "1.41.1"},
        requires=(Requirement("opentelemetry-api", ">=1.25,<2", "lumigo-opentelemetry"),),
        files=10, bytes=2_500_000,
    )  # fmt: skip
    return LayerManifest(
        layer_version="0.1.0", distro_version="0.1.0", distro_source_hash="ab" * 32,
        sets=(pset,), shared_files=3, shared_bytes=1_000_000, disk_bytes=2_000_000,
        naive_bytes=2_500_000,
    )  # fmt: skip


def test_manifest_json_round_trip() -> None:
    manifest = _manifest()
    assert LayerManifest.from_json(manifest.to_json()) == manifest
    assert manifest.set_named("py3.9-musl-arm64").dists["opentelemetry-sdk"] == "1.41.1"
    with pytest.raises(KeyError):
        manifest.set_named("py3.8-musl-arm64")


def test_manifest_of_another_format_is_refused() -> None:
    data = json.loads(_manifest().to_json())
    data["format"] = 99
    with pytest.raises(ValueError, match="format 99"):
        LayerManifest.from_json(json.dumps(data))


def test_summary_table_has_one_row_per_set_and_totals() -> None:
    lines = _manifest().summary_table().splitlines()
    assert lines[0].split()[:2] == ["set", "lumigo_opentelemetry"]
    assert lines[2].split() == ["py3.9-musl-arm64", "0.1.0", "1.41.1", "-", "no", "10", "2.5"]
    assert lines[-1] == "shared: 3 files, 1.0 MB; on disk: 2.0 MB (without sharing: 2.5 MB)"


def test_pip_command_is_a_cross_target_binary_only_hashed_install() -> None:
    command = pip_install_command(
        [Path("lock.txt"), Path("distro.txt")], Path("/t"), "3.10", "musl", "arm64"
    )
    joined = " ".join(command)
    assert "--target /t --python-version 3.10 --implementation cp --only-binary=:all:" in joined
    assert {"--no-compile", "--no-deps", "--require-hashes"} <= set(command)
    assert joined.endswith("-r lock.txt -r distro.txt")
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64"]
    assert pip_platform_tags("glibc", "amd64")[0] == "manylinux_2_17_x86_64"


@pytest.mark.parametrize(
    ("name", "by", "spec", "relaxed"),
    [
        ("opentelemetry-api", "opentelemetry-sdk", "==1.45.1", ">=1.45.1,==1.45.*"),
        ("opentelemetry-api", "lumigo-opentelemetry", "==1.45.1", "==1.45.1"),
        ("opentelemetry-sdk", "opentelemetry-exporter-otlp", "==1.45.1", "==1.45.1"),
        ("opentelemetry-api", "opentelemetry-sdk", "~=1.12", "~=1.12"),
        ("opentelemetry-api", "opentelemetry-sdk", "==1.45.0rc1", "==1.45.0rc1"),
    ],
)
def test_only_lockstep_api_pins_are_relaxed(name: str, by: str, spec: str, relaxed: str) -> None:
    assert relax_lockstep_pin(name, by, spec) == relaxed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pythons": ["3.8"]}, "unsupported Python '3.8'"),
        ({"pythons": []}, "no Python version"),
        ({"platform": "windows"}, "unknown platform"),
        ({"arch": ["amd64", "s390x"]}, "unknown arch"),
    ],
)
def test_build_layer_rejects_bad_parameters(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_layer(tmp_path / "out", **kwargs)  # type: ignore[arg-type]


def test_build_layer_refuses_to_replace_a_non_layer(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    code = main(["build-layer", "--out", str(tmp_path), "--python", "3.11"])
    assert code == 1
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_copy_refuses_what_is_not_a_layer(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(LayerCopyError, match="not a built layer"):
        copy_layer(tmp_path / "src", tmp_path / "dest")
    assert main(["copy-layer", str(tmp_path / "src"), str(tmp_path / "dest")]) == 1
    assert not (tmp_path / "dest").exists()
