"""Post-import hooks: call back right after a module is imported, without importing wrapt.

`when_imported(name, callback)` calls `callback(module)` once, right after the module
`name` has been executed by its first import, or at once when it is already imported.
A finder at the front of `sys.meta_path` sees imports of names that have a pending
callback, lets the other finders find the module, and wraps the found loader so that
the callbacks run once `exec_module` returns. Imports of every other name pass through
at the cost of one dict lookup.

wrapt's equivalent imports wrapt, asyncio and importlib.metadata: tens of milliseconds
at every start-up, for an app that may never import an instrumented library. A module
whose loader predates `exec_module` (load_module only, e.g. zipimport on Python 3.9) is
handed to wrapt's hook, which supports such loaders.

A callback that raises is logged; the exception never reaches the import.

`watch(name)` has the finder wrap the loader of `name` at its import with no callback
waiting yet, so that `after_import(name, callback)` can still be told, from inside that
module's execution (e.g. by a hook fired by an import the module makes at its top), when
the module has finished: the registry watches the contrib instrumentation modules this
way, to instrument a library imported by its contrib module only once that module is
whole. A watched name costs the other imports nothing (it is one more key of the dict
they already look up); the names imported are found as before, their loader wrapped.
"""

from __future__ import annotations

import _thread  # `threading` itself is not imported at start-up (it costs milliseconds)
import sys

from lumigo_opentelemetry._logging import logger  # imports logging on first use

TYPE_CHECKING = False  # typing is not imported at start-up (it costs milliseconds)
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Callable, Dict, List, Optional, Sequence, Set

    Callback = Callable[[ModuleType], None]


_lock = _thread.RLock()
_pending: Dict[str, List[Callback]] = {}
_finder: Optional[PostImportFinder] = None
_executing: Set[str] = set()  # names whose wrapped loader is executing the module now
_LEGACY = object()  # marks a find_module-only finder


def when_imported(name: str, callback: Callback) -> None:
    """Call `callback(module)` once `name` is imported (now, if it already is)."""
    with _ImportLock(name), _lock:
        module = sys.modules.get(name)
        if module is None:
            _pending.setdefault(name, []).append(callback)
            _install_finder()
            return
    _call(callback, module, name)


class _ImportLock:
    """The import system's own lock for one module name, held while registering.

    An import of `name` already under way on another thread (past the finders, before
    the module is in `sys.modules`) would otherwise miss a callback registered meanwhile:
    with the lock, it either finishes first (the callback then runs at once) or waits
    until the callback is pending (the finder then sees it). Without the lock (an
    interpreter without `_ModuleLockManager`, or a would-be deadlock), registration goes
    ahead unlocked.
    """

    def __init__(self, name: str) -> None:
        self._manager: Any = None
        factory = getattr(sys.modules.get("_frozen_importlib"), "_ModuleLockManager", None)
        if factory is not None:
            self._manager = factory(name)

    def __enter__(self) -> None:
        if self._manager is not None:
            try:
                self._manager.__enter__()
            except Exception:  # e.g. importlib's _DeadlockError
                self._manager = None

    def __exit__(self, *exc_info: object) -> None:
        if self._manager is not None:
            self._manager.__exit__(*exc_info)


def watch(name: str) -> None:
    """Wrap the loader of `name` at its next import, so `after_import` can follow it.

    No-op for a module already imported.
    """
    with _lock:
        if name not in sys.modules:
            _pending.setdefault(name, [])
            _install_finder()


def after_import(name: str, callback: Callback) -> bool:
    """Call `callback(module)` once the import of `name` under way has finished.

    True when `name` is being executed by a loader wrapped here (see `watch`): the
    callback then runs right after that execution returns, before the import hands the
    module to its importer. False, and nothing registered, otherwise.
    """
    with _lock:
        if name not in _executing:
            return False
        _pending.setdefault(name, []).append(callback)
        return True


def pending() -> Dict[str, int]:
    """{module name: number of callbacks still waiting} (for tests and debugging).

    Names only watched (no callback waiting) are left out.
    """
    with _lock:
        return {name: len(callbacks) for name, callbacks in _pending.items() if callbacks}


