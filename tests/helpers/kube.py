"""A small Kubernetes for tests: a kmock emulator, a kubeconfig, TLS material, and
`lumigo-injector serve` as a real subprocess talking to it.

    with KubeEmulator() as kube, TestCertificates(tmp) as certs:
        injector = start_injector(kube.write_kubeconfig(tmp / "kubeconfig"), certs, tmp)
        injector.wait_ready()
        response = injector.review(admission_review(pod, namespace="team"))
        ...
        injector.stop()

`start_injector(..., command=[...], extra_argv=[...], env={...})` runs any command line (e.g. the
one a Helm chart renders); the harness only adds the ports, TLS files and KUBECONFIG through
the documented environment variables, so flags in `command` still win.

The emulator is kmock's in-memory `KubernetesEmulator` served on 127.0.0.1 from a background
thread (`KubeEmulator`), or from a process of its own (`KubeEmulatorProcess`, REST client only:
for benchmarks, so that it never competes with the measuring process for the GIL). Two of its
gaps are filled here, as a real API server would behave: `/api/v1/namespaces[/NAME]`
(cluster-scoped Namespace objects: kmock's URL parser reads `namespaces/` as a namespace
prefix) is routed to a private plural; and `create()` fills in `metadata.namespace` from a
namespaced URL, as the API server does (kmock stores the object as posted). `/version`
answers the Kubernetes version given as `KubeEmulator(server_version="1.35.0")` (kmock's own
answer, 1.26, without it). Everything else (merge patches, JSON patches, watch streams,
404/409) is kmock's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")

#: (group/version/plural, kind, namespaced) served by the emulator.
RESOURCES = (
    ("v1/namespaces", "Namespace", False),
    ("v1/pods", "Pod", True),
    ("v1/secrets", "Secret", True),
    ("v1/events", "Event", True),
    ("v1/configmaps", "ConfigMap", True),
    ("apps/v1/deployments", "Deployment", True),
    ("apps/v1/statefulsets", "StatefulSet", True),
    ("apps/v1/daemonsets", "DaemonSet", True),
    ("apps/v1/replicasets", "ReplicaSet", True),
    ("batch/v1/jobs", "Job", True),
    ("batch/v1/cronjobs", "CronJob", True),
)
VERBS = {"list", "watch", "get", "create", "patch", "update", "delete"}
_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(/[^/]+)?/?$")
_NAMESPACED_COLLECTION = re.compile(r"^/apis?/(?:[^/]+/)?[^/]+/namespaces/([^/]+)/[^/]+/?$")
_NAMESPACE_PLURAL = "kmock-namespaces"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll until `probe()` returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        time.sleep(interval)


def version_info(version: str) -> dict[str, str]:
    """A `/version` answer as a real API server gives it, for "1.35.0"."""
    major, minor, *_ = version.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{version}",
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _emulator_class(server_version: str | None = None) -> Any:
    import aiohttp.web
    import kmock

    class Emulator(kmock.KubernetesEmulator):
        async def _serve_server_version(self, request: Any) -> Any:
            if server_version is None:
                return await super()._serve_server_version(request)
            return version_info(server_version)

        async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
            if raw.path == "/version/":  # the kubernetes client's path; the API server's too
                raw = raw.clone(rel_url=raw.rel_url.with_path("/version"))
            match = _NAMESPACE_PATH.match(raw.path)
            if match:
                path = f"/api/v1/{_NAMESPACE_PLURAL}{match.group(1) or ''}"
                url = raw.rel_url.with_path(path).with_query(raw.rel_url.query)
                raw = raw.clone(rel_url=url)
            return await super().__call__(raw)

    return Emulator


class KubeRest:
    """A minimal REST client (plain dicts) for an emulator at `self.url`."""

    def __init__(self) -> None:
        self.url = ""
        self.http = requests.Session()

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig whose current context points at the emulator (plain HTTP)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "test-token"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}],
            "current-context": "kmock",
        }
        path.write_text(json.dumps(config))
        return path

    # --- a minimal REST client returning plain dicts ------------------------------------------

    def get(self, path: str) -> dict[str, Any] | None:
        response = self.http.get(self.url + path, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def items(self, path: str) -> list[dict[str, Any]]:
        found = self.get(path)
        return list(found["items"]) if found else []

    def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        collection = _NAMESPACED_COLLECTION.match(path)
        if collection:
            metadata = {"namespace": collection.group(1), **(obj.get("metadata") or {})}
            obj = {**obj, "metadata": metadata}
        response = self.http.post(self.url + path, json=obj, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def patch(self, path: str, merge: Mapping[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/merge-patch+json"}
        response = self.http.patch(self.url + path, json=merge, headers=headers, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def delete(self, path: str) -> None:
        response = self.http.delete(self.url + path, timeout=10)
        if response.status_code != 404:
            response.raise_for_status()

    def create_namespace(self, name: str, annotations: Mapping[str, str] | None = None) -> None:
        meta: dict[str, Any] = {"name": name}
        if annotations:
            meta["annotations"] = dict(annotations)
        self.create(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
        )

    def events(self, namespace: str) -> list[dict[str, Any]]:
        return self.items(f"/api/v1/namespaces/{namespace}/events")


class KubeEmulator(KubeRest):
    """kmock's Kubernetes emulator on 127.0.0.1 (a background thread), with a REST client."""

    def __init__(self, server_version: str | None = None) -> None:
        super().__init__()
        self.server_version = server_version
        self.handler: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> KubeEmulator:
        import kmock

        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            emulator = _emulator_class(self.server_version)
            async with emulator() as handler, kmock.Server(handler) as server:
                for path, kind, namespaced in RESOURCES:
                    info = kmock.ResourceInfo(kind=kind, namespaced=namespaced, verbs=VERBS)
                    handler.resources[path] = info
                    if path == "v1/namespaces":
                        handler.resources[f"v1/{_NAMESPACE_PLURAL}"] = kmock.ResourceInfo(
                            kind=kind, namespaced=False, verbs=VERBS
                        )
                self.handler = handler
                self.url = str(server.url).rstrip("/")
                started.set()
                await self._stop.wait()

        def thread_main() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException as exc:  # surfaced to start()
                failure.append(exc)
                started.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=thread_main, name="kmock", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure:
            raise failure[0]
        if not self.url:
            raise RuntimeError("kmock emulator did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        self.http.close()

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def requested_paths(self) -> list[str]:
        """The URL paths of every request the emulator has served so far."""
        return [str(request.url.path) for request in list(self.handler)]


class KubeEmulatorProcess(KubeRest):
    """The same emulator in a process of its own (`python tests/helpers/kube.py`).

    For benchmarks: the emulator's event loop then never competes for the GIL with the
    process that measures. Only the REST client is available (no `handler`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> KubeEmulatorProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"kmock emulator process did not start (said {line!r})")
        self.url = line
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the process stops when its stdin closes
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.http.close()

    def __enter__(self) -> KubeEmulatorProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# --- TLS material -----------------------------------------------------------------------------


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class TestCertificates:
    """A throw-away CA and a serving certificate for localhost / 127.0.0.1, as PEM files."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, hostnames: Sequence[str] = ("localhost",)) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.hostnames = tuple(hostnames)
        self.ca_file = directory / "ca.crt"
        self.cert_file = directory / "tls.crt"
        self.key_file = directory / "tls.key"
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_cert = self._make_ca()
        self.ca_file.write_bytes(self._pem(self._ca_cert))
        self.serial = 0
        self.issue()

    @staticmethod
    def _pem(cert: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _make_ca(self) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(_name("lumigo-injector test CA"))
            .issuer_name(_name("lumigo-injector test CA"))
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )

    def issue(self) -> int:
        """Write a new key and certificate (a new serial each time); return that serial.

        Files are replaced atomically (written aside, then renamed), key first, as a
        Secret volume update would swap them.
        """
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        serial = x509.random_serial_number()
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in self.hostnames]
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.hostnames[0]))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._replace(self.key_file, key_pem)
        self._replace(self.cert_file, self._pem(cert))
        self.serial = serial
        return serial

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        aside.write_bytes(data)
        os.replace(aside, path)


