"""The bootstrap's pure parts: version checks, distribution scan, conflict detection."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from lumigo_injector.layer.bootstrap import lumigo_bootstrap as boot
from lumigo_injector.layer.manifest import PackageSet, Requirement, set_requirements_text

VERSIONS = [
    "0.46b0", "0.59b0", "0.66b1", "1", "1.0", "1.0.0", "1.0a1", "1.0b2", "1.0rc1",
    "1.0.post1", "1.0.dev1", "1.0a1.dev1", "1.0.post1.dev2", "1.1", "1.2.3", "2.0", "2.0.1",
    "1.45.1", "3.20.3", "4.25.0", "5.0", "6.33.6", "7.36.2", "1!0.5", "1.0+local.7",
    # the other spellings PEP 440 allows for the same labels
    "1.0alpha1", "1.0beta2", "1.0c1", "1.0pre1", "1.0preview1", "1.0rev1", "1.0r1",
    # the implicit post-release (`-N`), separators, labels without numbers, local parts
    "1.0-1", "1-0", "1.0a1-1", "1.0-post1", "1.0_post2", "1.0a.", "1.0ar1", "V1.0-dev",
    "1.0+LOCAL.07", "1.0+local-7", "1.0a1.post1", "1.0a1.post2.dev1", "1.0.post2.dev1",
]  # fmt: skip
SPECIFIERS = [
    ">=1.0", "<2", "==1.0", "==1.*", "==1.0.*", "!=1.0", "!=1.*", "~=1.0", "~=1.0.0", ">1.0",
    "<1.0", "<=1.0", ">=0.46b0", "==0.59b0", "<2,>=1.25", ">=5.0,<7.0", "~=3.0", "~=1.52",
    ">=2.0,!=2.0.1", "<1.0rc1", ">1.0.post1", "==1.45.1", ">=4.21,<7", "==1!0.5", "<=2.0.dev0",
    "==1!0.*", "!=1!0.*", "===1.0", ">=1.0b1", "<1.0b1",
    "==1.0.post1", "==1.0-1", ">1.0-1", "<1.0-1", "==1.0+local.7", "!=1.0+local.7",
    "==v1.*", "~=1.0-1", "<1.0.post1", "<1.0.post2", ">1.0a1", ">1.0.dev1", "<1.0a1.post2",
]  # fmt: skip


@pytest.mark.parametrize(("version", "spec"), list(itertools.product(VERSIONS, SPECIFIERS)))
def test_version_matches_agrees_with_packaging(version: str, spec: str) -> None:
    expected = SpecifierSet(spec).contains(Version(version), prereleases=True)
    assert boot.version_matches(version, spec) is expected


release = st.lists(st.integers(0, 12), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)
suffix = st.sampled_from(
    ["", "a1", "b2", "rc1", ".post1", ".dev3", "a1.dev1", ".post2.dev1", "-1", "rc1-2"]
)
local = st.sampled_from(["", "+local.1", "+ubuntu-2"])
versions = st.builds(lambda r, s, loc: r + s + loc, release, suffix, local)
operators = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "~="])


@given(versions, operators, release, suffix)
def test_version_matches_random_clauses(version: str, op: str, target: str, tail: str) -> None:
    spec = f"{op}{target}{tail}"
    assume(op != "~=" or "." in target)  # `~=1` is not a valid specifier
    expected = SpecifierSet(spec).contains(Version(version), prereleases=True)
    assert boot.version_matches(version, spec) is expected


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [
        ("1.0c1", "1.0rc1"), ("1.0pre1", "1.0rc1"), ("1.0preview1", "1.0rc1"),
        ("1.0a", "1.0a0"), ("1.0.post", "1.0.post0"), ("1.0.dev", "1.0.dev0"),
        ("1.0a.1", "1.0a1"), ("1.0rc_1", "1.0rc1"), ("1.0.post-1", "1.0.post1"),
        ("1.0-dev_2", "1.0.dev2"), ("1.0-95", "1.0.post95"), ("1.0-9.dev1", "1.0.post9.dev1"),
    ],
)  # fmt: skip
def test_every_spelling_of_a_version_is_that_version(spelled: str, canonical: str) -> None:
    """An app's package installed as `1.0c1` satisfies `==1.0rc1`, and no spelling PEP 440
    allows makes the layer step aside for a version the set accepts."""
    assert Version(spelled) == Version(canonical)
    assert boot.version_matches(spelled, f"=={canonical}") is True
    assert boot.version_matches(canonical, f"=={spelled}") is True
    assert boot.version_matches(spelled, f"!={canonical}") is False


@pytest.mark.parametrize(
    ("lower", "higher"),
    [("1.0a", "1.0a1"), ("1.0a0", "1.0a1"), ("1.0.post", "1.0.post1"), ("1.0.dev", "1.0.dev1")],
)
def test_a_label_without_a_number_is_number_zero(lower: str, higher: str) -> None:
    """`1.0a` is `1.0a0`, so it is below `1.0a1` and does not satisfy `>=1.0a1`."""
    assert Version(lower) < Version(higher)
    assert boot.version_matches(lower, f">={higher}") is False
    assert boot.version_matches(higher, f">{lower}") is True


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "rc1", "1.0-foo-bar", "1..x", "1.0-1a1", "1.0_1", "1.0.-1", "1.0+", "1.0+a..b"],
)
@pytest.mark.parametrize("spec", [">=0", "<1", "!=1.0"])
def test_unparseable_versions_never_match(bad: str, spec: str) -> None:
    assert boot.version_matches(bad, spec) is False


@pytest.mark.parametrize("version", ["1.0+7", "1.0+l", "1.0+7.a"])
def test_one_character_local_labels(version: str) -> None:
    assert boot.version_matches(version, ">=1.0,<1.1") is True
    assert boot.version_matches(version, f"=={version}") is True
    assert boot.version_matches(version, "==1.0+8") is False


@pytest.mark.parametrize("clause", ["~=1", ">=abc", "=>1.0", "1.0", "==x.*", "!=x.*"])
def test_invalid_clauses_never_match(clause: str) -> None:
    """A clause that is not PEP 440 counts as a mismatch: the layer steps aside."""
    assert boot.version_matches("1.5", clause) is False


@pytest.mark.parametrize(
    "clause",
    ["==1.x.*", "==1.5a1.*", "==1.5+l.*", "==1.*.*", "<2.*", ">=1.0+l", "~=1.0+l", "<2+l"],
)
def test_clauses_packaging_rejects_never_match(clause: str) -> None:
    """Wildcards only after a release and only with `==`/`!=`, local versions only with
    `==`/`!=`: anything else is no specifier for `packaging` and a mismatch here."""
    with pytest.raises(InvalidSpecifier):
        SpecifierSet(clause)
    assert boot.version_matches("1.5", clause) is False
    assert boot.version_matches("1.5+l", clause) is False


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("OpenTelemetry_API", "opentelemetry-api"), ("zope.interface", "zope-interface"),
     ("a__-b", "a-b"), ("lumigo_opentelemetry", "lumigo-opentelemetry")],
)  # fmt: skip
def test_normalize_name(raw: str, normal: str) -> None:
    assert boot.normalize_name(raw) == normal


def test_installed_distributions_first_on_path_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "protobuf-3.20.3.dist-info").mkdir(parents=True)
    (second / "protobuf-5.29.0.dist-info").mkdir(parents=True)
    (second / "Flask-3.1.0.dist-info").mkdir()
    (second / "old_thing-1.2-py3.9.egg-info").mkdir()
    odd = second / "weird.dist-info"
    odd.mkdir()
    (odd / "METADATA").write_text("Metadata-Version: 2.1\nName: weird\nVersion: 0.3\n\nbody\n")
    found = boot.installed_distributions([str(first), str(tmp_path / "missing"), str(second)])
    assert found["protobuf"] == ("3.20.3", str(first))
    assert found["flask"] == ("3.1.0", str(second))
    assert found["old-thing"][0] == "1.2"
    assert found["weird"][0] == "0.3"


def test_a_development_install_without_version_in_its_name_is_found(tmp_path: Path) -> None:
    """`setup.py develop` / old editable installs leave `NAME.egg-info` in the source tree
    (on the app's path), with the version only in its PKG-INFO."""
    checkout = tmp_path / "protobuf-src"
    (checkout / "protobuf.egg-info").mkdir(parents=True)
    (checkout / "protobuf.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: protobuf\nVersion: 3.20.3\n\nA description.\n"
    )
    found = boot.installed_distributions([str(checkout)])
    assert found == {"protobuf": ("3.20.3", str(checkout))}
    assert boot.find_conflict(_needs(tmp_path), found) == (
        "the app has protobuf 3.20.3 but opentelemetry-proto needs protobuf>=5.0,<7.0"
    )


def test_the_version_is_read_from_the_metadata_headers_only(tmp_path: Path) -> None:
    """A `Version:` line in the description (after the blank line that ends the headers)
    is no version: metadata without one in its headers names no installed version."""
    site = tmp_path / "site"
    broken = site / "protobuf.dist-info"
    broken.mkdir(parents=True)
    (broken / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: protobuf\n\nChangelog\nVersion: 3.20.3\n"
    )
    assert boot.installed_distributions([str(site)]) == {}


def _package_set(requires: list[Requirement], dists: dict[str, str]) -> PackageSet:
    return PackageSet(
        name="py3.11-glibc-amd64", python="3.11", platform="glibc", arch="amd64",
        dists=dists, requires=tuple(requires), min_glibc="2.17", pth_files=("extra.pth",),
    )  # fmt: skip


def test_set_file_round_trip_between_builder_and_bootstrap(tmp_path: Path) -> None:
    pset = _package_set(
        [Requirement("protobuf", ">=5.0,<7.0", "opentelemetry-proto"),
         Requirement("wrapt", "", "lumigo-opentelemetry")],
        {"protobuf": "6.33.6", "wrapt": "2.5.2", "lumigo-opentelemetry": "0.1.0"},
    )  # fmt: skip
    path = tmp_path / "lumigo-set.txt"
    path.write_text(set_requirements_text(pset))
    parsed = boot.read_set_requirements(str(path))
    assert parsed.dists == pset.dists
    assert parsed.requires == {
        "protobuf": [(">=5.0,<7.0", "opentelemetry-proto")],
        "wrapt": [("", "lumigo-opentelemetry")],
    }
    assert parsed.min_glibc == (2, 17)
    assert parsed.pth_files == ["extra.pth"]


def _needs(tmp_path: Path) -> boot.SetRequirements:
    pset = _package_set(
        [Requirement("protobuf", ">=5.0,<7.0", "opentelemetry-proto"),
         Requirement("opentelemetry-api", "==1.45.1", "opentelemetry-sdk")],
        {"protobuf": "6.33.6", "opentelemetry-api": "1.45.1"},
    )  # fmt: skip
    path = tmp_path / "lumigo-set.txt"
    path.write_text(set_requirements_text(pset))
    return boot.read_set_requirements(str(path))


def test_set_file_records_too_short_are_skipped_and_extra_fields_ignored(
    tmp_path: Path,
) -> None:
    """A damaged line does not stop the bootstrap; a newer builder may add fields and kinds."""
    path = tmp_path / "lumigo-set.txt"
    path.write_text(
        "# a comment\n\n"
        "dist\ndist lonely\nreq\nreq protobuf\nreq protobuf >=5.0\nglibc\npth\n"
        "dist protobuf 6.33.6 sha256=abc\n"
        "req protobuf >=5.0,<7.0 opentelemetry-proto extra\n"
        "glibc 2.28 x86_64\n"
        "pth extra.pth more\n"
        "sbom protobuf 6.33.6 spdx extra\n"  # a record kind this bootstrap does not know
    )
    parsed = boot.read_set_requirements(str(path))
    assert parsed.dists == {"protobuf": "6.33.6"}
    assert parsed.requires == {"protobuf": [(">=5.0,<7.0", "opentelemetry-proto")]}
    assert parsed.min_glibc == (2, 28)
    assert parsed.pth_files == ["extra.pth"]


def test_conflict_names_the_package_and_the_requirer(tmp_path: Path) -> None:
    message = boot.find_conflict(_needs(tmp_path), {"protobuf": ("3.20.3", "/app")})
    assert message == (
        "the app has protobuf 3.20.3 but opentelemetry-proto needs protobuf>=5.0,<7.0"
    )


def test_compatible_app_packages_are_no_conflict(tmp_path: Path) -> None:
    app = {"protobuf": ("5.29.1", "/app"), "opentelemetry-api": ("1.45.1", "/app"),
           "flask": ("3.1.0", "/app")}  # fmt: skip
    assert boot.find_conflict(_needs(tmp_path), app) is None


def test_app_with_its_own_distro_is_a_conflict(tmp_path: Path) -> None:
    message = boot.find_conflict(_needs(tmp_path), {"lumigo-opentelemetry": ("0.0.9", "/app")})
    assert message == "the app has its own lumigo-opentelemetry 0.0.9 (in /app)"


def _os_with(monkeypatch: pytest.MonkeyPatch, confstr: object, lib: list[str]) -> None:
    def fake_confstr(name: str) -> object:
        if isinstance(confstr, Exception):
            raise confstr
        return confstr

    monkeypatch.setattr(boot.os, "confstr", fake_confstr)
    monkeypatch.setattr(boot.os, "listdir", lambda path: lib if path == "/lib" else [])


def test_libc_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    _os_with(monkeypatch, "glibc 2.31", [])
    assert boot.detect_libc() == ("glibc", (2, 31))
    _os_with(monkeypatch, ValueError("unrecognized configuration name"), ["ld-musl-x86_64.so.1"])
    assert boot.detect_libc() == ("musl", ())
    _os_with(monkeypatch, None, ["libc.so.6"])
    assert boot.detect_libc() == ("", ())


@pytest.mark.parametrize(
    ("reported", "version"),
    [("glibc 2.31", (2, 31)), ("glibc 2.39.9000", (2, 39, 9000)), ("glibc 2.28.x", (2, 28)),
     ("glibc 2.", (2,)), ("glibc ", ())],
)  # fmt: skip
def test_a_glibc_version_is_read_up_to_its_first_part_that_is_no_number(
    monkeypatch: pytest.MonkeyPatch, reported: str, version: tuple[int, ...]
) -> None:
    """An odd version string still gives an answer: the bootstrap compares what it could
    read instead of failing to start."""
    _os_with(monkeypatch, reported, [])
    assert boot.detect_libc() == ("glibc", version)


@pytest.fixture
def fake_layer(tmp_path: Path) -> Path:
    libc = boot.detect_libc()[0]
    machine = {"x86_64": "amd64", "aarch64": "arm64"}[boot.os.uname().machine]
    minor = (boot.sys.version_info[0], boot.sys.version_info[1])
    (tmp_path / boot.set_name_for(minor, libc, machine)).mkdir()
    return tmp_path


def test_pick_set_finds_this_interpreters_set(fake_layer: Path) -> None:
    found, why = boot.pick_set(str(fake_layer))
    assert found is not None and Path(found).parent == fake_layer and why == ""


@pytest.mark.parametrize(
    ("attribute", "value", "reason"),
    [
        ("implementation", type("Impl", (), {"name": "pypy"})(), "no package set for pypy"),
        ("abiflags", "t", "free-threaded"),
        ("platform", "darwin", "no package set for darwin (Linux only)"),
    ],
)
def test_pick_set_abstains_on_other_runtimes(
    fake_layer: Path, monkeypatch: pytest.MonkeyPatch, attribute: str, value: object, reason: str
) -> None:
    monkeypatch.setattr(boot.sys, attribute, value, raising=False)
    found, why = boot.pick_set(str(fake_layer))
    assert found is None and reason in why


def test_pick_set_abstains_on_an_unknown_libc(
    fake_layer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(boot, "detect_libc", lambda: ("", ()))
    found, why = boot.pick_set(str(fake_layer))
    machine = boot.os.uname().machine
    assert found is None and why == f"no package set for machine {machine!r} with libc unknown"


def test_pick_set_abstains_on_unknown_machines(
    fake_layer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = boot.os.uname()
    fake = type("Uname", (), {"machine": "riscv64", "sysname": real.sysname})()
    monkeypatch.setattr(boot.os, "uname", lambda: fake)
    found, why = boot.pick_set(str(fake_layer))
    assert found is None and "'riscv64'" in why
