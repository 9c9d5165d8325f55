"""The version gate without importing the upstream instrumentor or `packaging`.

The registry's gate is the range the upstream instrumentor declares (its
`instrumentation_dependencies()`, checked with `packaging`). Importing an instrumentor
package only to read that range can cost more than the library's own import, so an
instrumentation module may name the instrumentor's distribution
(`INSTRUMENTOR_DISTRIBUTION`): the same range is then read from that distribution's
metadata (its `instruments` extra, which the upstream builds from the same list) and
compared here, for the common case of plain release numbers (`flask>=1.0`,
`fastapi~=0.92`, against e.g. `3.1.3`).

`in_declared_range` answers only "in range" (True) or "cannot tell" (False): anything
unusual (pre-releases, markers other than the extra, wildcards, a missing
distribution) returns False and the registry runs the upstream check, which then
decides and words any conflict.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

_EXTRA = re.compile(r"""^\s*extra\s*==\s*['"]instruments['"]\s*$""")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")
_CLAUSE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)*)\s*$")
_RELEASE = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


def in_declared_range(instrumentor_distribution: str) -> bool:
    """Whether every library the instrumentor declares (its `instruments` extra) is
    installed at a version inside the declared range; False when that cannot be told
    from plain release numbers (the caller then runs the upstream check)."""
    try:
        requirements = declared_requirements(instrumentor_distribution)
        if not requirements:
            return False
        for name, clauses in requirements:
            installed = installed_version(name)
            if installed is None or not satisfies(installed, clauses):
                return False
        return True
    except Exception:
        return False


def declared_requirements(
    distribution: str,
) -> Optional[List[Tuple[str, List[Tuple[str, str]]]]]:
    """The `instruments` extra of `distribution` as (name, [(operator, version)]), or
    None when a line of it is not a plain release-number requirement."""
    text = _metadata_text(distribution)
    if text is None:
        return None
    found: List[Tuple[str, List[Tuple[str, str]]]] = []
    for line in text.splitlines():
        if not line:
            break  # the headers end at the first empty line
        if not line.startswith("Requires-Dist:"):
            continue
        requirement, _, marker = line[len("Requires-Dist:") :].partition(";")
        if not _EXTRA.match(marker):
            if "instruments" in marker:
                return None  # an extra marker in a form not read here
            continue
        parsed = _requirement(requirement)
        if parsed is None:
            return None
        found.append(parsed)
    return found


def installed_version(distribution: str) -> Optional[str]:
    text = _metadata_text(distribution)
    if text is None:
        return None
    for line in text.splitlines():
        if not line:
            break
        if line.startswith("Version:"):
            return line[len("Version:") :].strip()
    return None


def satisfies(version: str, clauses: List[Tuple[str, str]]) -> bool:
    """`version` (plain release numbers only, else False) inside every clause."""
    if not _RELEASE.match(version):
        return False
    have = _numbers(version)
    return all(_holds(have, operator, _numbers(bound)) for operator, bound in clauses)


def _holds(have: Tuple[int, ...], operator: str, bound: Tuple[int, ...]) -> bool:
    width = max(len(have), len(bound))
    left, right = _padded(have, width), _padded(bound, width)
    if operator == ">=":
        return left >= right
    if operator == ">":
        return left > right
    if operator == "<=":
        return left <= right
    if operator == "<":
        return left < right
    if operator == "==":
        return left == right
    if operator == "!=":
        return left != right
    # "~=": at least `bound`, and the same release up to its last component
    if len(bound) < 2:
        return False
    prefix = bound[:-1]
    return left >= right and _padded(have, len(prefix))[: len(prefix)] == prefix


def _requirement(text: str) -> Optional[Tuple[str, List[Tuple[str, str]]]]:
    match = _REQUIREMENT.match(text)
    if match is None or "[" in text or "(" in text or "@" in text:
        return None
    name, rest = match.group(1), match.group(2)
    clauses: List[Tuple[str, str]] = []
    if rest:
        for part in rest.split(","):
            clause = _CLAUSE.match(part)
            if clause is None:
                return None
            clauses.append((clause.group(1), clause.group(2)))
    return name, clauses


def _numbers(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _padded(numbers: Tuple[int, ...], width: int) -> Tuple[int, ...]:
    return numbers + (0,) * (width - len(numbers))


def _metadata_text(distribution: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    try:
        return find(distribution).read_text("METADATA")
    except PackageNotFoundError:
        return None