def served_certificate_serial(host: str, port: int, ca_file: Path) -> int:
    """Handshake with the server (verifying against `ca_file`) and return its cert serial."""
    import ssl

    from cryptography import x509

    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


# --- the injector as a subprocess ------------------------------------------------------------

DEFAULT_COMMAND = (sys.executable, "-m", "lumigo_injector.cli", "serve")


@dataclass
class InjectorProcess:
    """A running `lumigo-injector serve` (or any command line that serves the same ports)."""

    command: list[str]
    env: dict[str, str]
    port: int
    health_port: int
    ca_file: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mutate-pods"

    def start(self) -> InjectorProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def health(self, path: str = "/readyz") -> requests.Response:
        return self.http.get(f"http://127.0.0.1:{self.health_port}{path}", timeout=5)

    def wait_ready(self, timeout: float = 45.0) -> InjectorProcess:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"injector exited with {self.process.returncode}:\n{self.logs()[-4000:]}"
                )
            try:
                return self.health().status_code == 200
            except requests.ConnectionError:
                return False

        try:
            wait_for(ready, timeout=timeout, interval=0.1, what="/readyz")
        except AssertionError:
            if self.process is not None and self.process.poll() is None:
                raise AssertionError(f"injector not ready:\n{self.logs()[-4000:]}") from None
            raise
        return self

    def post(
        self, body: bytes | str | Mapping[str, Any], path: str = "/mutate-pods"
    ) -> requests.Response:
        data = json.dumps(body).encode() if isinstance(body, Mapping) else body
        return self.http.post(
            f"https://127.0.0.1:{self.port}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            verify=str(self.ca_file),
            timeout=10,
        )

    def review(self, review: Mapping[str, Any]) -> dict[str, Any]:
        """POST an AdmissionReview and return its `response` (asserting HTTP 200)."""
        answer = self.post(review)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["apiVersion"] == "admission.k8s.io/v1"
        assert body["kind"] == "AdmissionReview"
        result: dict[str, Any] = body["response"]
        return result

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; return the exit code."""
        self.http.close()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_injector(
    kubeconfig: Path,
    certs: TestCertificates,
    workdir: Path,
    *,
    command: Sequence[str] = DEFAULT_COMMAND,
    extra_argv: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    health_port: int | None = None,
    tls_reload_interval: float = 0.2,
) -> InjectorProcess:
    """Start the injector on free ports (not waiting for readiness: `.wait_ready()`)."""
    port = port or free_port()
    health_port = health_port or free_port()
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LUMIGO_", "KUBERNETES_", "OTEL_")) and key != "POD_NAMESPACE"
    }
    full_env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "LUMIGO_INJECTOR_HOST": "127.0.0.1",
            "LUMIGO_INJECTOR_PORT": str(port),
            "LUMIGO_INJECTOR_HEALTH_PORT": str(health_port),
            "LUMIGO_INJECTOR_TLS_CERT_FILE": str(certs.cert_file),
            "LUMIGO_INJECTOR_TLS_KEY_FILE": str(certs.key_file),
            "LUMIGO_INJECTOR_TLS_RELOAD_INTERVAL": str(tls_reload_interval),
            "LUMIGO_INJECTOR_LOG_FORMAT": "json",
            "LUMIGO_INJECTOR_SHUTDOWN_DELAY": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(env or {})
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"injector-{port}.log"
    process = InjectorProcess(
        command=[*command, *extra_argv],
        env=full_env,
        port=port,
        health_port=health_port,
        ca_file=certs.ca_file,
        log_path=log_path,
    )
    return process.start()


@contextlib.contextmanager
def running_injector(
    kubeconfig: Path, certs: TestCertificates, workdir: Path, **kwargs: Any
) -> Iterator[InjectorProcess]:
    """`start_injector` + `wait_ready`, stopped on exit."""
    injector = start_injector(kubeconfig, certs, workdir, **kwargs)
    try:
        yield injector.wait_ready()
    finally:
        injector.stop()


# --- AdmissionReview builders ----------------------------------------------------------------


def admission_review(
    pod: Mapping[str, Any],
    *,
    namespace: str,
    operation: str = "CREATE",
    dry_run: bool = False,
    kind: str = "Pod",
) -> dict[str, Any]:
    """An AdmissionReview v1 request as the API server sends it for a pod."""
    name = (pod.get("metadata") or {}).get("name")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": kind},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": dict(pod),
        "oldObject": None,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if name:
        request["name"] = name
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def decode_patch(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSONPatch of an admission response (empty when there is none)."""
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return ops


def deployment_pod(
    app: str = "web",
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    containers: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod as a Deployment's ReplicaSet submits it: generateName, ownerReferences, and
    neither `name` nor `namespace` in its metadata."""
    template_hash = "7d4b9c5f8d"
    meta: dict[str, Any] = {
        "generateName": f"{app}-{template_hash}-",
        "labels": {"app": app, "pod-template-hash": template_hash, **(labels or {})},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{app}-{template_hash}",
                "uid": str(uuid.uuid4()),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": list(
                containers
                or [
                    {
                        "name": app,
                        "image": "python:3.12-slim",
                        "command": ["python", "-m", "http.server"],
                        "env": [{"name": "PYTHONPATH", "value": "/app"}],
                        "ports": [{"containerPort": 8000}],
                        "resources": {},
                    }
                ]
            ),
            "restartPolicy": "Always",
            "serviceAccountName": "default",
        },
    }


def _serve_until_stdin_closes() -> None:
    """`python tests/helpers/kube.py`: print the emulator's URL, serve until stdin closes."""
    with KubeEmulator() as kube:
        print(kube.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    _serve_until_stdin_closes()
