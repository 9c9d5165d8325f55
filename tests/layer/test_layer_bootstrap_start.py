"""How the layer bootstrap starts the groups AUTOWRAPT_BOOTSTRAP names (no subprocess)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
import tomllib

from lumigo_injector.layer.bootstrap import lumigo_bootstrap as boot

DISTRO_PYPROJECT = Path(__file__).resolve().parents[2] / "distro" / "pyproject.toml"


def test_the_distro_hook_is_the_distros_only_entry_point() -> None:
    """The bootstrap calls the entry point directly, so it must match what autowrapt finds."""
    project = tomllib.loads(DISTRO_PYPROJECT.read_text())["project"]
    group = project["entry-points"][boot.DISTRO_GROUP]
    assert group == {boot.DISTRO_HOOK_MODULE: boot.DISTRO_HOOK}


class _Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        monkeypatch.setattr(boot, "start_distro", lambda: self.calls.append("distro"))
        monkeypatch.setattr(
            boot, "register_with_autowrapt", lambda groups: self.calls.append(",".join(groups))
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("lumigo_opentelemetry", ["distro"]),
        ("a,lumigo_opentelemetry,b", ["a,b", "distro"]),
        ("lumigo_opentelemetry, a", ["distro", "a"]),
        ("a", ["distro", "a"]),
        (" , ", ["distro"]),
        ("", ["distro"]),
    ],
)
def test_groups_are_started_in_order(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    """The distro always starts (PYTHONPATH alone activates the layer), first unless placed."""
    recorder = _Recorder(monkeypatch)
    started = boot.start_bootstrap_groups(value)
    assert recorder.calls == expected
    assert boot.DISTRO_GROUP in started


def _fake_autowrapt(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    fake = ModuleType("autowrapt.bootstrap")
    fake._registered = False  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "autowrapt.bootstrap", fake)
    return fake


def test_an_autowrapt_the_app_loaded_is_told_registration_is_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Else its own site hook would import wrapt and importlib.metadata after us."""
    _Recorder(monkeypatch)
    fake = _fake_autowrapt(monkeypatch)
    boot.start_bootstrap_groups("lumigo_opentelemetry")
    assert fake._registered is True  # type: ignore[attr-defined]


def test_other_groups_leave_the_registration_to_autowrapt(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _Recorder(monkeypatch)
    fake = _fake_autowrapt(monkeypatch)
    boot.start_bootstrap_groups("lumigo_opentelemetry,other")
    assert fake._registered is False  # type: ignore[attr-defined]
    assert recorder.calls == ["distro", "other"]
