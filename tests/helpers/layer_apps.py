"""Real apps on real interpreters with the layer injected the way a pod gets it.

Reusable by the layer, ECS and demo tests:

- `make_venv("3.11", ["flask"])`: a venv for a pyenv CPython with only those packages,
  built once (uv) and cached by key under the injector cache (`LUMIGO_INJECTOR_CACHE`).
- `layer_for_tests()`: the layer for every supported Python, glibc and musl, this machine's arch,
  built once through `cached_layer` (what the Dockerfile builds).
- `copy_like_init(layer, dest)`: what the init container does (`copy-layer.sh`'s semantics),
  optionally read-only, optionally without some sets.
- `injected_env(copy, receiver_url)` / `plain_env()`: only environment variables.
- `running_app(venv, script, env)`: start the app, wait for its port, stop it (SIGTERM) and
  collect its output as `AppOutput`; `wrapper` prefixes the command line (e.g. a read-only
  mount of the layer, `tests.helpers.init_image.read_only_mount`).
- `write_flask_app(dir)` / `write_fastapi_app(dir)`: small apps whose stdout does not
  depend on whether the layer is active, plus a `/facts` route for assertions.
- `exercise(venv, script, env)`: one full run (start, GET paths and /facts, stop) as data.
- `tree_entries(root)` / `added_entries(root, before)`: what a run wrote into a layer copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from lumigo_injector.layer import SUPPORTED_PYTHONS, cache_root, cached_layer, copy_layer
from tests.helpers.need import executable, pyenv_python

TEST_TOKEN = "t_layer0123456789abcdef"
LAYER_PLATFORMS = ("glibc", "musl")  # what the Dockerfile's init image carries
WARNING_PREFIX = "lumigo-otel layer:"


# --- the layer ---------------------------------------------------------------------------


def layer_for_tests() -> Path:
    """The cached layer (all supported Pythons, glibc and musl, this arch)."""
    return cached_layer(SUPPORTED_PYTHONS, LAYER_PLATFORMS)


def copy_like_init(
    layer: Path,
    dest: Path,
    *,
    read_only: bool = False,
    without_sets: Sequence[str] = (),
) -> Path:
    """Copy `layer` to `dest` as the init container does; `read_only` = chmod -R a-w."""
    copy_layer(layer, dest)
    for name in without_sets:
        shutil.rmtree(dest / name)
    if read_only:
        make_read_only(dest)
    return dest


def make_read_only(root: Path) -> None:
    """chmod -R a-w (directories last, so the walk can finish)."""
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o222)
        os.chmod(folder, os.stat(folder).st_mode & ~0o222)


def make_writable(root: Path) -> None:
    """Undo `make_read_only` so pytest can delete the copy."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)


def tree_entries(root: Path) -> set[str]:
    """Relative paths of every file and directory under `root`."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def added_entries(root: Path, before: set[str]) -> list[str]:
    """What appeared under `root` since `before` (e.g. bytecode Python wrote)."""
    return sorted(tree_entries(root) - before)


# --- venvs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppVenv:
    """A virtual environment for one interpreter."""

    path: Path
    minor: str

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def site_packages(self) -> Path:
        return next((self.path / "lib").glob("python3*/site-packages"))


def make_venv(minor: str, packages: Sequence[str], *, key: str = "") -> AppVenv:
    """A venv for pyenv's CPython `minor` with `packages`, cached by their key.

    `key` separates venvs that differ in something other than the package list (e.g. a
    file the caller adds to site-packages). Skips locally / fails on CI without pyenv's
    interpreter or uv.
    """
    interpreter = pyenv_python(minor)
    uv = executable("uv")
    identity = json.dumps([minor, os.path.realpath(interpreter), sorted(packages), key])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    root = cache_root() / "layer-venvs"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"py{minor}-{digest}"
    ready = path / ".ready"
    if ready.exists():
        return AppVenv(path, minor)
    with (root / f"{path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            if path.exists():
                shutil.rmtree(path)
            env = {**plain_env(), "UV_PYTHON_DOWNLOADS": "never"}
            _run([uv, "venv", "--quiet", "--python", interpreter, str(path)], env)
            if packages:
                _run(
                    [uv, "pip", "install", "--quiet", "--python", str(path / "bin" / "python"),
                     *packages],
                    env,
                )  # fmt: skip
            ready.write_text(identity, encoding="utf-8")
    return AppVenv(path, minor)


def _run(command: Sequence[str], env: Mapping[str, str]) -> None:
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


# --- environment -------------------------------------------------------------------------

_DROPPED_PREFIXES = ("PYTHON", "LUMIGO_", "OTEL_", "AUTOWRAPT_", "VIRTUAL_ENV", "UV_")


def plain_env(**extra: str) -> dict[str, str]:
    """This process's environment without Python, Lumigo, OTel or venv settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def injected_env(
    layer_copy: Path, endpoint: str, service_name: str = "layer-test-app", **extra: str
) -> dict[str, str]:
    """What an injected container gets: env vars only (plus quick span export)."""
    return plain_env(
        PYTHONPATH=str(layer_copy / "bootstrap"),
        AUTOWRAPT_BOOTSTRAP="lumigo_opentelemetry",
        LUMIGO_TRACER_TOKEN=TEST_TOKEN,
        LUMIGO_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME=service_name,
        OTEL_BSP_SCHEDULE_DELAY="50",
        **extra,
    )


