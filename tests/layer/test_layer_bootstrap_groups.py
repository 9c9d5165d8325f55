"""Which groups the bootstrap starts, in-process: the distro directly, the others through
autowrapt, and an autowrapt the app loaded itself told that registration is done.

The same decisions at real interpreter start-up: test_layer_bootstrap_process.py (slower).
"""

from __future__ import annotations

import os
import sys
import types

import pytest

from lumigo_injector.layer.bootstrap import lumigo_bootstrap as boot

HOOK_MODULE = "lumigo_test_fake_distro_hook"


class StandIns:
    """A recording distro hook and a recording `autowrapt.bootstrap` in sys.modules."""

    def __init__(self) -> None:
        self.distro: list[str] = []
        self.autowrapt: list[str] = []
        self.autowrapt_module = types.ModuleType("autowrapt.bootstrap")
        self.autowrapt_module.__dict__["register_bootstrap_functions"] = self._register

    def _register(self) -> None:
        self.autowrapt.append(os.environ.get("AUTOWRAPT_BOOTSTRAP", ""))


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> StandIns:
    found = StandIns()
    hook = types.ModuleType(HOOK_MODULE)
    hook.__dict__["on_string_import"] = lambda module: found.distro.append(module.__name__)
    monkeypatch.setitem(sys.modules, HOOK_MODULE, hook)
    monkeypatch.setattr(boot, "DISTRO_HOOK", f"{HOOK_MODULE}:on_string_import")
    monkeypatch.setitem(sys.modules, "autowrapt", types.ModuleType("autowrapt"))
    monkeypatch.setitem(sys.modules, "autowrapt.bootstrap", found.autowrapt_module)
    monkeypatch.setenv("AUTOWRAPT_BOOTSTRAP", "as the app set it")
    return found


@pytest.mark.parametrize(
    ("groups", "started", "distro", "autowrapt"),
    [
        ("lumigo_opentelemetry", ["lumigo_opentelemetry"], ["string"], []),
        (
            " other , lumigo_opentelemetry,third",
            ["other", "lumigo_opentelemetry", "third"],
            ["string"],
            ["other,third"],
        ),
        ("other", ["lumigo_opentelemetry", "other"], ["string"], ["other"]),
        (
            "lumigo_opentelemetry,lumigo_opentelemetry",
            ["lumigo_opentelemetry", "lumigo_opentelemetry"],
            ["string", "string"],
            [],
        ),
        ("", ["lumigo_opentelemetry"], ["string"], []),
    ],
)
def test_the_distro_starts_directly_and_other_groups_through_autowrapt(
    stand_ins: StandIns,
    groups: str,
    started: list[str],
    distro: list[str],
    autowrapt: list[str],
) -> None:
    assert boot.start_bootstrap_groups(groups) == started
    assert stand_ins.distro == distro
    assert stand_ins.autowrapt == autowrapt  # one registration, of the other groups only
    assert os.environ["AUTOWRAPT_BOOTSTRAP"] == "as the app set it"


def test_an_unset_autowrapt_variable_stays_unset(
    stand_ins: StandIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOWRAPT_BOOTSTRAP")
    boot.start_bootstrap_groups("other")
    assert stand_ins.autowrapt == ["other"]
    assert "AUTOWRAPT_BOOTSTRAP" not in os.environ


def test_an_autowrapt_the_app_loaded_is_told_not_to_discover_again(
    stand_ins: StandIns,
) -> None:
    """With the distro the only group, autowrapt's own `.pth` would otherwise run its
    entry-point discovery after this sitecustomize, importing wrapt and importlib.metadata
    at every start only to find the distro already started."""
    stand_ins.autowrapt_module.__dict__["_registered"] = False
    boot.start_bootstrap_groups("lumigo_opentelemetry")
    assert stand_ins.autowrapt_module.__dict__["_registered"] is True
    assert stand_ins.autowrapt == []
