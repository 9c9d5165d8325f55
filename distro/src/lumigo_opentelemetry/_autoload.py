"""autowrapt entry point (group `lumigo_opentelemetry`), fired when `string` is imported.

With `AUTOWRAPT_BOOTSTRAP=lumigo_opentelemetry` that happens during interpreter start-up.
The module is not used: the layer bootstrap calls this directly, passing `string` only
if it is already imported (None otherwise).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Optional


def on_string_import(_module: Optional[ModuleType]) -> None:
    """Initialise the distro once; never raise into the interpreter start-up."""
    try:
        from lumigo_opentelemetry import init

        init()
    except Exception:  # pragma: no cover - fail open
        pass
