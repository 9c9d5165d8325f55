"""The mutation's whole output, pinned byte for byte over varied pods.

`tests/fixtures/mutation/outcomes.json.gz` holds, for every case of `mutation_cases` (the
corpus, hand-made odd pods, each again after an injection: upgrades and switches), what
`inject` gave when it was written: the object, the JSONPatch, the state annotation inside
both, the reason, the warnings. A change to the mutation that is meant to change nothing
(a faster path) must leave every case identical. Rewrite the fixture only for an intended
change of output:

    uv run python -m tests.k8s.test_mutation_equivalence --write
"""

from __future__ import annotations

import gzip
import json
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.k8s.mutation_cases import Case, cases, outcome

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mutation" / "outcomes.json.gz"
CASES = list(cases())


@cache
def expected() -> dict[str, str]:
    pinned: dict[str, str] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    return pinned


def test_every_case_is_pinned() -> None:
    assert sorted(expected()) == sorted(name for name, *_ in CASES)


@pytest.mark.parametrize("case", CASES, ids=[name for name, *_ in CASES])
def test_output_is_unchanged(case: Case) -> None:
    name, obj, settings, namespace = case
    got = outcome(obj, settings, namespace)
    want = expected()[name]
    if got != want:  # the first fields that differ, readable
        assert json.loads(got) == json.loads(want)
    assert got == want


def write() -> None:
    pinned = {name: outcome(obj, settings, namespace) for name, obj, settings, namespace in CASES}
    text = json.dumps(pinned, indent=0, sort_keys=True).encode()
    FIXTURE.write_bytes(gzip.compress(text, mtime=0))


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    write()
