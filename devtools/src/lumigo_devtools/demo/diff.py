"""A readable diff of what the injector changed in a manifest (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

GREEN, RED, CYAN, RESET = "\033[32m", "\033[31m", "\033[36m", "\033[0m"


def _yaml(doc: Mapping[str, Any]) -> list[str]:
    return yaml.safe_dump(dict(doc), sort_keys=False, width=100).splitlines()


def document_diff(before: Mapping[str, Any], after: Mapping[str, Any], color: bool) -> str:
    """A unified diff of one document, or '' when nothing changed."""
    name = f"{before.get('kind', '?')}/{before.get('metadata', {}).get('name', '?')}"
    lines = list(
        difflib.unified_diff(
            _yaml(before),
            _yaml(after),
            f"{name} (as written)",
            f"{name} (injected)",
            n=2,
            lineterm="",
        )
    )
    if not color:
        return "\n".join(lines)
    painted = []
    for line in lines:
        if line.startswith(("+++", "---")):
            painted.append(line)
        elif line.startswith("+"):
            painted.append(f"{GREEN}{line}{RESET}")
        elif line.startswith("-"):
            painted.append(f"{RED}{line}{RESET}")
        elif line.startswith("@@"):
            painted.append(f"{CYAN}{line}{RESET}")
        else:
            painted.append(line)
    return "\n".join(painted)
