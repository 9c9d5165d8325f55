"""The version gate read from an instrumentor's distribution metadata (`_version_gate`)
agrees with the upstream check it spares: the same declared range, the same verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from lumigo_opentelemetry.instrumentations import _version_gate as gate

INSTRUMENTORS = {
    "opentelemetry-instrumentation-flask": "opentelemetry.instrumentation.flask",
    "opentelemetry-instrumentation-fastapi": "opentelemetry.instrumentation.fastapi",
    "opentelemetry-instrumentation-requests": "opentelemetry.instrumentation.requests",
}


@pytest.mark.parametrize("distribution", sorted(INSTRUMENTORS))
def test_metadata_declares_the_instrumentors_own_range(distribution: str) -> None:
    import importlib

    package = importlib.import_module(INSTRUMENTORS[distribution] + ".package")
    declared = gate.declared_requirements(distribution)
    assert declared is not None
    ours = {(name.lower(), SpecifierSet(",".join(op + v for op, v in c))) for name, c in declared}
    theirs = {(Requirement(r).name.lower(), Requirement(r).specifier) for r in package._instruments}
    assert ours == theirs


def test_installed_flask_is_in_range_as_upstream_says() -> None:
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    declared = list(FlaskInstrumentor().instrumentation_dependencies())
    assert get_dependency_conflicts(declared) is None
    assert gate.in_declared_range("opentelemetry-instrumentation-flask")
    assert not gate.in_declared_range("no-such-distribution-here")


_numbers = st.lists(st.integers(0, 12), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)


@given(
    version=_numbers,
    clauses=st.lists(
        st.tuples(st.sampled_from([">=", ">", "<=", "<", "==", "!=", "~="]), _numbers),
        min_size=0,
        max_size=3,
    ),
)
def test_release_number_comparisons_agree_with_packaging(
    version: str, clauses: list[tuple[str, str]]
) -> None:
    assume(all(op != "~=" or "." in bound for op, bound in clauses))  # `~=1` is invalid
    specifier = SpecifierSet(",".join(op + bound for op, bound in clauses))
    assert gate.satisfies(version, clauses) == specifier.contains(Version(version))


def _write_distribution(root: Path, name: str, version: str, requires: list[str]) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {line}" for line in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nA description.\n")


def test_gate_decides_only_plain_ranges_and_defers_the_rest(tmp_path: Path) -> None:
    """Real distribution metadata on sys.path, read in a fresh interpreter."""
    _write_distribution(tmp_path, "demo-lib", "2.4.1", [])
    _write_distribution(tmp_path, "demo-pre", "3.0rc1", [])
    cases = {
        "demo-instr-in": ['demo-lib>=2.0,<3; extra == "instruments"', "other>=1"],
        "demo-instr-out": ["demo-lib>=2.5; extra == 'instruments'"],
        "demo-instr-compatible": ["demo-lib~=2.4; extra == 'instruments'"],
        "demo-instr-missing": ["demo-absent>=1; extra == 'instruments'"],
        "demo-instr-pre": ["demo-pre>=2; extra == 'instruments'"],
        "demo-instr-marker": ["demo-lib>=2; extra == 'instruments' and python_version > '3'"],
        "demo-instr-none": ["demo-lib>=2"],
    }
    for name, requires in cases.items():
        _write_distribution(tmp_path, name, "0.1", requires)
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from lumigo_opentelemetry.instrumentations._version_gate import in_declared_range;"
        f"print(json.dumps({{n: in_declared_range(n) for n in {sorted(cases)!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == {
        "demo-instr-in": True,
        "demo-instr-compatible": True,
        # the rest: the registry asks the upstream instrumentor, which decides and words it
        "demo-instr-out": False,
        "demo-instr-missing": False,
        "demo-instr-pre": False,
        "demo-instr-marker": False,
        "demo-instr-none": False,
    }
