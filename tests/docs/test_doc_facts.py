"""Facts the docs state twice, or state about the code, agree with their one source."""

from __future__ import annotations

import re

from lumigo_opentelemetry.instrumentations import KNOWN
from tests.docs.doc_blocks import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BENCHMARKS = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
_FIGURE = re.compile(r"\+?\d[\d,]*(?:\.\d+)?")


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _table_row(text: str, first_cell: str) -> str:
    [row] = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    return row


def test_readme_benchmark_figures_are_those_of_benchmarks_md() -> None:
    """The README's summary quotes BENCHMARKS.md (written by benchmarks/run.py), not a retyping."""
    summary = _section(README, "## Benchmarks").split("In short", 1)[1]
    figures = _FIGURE.findall(summary)
    assert len(figures) >= 10, figures
    missing = [figure for figure in figures if figure.lstrip("+") not in BENCHMARKS]
    assert missing == []


def test_the_layer_size_is_quoted_only_in_benchmarks_md() -> None:
    for name in ("README.md", "docs/layer.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert re.findall(r"\b\d[\d.,]* ?MB\b", text) == [], name


def test_documented_instrumentation_names_are_the_distros() -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS rows name exactly what the distro knows."""
    rows = {
        "README.md": _table_row(README, "`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`"),
        "docs/distro.md": _table_row(
            (ROOT / "docs" / "distro.md").read_text(encoding="utf-8"),
            "`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`",
        ),
    }
    for name, row in rows.items():
        listed = {
            word
            for quoted in re.findall(r"`([^`]+)`", row.split("|")[3])
            for word in quoted.split(",")
            if word not in ("*",)
        }
        assert listed == set(KNOWN), name


def test_removal_commands_name_the_namespace_the_quick_start_uses() -> None:
    """Every `kubectl annotate ... inject-` in the docs says `-n shop`, as the annotate did."""
    texts = [README, *(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))]
    removals = [
        line for text in texts for line in re.findall(r"kubectl annotate[^`\n]*inject-", text)
    ]
    assert removals and all(" -n shop " in line for line in removals), removals