def _install_finder() -> None:
    global _finder
    if _finder is None or _finder not in sys.meta_path:
        _finder = PostImportFinder()
        sys.meta_path.insert(0, _finder)


def _call(callback: Callback, module: ModuleType, name: str) -> None:
    try:
        callback(module)
    except Exception as exc:
        logger.warning("post-import hook for %s failed: %r", name, exc)
        logger.debug("post-import hook for %s failed", name, exc_info=True)


def _notify(name: str, module: ModuleType) -> None:
    """Run (and forget) the callbacks waiting for `name`."""
    with _lock:
        _executing.discard(name)
        callbacks = _pending.pop(name, [])
    for callback in callbacks:
        _call(callback, module, name)


class PostImportFinder:
    """A `sys.meta_path` finder that only ever wraps the loader other finders found."""

    def __init__(self) -> None:
        self._searching = _thread._local()

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Any:  # Optional[ModuleSpec]
        if fullname not in _pending:  # the fast path for every other import
            return None
        searching: Set[str] = self._searching.__dict__.setdefault("names", set())
        if fullname in searching:  # another finder asked the whole meta path again
            return None
        searching.add(fullname)
        try:
            spec = self._find_after_self(fullname, path, target)
            if spec is _LEGACY:
                return _hand_to_wrapt(fullname, path, target)
            if spec is None or spec.loader is None or isinstance(spec.loader, _NotifyingLoader):
                return spec
            if hasattr(spec.loader, "exec_module") and hasattr(spec.loader, "create_module"):
                spec.loader = _NotifyingLoader(spec.loader, fullname)
                return spec
            return _hand_to_wrapt(fullname, path, target) or spec
        finally:
            searching.discard(fullname)

    def _find_after_self(self, fullname: str, path: Optional[Sequence[str]], target: Any) -> Any:
        """What the finders after this one find, as the import system would ask them.

        `_LEGACY` when a finder with only `find_module` (Python < 3.12) comes first.
        """
        finders = list(sys.meta_path)
        start = finders.index(self) + 1 if self in finders else 0
        for finder in finders[start:]:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                if getattr(finder, "find_module", None) is not None:
                    return _LEGACY
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        return None


class _NotifyingLoader:
    """Wraps a loader: the module is executed by it, then the callbacks run.

    The module keeps the real loader (`__loader__`, `__spec__.loader`); anything else
    asked of this wrapper during the import is answered by the real loader.
    """

    def __init__(self, loader: Any, name: str) -> None:
        self._lumigo_loader = loader
        self._lumigo_name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._lumigo_loader, attribute)

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        module: Optional[ModuleType] = self._lumigo_loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._lumigo_loader
        module_spec = getattr(module, "__spec__", None)
        if module_spec is not None and module_spec.loader is self:
            module_spec.loader = self._lumigo_loader
        name = self._lumigo_name
        with _lock:
            _executing.add(name)
        try:
            self._lumigo_loader.exec_module(module)
        except BaseException:
            # the callbacks stay pending: a later import of `name` may still succeed
            with _lock:
                _executing.discard(name)
            raise
        _notify(name, sys.modules.get(name, module))


def _hand_to_wrapt(fullname: str, path: Optional[Sequence[str]], target: Any) -> Any:
    """For a loader without exec_module: let wrapt's hook (it wraps load_module) run ours."""
    with _lock:
        callbacks = _pending.pop(fullname, [])
    if not callbacks:
        return None
    try:
        import wrapt
        from wrapt.importer import ImportHookFinder

        for callback in callbacks:
            wrapt.register_post_import_hook(_guarded(callback, fullname), fullname)
        for finder in sys.meta_path:
            if isinstance(finder, ImportHookFinder):
                return finder.find_spec(fullname, path, target)
    except Exception as exc:
        logger.warning("post-import hook for %s unavailable: %r", fullname, exc)
    return None


def _guarded(callback: Callback, name: str) -> Callback:
    def run(module: ModuleType) -> None:
        _call(callback, module, name)

    return run
