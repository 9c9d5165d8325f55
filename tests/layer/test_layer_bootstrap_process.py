"""The bootstrap at real interpreter start-up, against a small synthetic layer.

The synthetic set holds a stand-in distro (`lumigo_opentelemetry._autoload`) and a stand-in
`autowrapt`, both recording their calls, so these tests check the bootstrap's own decisions
without the (slow to build) real layer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lumigo_injector.layer.bootstrap import lumigo_bootstrap as boot
from lumigo_injector.layer.build import host_arch, install_bootstrap
from tests.helpers import need
from tests.helpers.layer_apps import (
    WARNING_PREFIX,
    added_entries,
    make_venv,
    plain_env,
    tree_entries,
)

APP = """\
import json, os, sys
try:
    import layerpkg
    value = layerpkg.VALUE
except ImportError:
    value = None
import appmod
custom = sys.modules.get("sitecustomize")
print(json.dumps({
    "last_path": sys.path[-1],
    "hooks": os.environ.get("FAKE_HOOKS_REGISTERED"),
    "distro": os.environ.get("FAKE_DISTRO_STARTED"),
    "autowrapt_bootstrap": os.environ.get("AUTOWRAPT_BOOTSTRAP"),
    "layerpkg": value,
    "sitecustomize": getattr(custom, "__file__", None),
    "app_sitecustomize": os.environ.get("APP_SITECUSTOMIZE"),
    "typing_imported": "typing" in sys.modules,
}))
"""

FAKE_AUTOWRAPT = """\
import os
def register_bootstrap_functions():
    if os.environ.get("FAKE_HOOKS_FAIL"):
        raise RuntimeError("hook registration exploded")
    os.environ["FAKE_HOOKS_REGISTERED"] = os.environ.get("AUTOWRAPT_BOOTSTRAP", "")
"""

FAKE_DISTRO_AUTOLOAD = """\
import os
if os.environ.get("FAKE_HOOKS_FAIL"):
    raise RuntimeError("distro import exploded")
def on_string_import(module):
    # the bootstrap passes `string` only if something imported it already (nothing here)
    name = "started" if module is None else module.__name__
    os.environ["FAKE_DISTRO_STARTED"] = os.environ.get("FAKE_DISTRO_STARTED", "") + name
