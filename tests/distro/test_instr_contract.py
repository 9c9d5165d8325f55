"""Every instrumentation module satisfies the registry's `Instrumentation` protocol, and
the registry's hook table is exactly what the modules declare."""

from __future__ import annotations

import importlib
import pkgutil

import lumigo_opentelemetry.instrumentations as registry
from lumigo_opentelemetry.instrumentations import HOOK_MODULES, KNOWN, Instrumentation

NEW = ("django", "psycopg2", "psycopg", "redis", "pika", "grpc", "httpx", "langchain")


def _instrumentation_modules() -> dict[str, object]:
    """Every public module of the package that declares a NAME (helpers declare none)."""
    found = {}
    for info in pkgutil.iter_modules(registry.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{registry.__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found[info.name] = module
    return found


def test_every_module_satisfies_the_protocol() -> None:
    modules = _instrumentation_modules()
    assert set(NEW) <= set(modules)
    for name, module in modules.items():
        assert isinstance(module, Instrumentation), f"{name} misses part of the contract"
        assert name == module.NAME
        for function in ("instrumentor", "instrument", "uninstrument"):
            assert callable(getattr(module, function)), (name, function)


def test_the_hook_table_is_what_the_modules_declare() -> None:
    modules = _instrumentation_modules()
    declared = {name: module.HOOK_MODULE for name, module in modules.items()}  # type: ignore[attr-defined]
    assert declared == HOOK_MODULES
    assert set(KNOWN) == set(modules)


def test_a_module_without_uninstrument_is_rejected() -> None:
    import types

    partial = types.ModuleType("partial")
    partial.NAME = "partial"  # type: ignore[attr-defined]
    partial.HOOK_MODULE = "partial"  # type: ignore[attr-defined]
    partial.instrumentor = lambda: None  # type: ignore[attr-defined]
    partial.instrument = lambda config, provider: None  # type: ignore[attr-defined]
    assert not isinstance(partial, Instrumentation)
    partial.uninstrument = lambda: None  # type: ignore[attr-defined]
    assert isinstance(partial, Instrumentation)
