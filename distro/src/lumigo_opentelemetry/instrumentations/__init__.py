"""The instrumentation registry: one lazy post-import hook per supported library.

`install_hooks()` registers, for every enabled name in `KNOWN`, a post-import hook
(`_post_import.when_imported`) on the library's module `HOOK_MODULES[name]`. Nothing of
the library, of its instrumentation or of wrapt is imported until the application
imports that module. Then the hook imports `lumigo_opentelemetry.instrumentations.<name>`,
checks the installed library version against the range the upstream instrumentor
declares (read from its distribution's metadata where the module names it, see
`_version_gate`; out of range: one info line, the library is left alone; the same range
as the upstream distro, so a team switching to the layer loses no library it traced) and
calls its `instrument(config, tracer_provider)`.

Every instrumentation module satisfies the `Instrumentation` protocol (mypy checks each
module against it below; a test checks it at run time and that `HOOK_MODULES` is exactly
what the modules declare). The table is spelled out here rather than read from the
modules because reading it would import every instrumentation module at start-up.

A library imported by an OpenTelemetry contrib instrumentation module's own top-level
imports (an app doing some manual instrumentation runs `from
opentelemetry.instrumentation.psycopg import PsycopgInstrumentor` before `import
psycopg`) fires its hook while that contrib module is half executed, when `instrument()`
cannot import from it yet. `install_hooks` therefore also watches each enabled
instrumentation's contrib module (`CONTRIB_PREFIX + name`: its loader is wrapped when it
is imported, no import of it at start-up) and the hook, when it finds a watched contrib
module executing on its own thread's stack, defers the activation until that module's
execution returns (`_post_import.after_import`): the library is instrumented once,
before the import statement that brought it in returns to the app.

Every step is guarded: a failure is logged and the application runs untraced.
"""

from __future__ import annotations

import _thread  # `threading` itself is not imported at start-up (it costs milliseconds)
import importlib
import sys

from lumigo_opentelemetry._logging import logger  # imports logging on first use
from lumigo_opentelemetry.instrumentations._post_import import after_import, watch, when_imported

TYPE_CHECKING = False  # typing is not imported at start-up (it costs milliseconds)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable, Dict, List, Optional, Set, Tuple

    from opentelemetry.sdk.trace import TracerProvider

    from lumigo_opentelemetry.config import Config
    from lumigo_opentelemetry.instrumentations._contract import Instrumentation


def __getattr__(name: str) -> Any:
    # The protocol needs `typing` at run time, which start-up does not import.
    if name == "Instrumentation":
        from lumigo_opentelemetry.instrumentations._contract import Instrumentation

        return Instrumentation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: instrumentation name -> the module whose import activates it
HOOK_MODULES: Dict[str, str] = {
    "flask": "flask",
    "fastapi": "fastapi",
    "botocore": "botocore",
    "pymongo": "pymongo",
    "pymysql": "pymysql",
    "requests": "requests",
    "django": "django",
    "psycopg2": "psycopg2",
    "psycopg": "psycopg",
    "redis": "redis",
    "pika": "pika",
    "grpc": "grpc",
    "httpx": "httpx",
    "langchain": "langchain_core",
}
KNOWN: Tuple[str, ...] = tuple(HOOK_MODULES)
#: the package of the contrib instrumentation of `name` is CONTRIB_PREFIX + name
CONTRIB_PREFIX = "opentelemetry.instrumentation."
#: instrumentations that ask their provider for a tracer only when they first trace:
#: the hook gives them a stand-in, and the provider is built then, not at the import
PROVIDER_ON_FIRST_TRACER = frozenset({"flask", "fastapi"})

if TYPE_CHECKING:
    # mypy checks every module against the protocol here
    from lumigo_opentelemetry.instrumentations import (
        botocore,
        django,
        fastapi,
        flask,
        grpc,
        httpx,
        langchain,
        pika,
        psycopg,
        psycopg2,
        pymongo,
        pymysql,
        redis,
        requests,
    )

    _CHECKED: Tuple[Instrumentation, ...] = (
        botocore, django, fastapi, flask, grpc, httpx, langchain,
        pika, psycopg, psycopg2, pymongo, pymysql, redis, requests,
    )  # fmt: skip

_lock = _thread.RLock()
_activated: Set[str] = set()


def module_name(name: str) -> str:
    return f"{__name__}.{name}"


def version_conflict(instrumentation: ModuleType) -> Optional[str]:
    """Why the installed library is outside the instrumentor's declared range, or None.

    A module naming its instrumentor's distribution (`INSTRUMENTOR_DISTRIBUTION`) is
    first checked from that distribution's metadata (`_version_gate`), without
    importing the instrumentor; only when that cannot tell is the instrumentor asked.
    """
    distribution = getattr(instrumentation, "INSTRUMENTOR_DISTRIBUTION", None)
    if distribution is not None:
        from lumigo_opentelemetry.instrumentations._version_gate import in_declared_range

        if in_declared_range(distribution):
            return None
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    requirements = instrumentation.instrumentor().instrumentation_dependencies()
    conflict = get_dependency_conflicts(list(requirements))
    return None if conflict is None else str(conflict)


def activate(name: str, config: Config, tracer_provider: TracerProvider) -> bool:
    """Instrument `name` now (once per process); True when instrumented.

    Called by the post-import hook; safe to call directly. Never raises.
    """
    with _lock:
        if name in _activated:
            return True
        try:
            instrumentation = importlib.import_module(module_name(name))
            conflict = version_conflict(instrumentation)
            if conflict is not None:
                logger.info("%s is not instrumented: %s", name, conflict)
                return False
            instrumentation.instrument(config, tracer_provider)
        except Exception as exc:
            logger.warning("%s is not instrumented: its instrumentation failed (%s)", name, exc)
            logger.debug("instrumentation %s failed", name, exc_info=True)
            return False
        _activated.add(name)
        logger.debug("%s instrumented", name)
        return True


def install_hooks(config: Config, hook_for: Callable[[str], Callable[[Any], None]]) -> None:
    """Register `hook_for(name)` as the post-import hook of every enabled instrumentation
    (it calls `activate` with the provider it chooses); never raises.

    A library imported before this call is hooked at once.
    """
    for name, hook_module in HOOK_MODULES.items():
        if not config.instrumentation_enabled(name):
            logger.debug("%s is disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", name)
            continue
        try:
            watch(CONTRIB_PREFIX + name)
            when_imported(hook_module, _after_contrib_imports(name, hook_for(name)))
        except Exception as exc:
            logger.warning("%s is not instrumented: its import hook failed (%s)", name, exc)


def _after_contrib_imports(name: str, hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """`hook`, run once no watched contrib module is executing around this import."""

    def run(module: Any) -> None:
        for contrib in _contrib_modules_executing():
            if after_import(contrib, lambda _contrib: hook(module)):
                logger.debug("%s: instrumenting once %s is imported", name, contrib)
                return
        hook(module)

    return run


def _contrib_modules_executing() -> List[str]:
    """Names of the contrib modules whose body is executing on this thread, outermost first.

    Read from the stack (module bodies are `<module>` frames), so an import of the same
    module under way on another thread does not count.
    """
    get_frame = getattr(sys, "_getframe", None)
    frame = get_frame(1) if get_frame is not None else None
    names: List[str] = []
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            module_name = frame.f_globals.get("__name__")
            if isinstance(module_name, str) and module_name.startswith(CONTRIB_PREFIX):
                names.append(module_name)
        frame = frame.f_back
    names.reverse()
    return names