"""


class Scene:
    """A synthetic layer, an app directory and a venv to run them with."""

    def __init__(self, root: Path, minor: str, compiled: bool = True) -> None:
        self.minor = minor
        self.venv = make_venv(minor, [])
        self.layer = root / "layer"
        self.app = root / "app"
        self.layer.mkdir()
        install_bootstrap(self.layer, [minor] if compiled else [])
        libc = boot.detect_libc()[0] or "glibc"
        self.set_dir = self.layer / f"py{minor}-{libc}-{host_arch()}"
        (self.set_dir / "autowrapt").mkdir(parents=True)
        (self.set_dir / "autowrapt" / "__init__.py").write_text("")
        (self.set_dir / "autowrapt" / "bootstrap.py").write_text(FAKE_AUTOWRAPT)
        (self.set_dir / "lumigo_opentelemetry").mkdir()
        (self.set_dir / "lumigo_opentelemetry" / "__init__.py").write_text("")
        (self.set_dir / "lumigo_opentelemetry" / "_autoload.py").write_text(FAKE_DISTRO_AUTOLOAD)
        (self.set_dir / "layerpkg").mkdir()
        (self.set_dir / "layerpkg" / "__init__.py").write_text("VALUE = 42\n")
        self.write_set_file("dist protobuf 6.33.6\nreq protobuf >=5.0,<7.0 opentelemetry-proto\n")
        self.app.mkdir()
        (self.app / "app.py").write_text(APP)
        (self.app / "appmod.py").write_text("X = 1\n")
        self.shipped = tree_entries(self.layer)

    def write_set_file(self, text: str) -> None:
        (self.set_dir / "lumigo-set.txt").write_text("# synthetic\n" + text)

    def run(self, injected: bool = True, **env: str) -> tuple[dict[str, Any], str, int]:
        path = [str(self.layer / "bootstrap")] if injected else []
        full_env = plain_env(
            PYTHONPATH=":".join([*path, str(self.app)]),
            **{"AUTOWRAPT_BOOTSTRAP": "lumigo_opentelemetry", **env},
        )
        result = subprocess.run(
            [str(self.venv.python), str(self.app / "app.py")],
            env=full_env, cwd=self.app, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        lines = result.stdout.strip().splitlines()
        facts = json.loads(lines[-1]) if result.returncode == 0 and lines else {}
        return facts, result.stderr, result.returncode


@pytest.fixture(params=[("3.9", True), ("3.13", True), ("3.11", False)], ids=str)
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Scene:
    """The bootstrap precompiled for 3.9 and 3.13, and compiled at start-up on 3.11."""
    minor, compiled = request.param
    return Scene(tmp_path, minor, compiled)


@pytest.fixture
def scene311(tmp_path: Path) -> Scene:
    return Scene(tmp_path, "3.11")


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(WARNING_PREFIX)]


def test_activates_set_after_app_paths_and_registers_hooks(scene: Scene) -> None:
    facts, stderr, code = scene.run()
    assert code == 0 and stderr == ""
    assert facts["last_path"] == str(scene.set_dir)
    # the distro's entry point is called directly (`string` is not imported for it);
    # autowrapt is not needed
    assert facts["distro"] == "started"
    assert facts["hooks"] is None
    assert facts["layerpkg"] == 42
    # start-up stays cheap: the bootstrap never imports typing (about 15 ms on 3.9)
    assert facts["typing_imported"] is False
    # the app's own directory got bytecode (so writes were possible), the layer none
    assert (scene.app / "__pycache__").is_dir()
    assert added_entries(scene.layer, scene.shipped) == []
    assert (scene.layer / "bootstrap" / "__pycache__").is_file()


def test_abstains_with_one_line_when_no_set_fits(scene: Scene) -> None:
    baseline, base_err, _ = scene.run(injected=False)
    shutil.rmtree(scene.set_dir)
    facts, stderr, code = scene.run()
    assert code == 0
    assert _warnings(stderr) == [
        f"{WARNING_PREFIX} no package set for CPython {scene.minor} "
        f"({boot.detect_libc()[0]}, {host_arch()}) in this layer; "
        "the app runs without Lumigo tracing"
    ]
    assert stderr.splitlines()[1:] == base_err.splitlines()
    assert facts["layerpkg"] is None and facts["hooks"] is None and facts["distro"] is None
    assert facts["last_path"] == baseline["last_path"]
    assert facts["typing_imported"] is False


def test_abstains_naming_the_conflicting_app_package(scene311: Scene) -> None:
    (scene311.app / "protobuf-3.20.3.dist-info").mkdir()
    facts, stderr, code = scene311.run()
    assert code == 0
    assert _warnings(stderr) == [
        f"{WARNING_PREFIX} the app has protobuf 3.20.3 but opentelemetry-proto needs "
        "protobuf>=5.0,<7.0; the app runs without Lumigo tracing"
    ]
    assert facts["distro"] is None and facts["layerpkg"] is None
    assert str(scene311.set_dir) not in facts["last_path"]


def test_app_copy_that_satisfies_the_set_is_fine(scene311: Scene) -> None:
    (scene311.app / "protobuf-5.29.1.dist-info").mkdir()
    facts, stderr, _ = scene311.run()
    assert stderr == ""
    assert facts["distro"] == "started"


def test_app_with_its_own_distro_keeps_it(scene311: Scene) -> None:
    (scene311.app / "lumigo_opentelemetry-0.0.9.dist-info").mkdir()
    facts, stderr, _ = scene311.run()
    assert len(_warnings(stderr)) == 1
    assert "the app has its own lumigo-opentelemetry 0.0.9" in stderr
    assert facts["layerpkg"] is None


@pytest.mark.parametrize("set_present", [True, False])
def test_app_sitecustomize_runs_either_way(scene311: Scene, set_present: bool) -> None:
    (scene311.app / "sitecustomize.py").write_text(
        "import os\nos.environ['APP_SITECUSTOMIZE'] = 'ran'\nprint('app sitecustomize')\n"
    )
    if not set_present:
        shutil.rmtree(scene311.set_dir)
    facts, _stderr, code = scene311.run()
    assert code == 0
    assert facts["app_sitecustomize"] == "ran"
    assert facts["sitecustomize"] == str(scene311.app / "sitecustomize.py")
    assert (facts["layerpkg"] == 42) is set_present


def test_failing_app_sitecustomize_reported_as_python_would(scene311: Scene) -> None:
    (scene311.app / "sitecustomize.py").write_text("raise ValueError('boom')\n")
    _base, base_err, _ = scene311.run(injected=False)
    facts, stderr, code = scene311.run()
    assert code == 0
    assert "Error in sitecustomize; set PYTHONVERBOSE for traceback:\nValueError: boom" in base_err
    assert stderr == base_err
    assert facts["layerpkg"] == 42
    # as Python drops a module whose import failed, the app's half-run one is not left in
    # sys.modules (without the layer none is; with it, the layer's own hook module stays)
    assert _base["sitecustomize"] is None
    assert facts["sitecustomize"] == str(scene311.layer / "bootstrap" / "sitecustomize.py")


def test_failing_app_sitecustomize_traceback_with_pythonverbose(scene311: Scene) -> None:
    """PYTHONVERBOSE shows the failing sitecustomize's traceback, with the layer as without."""
    (scene311.app / "sitecustomize.py").write_text("raise ValueError('boom')\n")
    for injected in (False, True):
        facts, stderr, code = scene311.run(injected=injected, PYTHONVERBOSE="1")
        assert code == 0 and facts["layerpkg"] == (42 if injected else None)
        tail = stderr[stderr.index("Traceback (most recent call last):") :]
        assert "ValueError: boom" in tail
        assert "Error in sitecustomize" not in stderr


