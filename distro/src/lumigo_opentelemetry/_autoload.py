"""autowrapt entry point: fires when `string` is imported at interpreter start-up."""
from types import ModuleType


def on_string_import(_module: ModuleType) -> None:
    """Initialise the distro once; never raise into the interpreter start-up."""
    try:
        from lumigo_opentelemetry import init

        init()
    except Exception:  # pragma: no cover - fail open
        pass
