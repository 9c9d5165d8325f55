"""The distro's own post-import hook (`instrumentations._post_import.when_imported`).

Real imports of real files: every test writes uniquely named modules into its own
directory on `sys.path`, so the finder sees them exactly as it sees an app's libraries.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lumigo_opentelemetry.instrumentations import _post_import
from lumigo_opentelemetry.instrumentations._post_import import when_imported


class Calls:
    """A callback recording (thread, module name, module attributes seen at call time)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.threads: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, module: ModuleType) -> None:
        with self._lock:
            self.seen.append((module.__name__, dict(vars(module))))
            self.threads.append(threading.get_ident())

    @property
    def names(self) -> list[str]:
        return [name for name, _attrs in self.seen]


@pytest.fixture
def libs(tmp_path: Path) -> Iterator[Libs]:
    found = Libs(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        yield found
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] in found.made]:
            del sys.modules[name]
        with _post_import._lock:
            for name in [n for n in _post_import._pending if n.split(".")[0] in found.made]:
                del _post_import._pending[name]


class Libs:
    """Writes uniquely named modules and packages into one `sys.path` directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: set[str] = set()

    def module(self, body: str = "") -> str:
        name = f"lib_{uuid.uuid4().hex[:12]}"
        (self.root / f"{name}.py").write_text(body + "\nFINISHED = True\n")
        self.made.add(name)
        importlib.invalidate_caches()
        return name

    def package(self, submodules: dict[str, str]) -> str:
        name = f"pkg_{uuid.uuid4().hex[:12]}"
        folder = self.root / name
        folder.mkdir()
        (folder / "__init__.py").write_text("FINISHED = True\n")
        for sub, body in submodules.items():
            (folder / f"{sub}.py").write_text(body + "\nFINISHED = True\n")
        self.made.add(name)
        importlib.invalidate_caches()
        return name


def test_fires_right_after_the_module_ran_with_the_real_loader(libs: Libs) -> None:
    name = libs.module("VALUE = 42")
    calls = Calls()
    when_imported(name, calls)
    assert calls.seen == []
    module = importlib.import_module(name)
    [(seen_name, attrs)] = calls.seen
    assert seen_name == name
    assert attrs["VALUE"] == 42 and attrs["FINISHED"] is True  # the whole body had run
    # the module keeps the loader that found it: nothing of the hook is left on it
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader
    assert module.__spec__ is not None
    assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader
    assert name not in _post_import.pending()


def test_fires_at_once_for_an_already_imported_module(libs: Libs) -> None:
    name = libs.module()
    module = importlib.import_module(name)
    calls = Calls()
    when_imported(name, calls)
    assert calls.names == [name]
    assert calls.threads == [threading.get_ident()]
    assert sys.modules[name] is module


def test_fires_once_per_callback_even_when_imported_again(libs: Libs) -> None:
    name = libs.module()
    first, second = Calls(), Calls()
    when_imported(name, first)
    when_imported(name, second)
    importlib.import_module(name)
    del sys.modules[name]
    importlib.import_module(name)  # a fresh execution of the module: no second call
    importlib.reload(sys.modules[name])
    assert first.names == [name] and second.names == [name]


def test_from_import_of_a_submodule_and_the_package(libs: Libs) -> None:
    package = libs.package({"sub": "X = 1", "other": "Y = 2"})
    on_package, on_sub, on_other = Calls(), Calls(), Calls()
    when_imported(package, on_package)
    when_imported(f"{package}.sub", on_sub)
    when_imported(f"{package}.other", on_other)

    namespace: dict[str, Any] = {}
    exec(f"from {package} import sub", namespace)
    assert namespace["sub"].X == 1
    assert on_package.names == [package]
    assert on_package.seen[0][1]["FINISHED"] is True  # after the package's __init__ ran
    assert on_sub.names == [f"{package}.sub"]
    assert on_other.names == []  # not imported yet

    importlib.import_module(f"{package}.other")
    assert on_other.names == [f"{package}.other"]


def test_import_statement_of_a_dotted_name(libs: Libs) -> None:
    package = libs.package({"sub": "X = 1"})
    calls = Calls()
    when_imported(f"{package}.sub", calls)
    exec(f"import {package}.sub", {})
    assert calls.names == [f"{package}.sub"]


def test_a_failing_callback_never_reaches_the_import(
    libs: Libs, caplog: pytest.LogCaptureFixture
) -> None:
    name = libs.module("VALUE = 7")
    after = Calls()

    def explode(_module: ModuleType) -> None:
        raise RuntimeError("callback exploded")

    when_imported(name, explode)
    when_imported(name, after)
    with caplog.at_level(logging.WARNING, logger="lumigo-opentelemetry"):
        module = importlib.import_module(name)
    assert module.VALUE == 7
    assert after.names == [name]  # the next callback still ran
    assert "callback exploded" in caplog.text

    # already imported: the callback runs at once, and still never raises
    when_imported(name, explode)


def test_a_module_that_fails_to_import_fires_once_it_imports(libs: Libs) -> None:
    name = libs.module("raise ValueError('not yet')")
    calls = Calls()
    when_imported(name, calls)
    with pytest.raises(ValueError, match="not yet"):
        importlib.import_module(name)
    assert calls.seen == [] and name not in sys.modules
    (libs.root / f"{name}.py").write_text("FINISHED = True\n")
    importlib.invalidate_caches()
    importlib.import_module(name)
    assert calls.names == [name]


def test_a_missing_module_raises_as_usual(libs: Libs) -> None:
    name = f"lib_missing_{uuid.uuid4().hex[:12]}"
    libs.made.add(name)
    when_imported(name, Calls())
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)
    assert _post_import.pending()[name] == 1  # still waiting, should it appear later


def test_concurrent_imports_fire_exactly_once(libs: Libs) -> None:
    names = [libs.module("import time\ntime.sleep(0.01)") for _ in range(4)]
    calls = Calls()
    for name in names:
        when_imported(name, calls)
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for offset in range(len(names)):
                importlib.import_module(names[(index + offset) % len(names)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(calls.names) == sorted(names)
    assert all(attrs["FINISHED"] for _name, attrs in calls.seen)


def test_registering_from_many_threads_while_importing(libs: Libs) -> None:
    names = [libs.module() for _ in range(8)]
    calls = Calls()
    barrier = threading.Barrier(len(names) * 2)

    def register(name: str) -> None:
        barrier.wait()
        when_imported(name, calls)

    def load(name: str) -> None:
        barrier.wait()
        importlib.import_module(name)

    threads = [threading.Thread(target=register, args=(n,)) for n in names]
    threads += [threading.Thread(target=load, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # each callback ran exactly once: at registration (already imported) or after the import
    assert sorted(calls.names) == sorted(names)


class _LegacyLoader:
    """A loader from before exec_module (like zipimport on Python 3.9)."""

    def load_module(self, fullname: str) -> ModuleType:
        module = ModuleType(fullname)
        module.FINISHED = True  # type: ignore[attr-defined]
        module.__loader__ = self
        sys.modules[fullname] = module
        return module


class _LegacyFinder:
    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_loader(fullname, _LegacyLoader())  # type: ignore[arg-type]


def test_a_loader_without_exec_module_is_handed_to_wrapt(libs: Libs) -> None:
    name = f"lib_legacy_{uuid.uuid4().hex[:12]}"
    libs.made.add(name)
    finder = _LegacyFinder(name)
    sys.meta_path.append(finder)
    try:
        calls = Calls()
        when_imported(name, calls)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)  # load_module fallback warning
            module = importlib.import_module(name)
        assert module.FINISHED is True
        assert calls.names == [name]
        assert "wrapt" in sys.modules
    finally:
        sys.meta_path.remove(finder)


def test_other_imports_pass_through_untouched(libs: Libs) -> None:
    watched, plain = libs.module(), libs.module()
    when_imported(watched, Calls())
    module = importlib.import_module(plain)
    assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader
    finder = _post_import._finder
    assert finder is not None and finder.find_spec(plain) is None


def test_after_import_runs_once_a_watched_module_mid_import_has_finished(libs: Libs) -> None:
    inner = libs.module("VALUE = 1")
    outer = libs.module(f"import {inner}\nBEFORE_END = True")
    finished: Calls = Calls()
    deferred: list[bool] = []

    def on_inner(module: ModuleType) -> None:
        # fired from inside outer's body: outer is half executed
        assert "FINISHED" not in vars(sys.modules[outer])
        deferred.append(_post_import.after_import(outer, finished))

    _post_import.watch(outer)
    assert outer not in _post_import.pending()  # watched only: nothing waits
    when_imported(inner, on_inner)
    module = importlib.import_module(outer)
    assert deferred == [True]
    [(seen_name, attrs)] = finished.seen  # once, after the whole body, before import returned
    assert seen_name == outer and attrs["FINISHED"] is True
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader
    assert outer not in _post_import._pending


def test_after_import_declines_a_module_it_does_not_follow(libs: Libs) -> None:
    unwatched_inner = libs.module()
    unwatched = libs.module(f"import {unwatched_inner}")
    answers: list[bool] = []
    when_imported(
        unwatched_inner, lambda _m: answers.append(_post_import.after_import(unwatched, Calls()))
    )
    importlib.import_module(unwatched)  # executing, but its loader was not wrapped
    done = libs.module()
    importlib.import_module(done)
    never = libs.module()
    assert answers == [False]
    assert not _post_import.after_import(done, Calls())  # finished already
    assert not _post_import.after_import(never, Calls())  # not being imported
    assert unwatched not in _post_import._pending and never not in _post_import._pending


def test_after_import_waits_for_a_retry_when_the_module_raised(libs: Libs) -> None:
    inner = libs.module()
    outer = libs.module(f"import {inner}\nraise RuntimeError('broken')")
    finished = Calls()
    _post_import.watch(outer)
    when_imported(inner, lambda _m: _post_import.after_import(outer, finished))
    with pytest.raises(RuntimeError):
        importlib.import_module(outer)
    assert finished.seen == [] and _post_import.pending()[outer] == 1
    (libs.root / f"{outer}.py").write_text("FINISHED = True\n")
    importlib.invalidate_caches()
    importlib.import_module(outer)
    assert finished.names == [outer]
