"""autowrapt entry point (group `lumigo_opentelemetry`), fired when `string` is imported.

With `AUTOWRAPT_BOOTSTRAP=lumigo_opentelemetry` that happens during interpreter start-up.
"""

from __future__ import annotations

from types import ModuleType


def on_string_import(_module: ModuleType) -> None:
    """Initialise the distro once; never raise into the interpreter start-up."""
    try:
        from lumigo_opentelemetry import init

        init()
    except Exception:  # pragma: no cover - fail open
        pass
