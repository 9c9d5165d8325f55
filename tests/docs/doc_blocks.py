"""The fenced blocks of the user docs, and the `doc-test` marker written right before each.

A shell block (```sh, bash, shell or console) must carry one marker, an HTML comment on the
line before its fence (blank lines between are allowed), so that a new block cannot slip in
untested:

- `<!-- doc-test: run NAME -->`: tests/docs/scenarios.py runs it under scenario NAME;
- `<!-- doc-test: elsewhere tests/PATH.py -->`: that test file runs it already;
- `<!-- doc-test: not-here REASON -->`: it cannot run on a test machine (REASON says why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
KINDS = ("run", "elsewhere", "not-here")

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*([\w-]+)\s*(.*?)\s*-->\s*$")


def doc_files() -> list[Path]:
    """README.md, docs/*.md and the chart README, whatever exists at run time."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files.append(ROOT / "charts" / "lumigo-injector" / "README.md")
    return [path for path in files if path.exists()]


@dataclass(frozen=True)
class DocBlock:
    """One fenced block: where it is, its language, its text and its marker (if any)."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    kind: str = ""  # run | elsewhere | not-here | "" (no marker)
    argument: str = ""  # scenario name, test path or reason

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES


def blocks_of(path: Path) -> list[DocBlock]:
    """Every fenced block of a Markdown file, with the marker that precedes it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[DocBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening.group(2)
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        kind, argument = _marker_before(lines, start)
        found.append(
            DocBlock(path, start + 1, opening.group(3).lower(), "\n".join(body), kind, argument)
        )
    return found


def _marker_before(lines: list[str], fence_index: int) -> tuple[str, str]:
    previous = fence_index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return "", ""
    marker = _MARKER.match(lines[previous])
    return (marker.group(1), marker.group(2)) if marker else ("", "")


def all_blocks() -> list[DocBlock]:
    return [block for path in doc_files() for block in blocks_of(path)]


def shell_blocks() -> list[DocBlock]:
    return [block for block in all_blocks() if block.is_shell]