def test_the_warning_is_written_at_once(scene311: Scene) -> None:
    """The abstention line reaches stderr before the app runs, even through a block-buffered
    stream the app's sitecustomize installed and an app that ends with os._exit."""
    (scene311.app / "sitecustomize.py").write_text(
        "import io, sys\n"
        "sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, 'w', closefd=False)))\n"
    )
    (scene311.app / "protobuf-3.20.3.dist-info").mkdir()
    (scene311.app / "app.py").write_text("import os\nos._exit(0)\n")
    _facts, stderr, code = scene311.run()
    assert code == 0
    assert _warnings(stderr) == [
        f"{WARNING_PREFIX} the app has protobuf 3.20.3 but opentelemetry-proto needs "
        "protobuf>=5.0,<7.0; the app runs without Lumigo tracing"
    ]


def test_a_broken_path_hook_costs_the_app_sitecustomize_only_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """In-process: a path hook (e.g. from an app's `.pth`) that raises while the bootstrap
    looks for the app's sitecustomize is reported in one line, and start-up goes on."""

    def broken_hook(path: str) -> Any:
        raise RuntimeError("hook exploded")

    odd = str(tmp_path / "odd-entry")
    monkeypatch.setattr(boot.sys, "path", [odd])
    monkeypatch.setattr(boot.sys, "path_hooks", [broken_hook])
    monkeypatch.setattr(boot.sys, "path_importer_cache", {})
    assert boot.run_app_sitecustomize(str(tmp_path / "layer" / "bootstrap")) is None
    assert capsys.readouterr().err == (
        f"{WARNING_PREFIX} could not look for the app's sitecustomize "
        "(RuntimeError: hook exploded)\n"
    )


def test_app_sitecustomize_exit_is_kept(scene311: Scene) -> None:
    """A SystemExit in the app's sitecustomize ends start-up exactly as without the layer."""
    (scene311.app / "sitecustomize.py").write_text("raise SystemExit(7)\n")
    _base, base_err, base_code = scene311.run(injected=False)
    _facts, stderr, code = scene311.run()
    assert base_code != 0 and code == base_code
    assert base_err.splitlines()[-1] == stderr.splitlines()[-1] == "SystemExit: 7"


def test_broken_layer_means_untraced_app(scene311: Scene) -> None:
    (scene311.set_dir / "lumigo-set.txt").unlink()
    facts, stderr, code = scene311.run()
    assert code == 0 and facts["layerpkg"] is None
    [warning] = _warnings(stderr)
    assert "failed to start" in warning and "lumigo-set.txt" in warning


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("lumigo_opentelemetry", "distro import exploded"),
        ("other,lumigo_opentelemetry", "hook registration exploded"),
    ],
)
def test_hook_registration_failure_leaves_path_untouched(
    scene311: Scene, groups: str, message: str
) -> None:
    facts, stderr, code = scene311.run(FAKE_HOOKS_FAIL="1", AUTOWRAPT_BOOTSTRAP=groups)
    assert code == 0
    [warning] = _warnings(stderr)
    assert message in warning
    assert facts["layerpkg"] is None and facts["last_path"] != str(scene311.set_dir)


@pytest.mark.parametrize(
    ("groups", "distro", "autowrapt"),
    [
        ("lumigo_opentelemetry", "started", None),
        (" other , lumigo_opentelemetry,third", "started", "other,third"),
        ("other", "started", "other"),
        ("lumigo_opentelemetry,lumigo_opentelemetry", "startedstarted", None),
        ("", "started", None),
    ],
)
def test_other_groups_go_through_autowrapt(
    scene311: Scene, groups: str, distro: str | None, autowrapt: str | None
) -> None:
    """The distro's group is started directly; autowrapt registers only the other groups,
    and the app still sees AUTOWRAPT_BOOTSTRAP as it was set."""
    facts, stderr, code = scene311.run(AUTOWRAPT_BOOTSTRAP=groups)
    assert code == 0 and stderr == ""
    assert facts["distro"] == distro
    assert facts["hooks"] == autowrapt
    assert facts["autowrapt_bootstrap"] == groups
    assert facts["layerpkg"] == 42


