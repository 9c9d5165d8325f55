"""Lumigo OpenTelemetry layer: the start-up hook, the only module on the app's PYTHONPATH.

Kept tiny because Python compiles it at every start (the layer never gets bytecode written
into it: `__pycache__` next to this file is a plain file). The logic lives in
`../bootstrap-impl/lumigo_bootstrap.py`, loaded from its precompiled bytecode when the layer
ships one for this Python, else compiled in memory; then `main()` runs. Python 3.9+.
"""


def _lumigo_layer_start() -> None:
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        path = os.path.join(os.path.dirname(here), "bootstrap-impl", "lumigo_bootstrap.py")
        external = sys.modules.get("_frozen_importlib_external") or __import__(
            "_frozen_importlib_external"
        )
        loader = external.SourceFileLoader("lumigo_bootstrap", path)
        saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            code = loader.get_code("lumigo_bootstrap")
        finally:
            sys.dont_write_bytecode = saved
        module = type(sys)("lumigo_bootstrap")
        module.__file__ = path
        exec(code, module.__dict__)
    except Exception as exc:
        sys.stderr.write(
            f"lumigo-otel layer: failed to start ({type(exc).__name__}: {exc}); "
            "the app runs without Lumigo tracing\n"
        )
        return
    module.main(here)


_lumigo_layer_start()
