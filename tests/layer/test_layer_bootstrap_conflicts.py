"""The bootstrap abstains when any of the set's requirers rejects an app package.

In a real package set many distributions require the same package (16 require
`opentelemetry-api`); the app's version must satisfy every one of them, not just the first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lumigo_injector.layer.bootstrap import lumigo_bootstrap as boot
from lumigo_injector.layer.manifest import PackageSet, Requirement, set_requirements_text

API_REQUIRERS = [
    Requirement("opentelemetry-api", ">=1.12", "opentelemetry-instrumentation"),
    Requirement("opentelemetry-api", "==1.45.1", "opentelemetry-sdk"),
    Requirement("opentelemetry-api", "<2,>=1.20", "opentelemetry-exporter-otlp-proto-http"),
]


def _set_file(tmp_path: Path, requires: list[Requirement]) -> boot.SetRequirements:
    pset = PackageSet(
        name="py3.11-glibc-amd64", python="3.11", platform="glibc", arch="amd64",
        dists={"opentelemetry-api": "1.45.1"}, requires=tuple(requires),
        min_glibc="2.17", pth_files=(),
    )  # fmt: skip
    path = tmp_path / boot.SET_FILE
    path.write_text(set_requirements_text(pset))
    return boot.read_set_requirements(str(path))


def _app_with(tmp_path: Path, dist_dir: str) -> dict[str, tuple[str, str]]:
    site = tmp_path / "app-site"
    (site / dist_dir).mkdir(parents=True)
    return boot.installed_distributions([str(site)])


@pytest.mark.parametrize("rotation", range(len(API_REQUIRERS)))
def test_a_version_only_the_first_requirer_accepts_is_a_conflict(
    tmp_path: Path, rotation: int
) -> None:
    requires = API_REQUIRERS[rotation:] + API_REQUIRERS[:rotation]
    app = _app_with(tmp_path, "opentelemetry_api-1.30.0.dist-info")
    message = boot.find_conflict(_set_file(tmp_path, requires), app)
    assert message == (
        "the app has opentelemetry-api 1.30.0 but opentelemetry-sdk needs opentelemetry-api==1.45.1"
    )


def test_a_version_every_requirer_accepts_is_no_conflict(tmp_path: Path) -> None:
    app = _app_with(tmp_path, "opentelemetry_api-1.45.1.dist-info")
    assert boot.find_conflict(_set_file(tmp_path, API_REQUIRERS), app) is None


def test_the_conflict_on_the_second_package_is_found_too(tmp_path: Path) -> None:
    requires = [
        Requirement("opentelemetry-api", ">=1.12", "opentelemetry-sdk"),
        Requirement("protobuf", ">=5.0,<7.0", "opentelemetry-proto"),
    ]
    site = tmp_path / "app-site"
    (site / "opentelemetry_api-1.45.1.dist-info").mkdir(parents=True)
    (site / "protobuf-3.20.3.dist-info").mkdir()
    app = boot.installed_distributions([str(site)])
    assert boot.find_conflict(_set_file(tmp_path, requires), app) == (
        "the app has protobuf 3.20.3 but opentelemetry-proto needs protobuf>=5.0,<7.0"
    )