# --- running apps ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class AppOutput:
    """How an app process ended."""

    returncode: int
    stdout: str
    stderr: str

    def layer_warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(WARNING_PREFIX)]


class RunningApp:
    """An app subprocess listening on `port`; `stop()` ends it and returns its output."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.output: AppOutput | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=30)

    def get_json(self, path: str) -> Any:
        response = self.get(path)
        response.raise_for_status()
        return response.json()

    def stop(self, timeout: float = 20) -> AppOutput:
        if self.output is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                stdout, stderr = self.process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                stdout, stderr = self.process.communicate(timeout=5)
            self.output = AppOutput(self.process.returncode, stdout, stderr)
        return self.output


@contextlib.contextmanager
def running_app(
    venv: AppVenv,
    script: Path,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    timeout: float = 60,
    wrapper: Sequence[str] = (),
) -> Iterator[RunningApp]:
    """Start `venv`'s python on `script` (env PORT set), wait for the port, stop on exit."""
    port = port or free_port()
    process = subprocess.Popen(
        [*wrapper, str(venv.python), str(script)],
        env={**env, "PORT": str(port)},
        cwd=str(script.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    app = RunningApp(process, port)
    try:
        _wait_for_port(app, timeout)
        yield app
    finally:
        app.stop()


def _wait_for_port(app: RunningApp, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            out = app.stop()
            raise RuntimeError(
                f"app exited with {out.returncode} before listening:\n{out.stdout}\n{out.stderr}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", app.port), 0.5):
            return
        time.sleep(0.05)
    out = app.stop()
    raise RuntimeError(f"app never listened on {app.port}:\n{out.stdout}\n{out.stderr}")


# --- apps --------------------------------------------------------------------------------

_FACTS = """
def facts():
    import os, sys
    names = ("requests", "opentelemetry.trace", "lumigo_opentelemetry", "google.protobuf")
    modules = {n: getattr(sys.modules.get(n), "__file__", None) for n in names}
    try:
        import requests
        modules["requests"] = requests.__file__
    except ImportError:
        pass
    custom = sys.modules.get("sitecustomize")
    return {
        "modules": modules,
        "sitecustomize": getattr(custom, "__file__", None),
        "app_sitecustomize_ran": os.environ.get("APP_SITECUSTOMIZE_RAN"),
        "sys_path": sys.path,
    }
"""

FLASK_APP = (
    '''"""A plain Flask app: knows nothing of OpenTelemetry."""
import logging
import os
import signal
import sys

from flask import Flask
from werkzeug.serving import make_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = Flask(__name__)
'''
    + _FACTS
    + """

@app.get("/hello/<name>")
def hello(name):
    return {"hello": name, "python": "%d.%d" % sys.version_info[:2]}


@app.get("/facts")
def facts_route():
    return facts()


def _stop(*_args):
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    server = make_server("127.0.0.1", int(os.environ["PORT"]), app, threaded=True)
    print("app ready", flush=True)
    try:
        server.serve_forever()
    finally:
        print("app stopped", flush=True)
"""
)

FASTAPI_APP = (
    '''"""A plain FastAPI app on uvicorn: knows nothing of OpenTelemetry."""
import os
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()
'''
    + _FACTS
    + """

@app.get("/hello/{name}")
def hello(name: str):
    return {"hello": name, "python": "%d.%d" % sys.version_info[:2]}


@app.get("/facts")
def facts_route():
    return facts()


if __name__ == "__main__":
    print("app ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
    print("app stopped", flush=True)
"""
)


def write_flask_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flask_app.py"
    path.write_text(FLASK_APP, encoding="utf-8")
    return path


def write_fastapi_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fastapi_app.py"
    path.write_text(FASTAPI_APP, encoding="utf-8")
    return path


# --- one exercise of an app --------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    """What one run of an app answered and printed."""

    bodies: list[Any]
    facts: dict[str, Any]
    output: AppOutput


def exercise(
    venv: AppVenv,
    script: Path,
    env: Mapping[str, str],
    paths: Sequence[str] = ("/hello/alpha", "/hello/beta"),
    while_running: Callable[[RunningApp], None] | None = None,
    wrapper: Sequence[str] = (),
) -> Exercise:
    """Start the app, GET each path (JSON answers) and /facts, run `while_running`, stop."""
    with running_app(venv, script, env, wrapper=wrapper) as app:
        bodies = [app.get_json(path) for path in paths]
        facts = app.get_json("/facts")
        if while_running is not None:
            while_running(app)
    return Exercise(bodies, facts, app.stop())