def test_debug_line_names_what_started(scene311: Scene) -> None:
    """LUMIGO_DEBUG's `activated` line says which groups really started."""
    facts, stderr, code = scene311.run(AUTOWRAPT_BOOTSTRAP="other", LUMIGO_DEBUG="true")
    assert code == 0 and facts["distro"] == "started"
    set_name = scene311.set_dir.name
    assert _warnings(stderr) == [
        f"{WARNING_PREFIX} activated {set_name}, started lumigo_opentelemetry, other"
    ]


def test_disabled_by_environment(scene311: Scene) -> None:
    facts, stderr, _ = scene311.run(LUMIGO_LAYER_DISABLE="true")
    assert _warnings(stderr) == [
        f"{WARNING_PREFIX} disabled by LUMIGO_LAYER_DISABLE; the app runs without Lumigo tracing"
    ]
    assert facts["layerpkg"] is None


def test_too_old_glibc_abstains(scene311: Scene) -> None:
    if boot.detect_libc()[0] != "glibc":
        need.missing("glibc host only")
    scene311.write_set_file("glibc 99.0\n")
    facts, stderr, _ = scene311.run()
    [warning] = _warnings(stderr)
    assert "older than the 99.0 the layer needs" in warning
    assert facts["layerpkg"] is None


def test_a_glibc_exactly_as_new_as_the_set_needs_is_enough(scene311: Scene) -> None:
    libc, version = boot.detect_libc()
    if libc != "glibc":
        need.missing("glibc host only")
    scene311.write_set_file(f"glibc {'.'.join(map(str, version))}\n")
    facts, stderr, code = scene311.run()
    assert code == 0 and stderr == ""
    assert facts["layerpkg"] == 42


def test_a_directory_the_app_adds_at_run_time_gets_its_bytecode(scene311: Scene) -> None:
    """Only the layer is kept free of `__pycache__`: a plugin directory the app puts on
    sys.path after start-up gets bytecode as without the layer."""
    plugins = scene311.app / "plugins"
    plugins.mkdir()
    (plugins / "plugin.py").write_text("NAME = 'plugin'\n")
    (scene311.app / "app.py").write_text(
        f"import json, sys\nsys.path.insert(0, {str(plugins)!r})\n"
        "import plugin\nprint(json.dumps({'plugin': plugin.NAME}))\n"
    )
    facts, stderr, code = scene311.run()
    assert code == 0 and stderr == "" and facts == {"plugin": "plugin"}
    assert (plugins / "__pycache__").is_dir()
    assert added_entries(scene311.layer, scene311.shipped) == []


def test_pth_files_the_set_lists_are_processed(scene311: Scene) -> None:
    extra = scene311.set_dir / "extra_dir"
    extra.mkdir()
    (extra / "pthmod.py").write_text("VALUE = 'from a .pth path'\n")
    (scene311.set_dir / "extra.pth").write_text("extra_dir\n")
    scene311.write_set_file("pth extra.pth\n")
    (scene311.app / "app.py").write_text(
        "import sys\nimport pthmod\nprint(pthmod.VALUE, sys.path[-1])\n"
    )
    result = subprocess.run(
        [str(scene311.venv.python), str(scene311.app / "app.py")],
        env=plain_env(PYTHONPATH=str(scene311.layer / "bootstrap")),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stderr == ""
    assert result.stdout.strip() == f"from a .pth path {extra}"


def test_a_second_layer_copy_on_the_path_is_not_run_as_the_app_sitecustomize(
    scene311: Scene, tmp_path: Path
) -> None:
    other = tmp_path / "other-layer"
    other.mkdir()
    install_bootstrap(other)
    (scene311.app / "sitecustomize.py").write_text(
        "import os\n"
        "os.environ['APP_SITECUSTOMIZE'] = os.environ.get('APP_SITECUSTOMIZE', '') + 'x'\n"
    )
    result = subprocess.run(
        [str(scene311.venv.python), str(scene311.app / "app.py")],
        env=plain_env(
            PYTHONPATH=f"{scene311.layer / 'bootstrap'}:{other / 'bootstrap'}:{scene311.app}",
            AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
        ),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stderr == ""
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["app_sitecustomize"] == "x"
    assert facts["layerpkg"] == 42
