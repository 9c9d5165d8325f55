"""Every shell block of the user docs runs as written here, or says in the doc why not.

`pytest tests/docs -rs` lists the blocks that cannot run on a test machine (skipped, with
the doc's reason); a shell block without a marker, an unknown scenario or a missing test
file fails. Markers: tests/docs/doc_blocks.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.doc_blocks import KINDS, ROOT, DocBlock, all_blocks, shell_blocks
from tests.docs.scenarios import SCENARIOS, Workspace, run_scenario

_BARE_CLI = re.compile(r"(?:^|[|;&(]|&&)\s*lumigo-injector\b")


def _ids(blocks: list[DocBlock]) -> list[str]:
    return [block.where for block in blocks]


def _of_kind(kind: str) -> list[DocBlock]:
    return [block for block in shell_blocks() if block.kind == kind]


def test_every_fenced_block_names_its_language() -> None:
    """An unlabelled block could hide a command from this test: label it (text, yaml, ...)."""
    unlabelled = [block.where for block in all_blocks() if not block.language]
    assert unlabelled == []


def test_every_shell_block_carries_a_marker() -> None:
    unmarked = [block.where for block in shell_blocks() if block.kind not in KINDS]
    assert unmarked == [], "add <!-- doc-test: run|elsewhere|not-here ... --> before each"


def test_the_cli_is_called_the_way_the_set_up_provides_it() -> None:
    """The README's set-up puts nothing on PATH: blocks call `uv run --frozen lumigo-injector`."""
    bare = [
        f"{block.where}: {line.strip()}"
        for block in shell_blocks()
        for line in block.text.splitlines()
        if _BARE_CLI.search(line.split("#", 1)[0])
    ]
    assert bare == []


def test_markers_sit_only_before_shell_blocks() -> None:
    misplaced = [block.where for block in all_blocks() if block.kind and not block.is_shell]
    assert misplaced == []


def test_run_markers_name_a_scenario_and_every_scenario_is_used() -> None:
    named = {block.argument for block in _of_kind("run")}
    unknown = sorted(named - set(SCENARIOS))
    assert unknown == []
    assert sorted(set(SCENARIOS) - named) == []


@pytest.mark.parametrize("block", _of_kind("elsewhere"), ids=_ids(_of_kind("elsewhere")))
def test_blocks_run_elsewhere_name_a_test_that_reads_their_doc(block: DocBlock) -> None:
    target = ROOT / block.argument
    assert target.is_file() and target.name.startswith("test_"), block.argument
    assert block.path.name in target.read_text(), f"{block.argument} never reads {block.where}"


@pytest.mark.parametrize("block", _of_kind("not-here"), ids=_ids(_of_kind("not-here")))
def test_blocks_that_cannot_run_here(block: DocBlock) -> None:
    """Listed with the doc's reason (`pytest -rs`)."""
    assert block.argument, f"{block.where}: say why it cannot run here"
    pytest.skip(f"{block.where}: {block.argument}")


@pytest.mark.parametrize("block", _of_kind("run"), ids=_ids(_of_kind("run")))
def test_block_runs_as_written(
    block: DocBlock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run_scenario(block, Workspace(tmp_path), request)
