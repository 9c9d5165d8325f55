"""TLS and probes of `lumigo-injector serve`: readiness waits for a certificate, a renewed
certificate is picked up without a restart, a broken one never replaces a working one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lumigo_injector.spec import names as c
from tests.helpers.kube import (
    InjectorProcess,
    KubeEmulator,
    TestCertificates,
    admission_review,
    decode_patch,
    deployment_pod,
    served_certificate_serial,
    start_injector,
    wait_for,
)


class _NotYetIssued(TestCertificates):
    """Paths of a certificate pair that does not exist yet (issued later by the test)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.directory = directory
        self.hostnames = ("localhost",)
        self.ca_file = directory / "ca.crt"
        self.cert_file = directory / "tls.crt"
        self.key_file = directory / "tls.key"


@dataclass
class Setup:
    kube: KubeEmulator
    injector: InjectorProcess
    tls_dir: Path
    certs: TestCertificates | None = None

    def issued(self) -> TestCertificates:
        """The certificates, written now if no test did yet; the injector is then ready."""
        if self.certs is None:
            self.certs = TestCertificates(self.tls_dir)
        self.injector.wait_ready()
        return self.certs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("tls")
    with KubeEmulator() as kube:
        kube.create_namespace("ns-tls", {c.ANNOTATION_INJECT: "python"})
        pending = _NotYetIssued(workdir / "tls")
        injector = start_injector(kube.write_kubeconfig(workdir / "kubeconfig"), pending, workdir)
        try:
            yield Setup(kube, injector, pending.directory)
        finally:
            injector.stop()


def test_ready_only_once_a_certificate_is_loaded(setup: Setup) -> None:
    injector = setup.injector

    def live() -> requests.Response | None:
        try:
            return injector.health("/healthz")
        except requests.ConnectionError:
            return None

    assert wait_for(live, timeout=45, what="/healthz").status_code == 200
    not_ready = injector.health("/readyz")
    assert not_ready.status_code == 503
    assert "tls" in not_ready.json()["waiting_for"]

    setup.issued()  # a CA and a serving pair appear, as cert-manager would write them

    assert injector.health("/readyz").json() == {"status": "ready"}
    pod = deployment_pod("tls", annotations={c.ANNOTATION_INJECT: "python"})
    assert decode_patch(injector.review(admission_review(pod, namespace="ns-tls")))


def test_renewed_certificate_is_served_without_restart(setup: Setup) -> None:
    certs, injector = setup.issued(), setup.injector
    pid = injector.process.pid if injector.process else None
    before = served_certificate_serial("127.0.0.1", injector.port, certs.ca_file)

    renewed = certs.issue()

    assert renewed != before
    wait_for(
        lambda: served_certificate_serial("127.0.0.1", injector.port, certs.ca_file) == renewed,
        what="the renewed certificate to be served",
    )
    assert injector.process is not None and injector.process.poll() is None
    assert injector.process.pid == pid  # same process: reloaded, not restarted


def test_broken_certificate_keeps_the_working_one(setup: Setup) -> None:
    certs, injector, tls_dir = setup.issued(), setup.injector, setup.tls_dir
    ca_file = certs.ca_file
    serving = served_certificate_serial("127.0.0.1", injector.port, ca_file)
    good_cert = (tls_dir / "tls.crt").read_bytes()

    (tls_dir / "tls.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n")
    wait_for(
        lambda: any("cannot load TLS" in r["message"] for r in injector.log_records()),
        what="the reload failure to be logged",
    )

    assert served_certificate_serial("127.0.0.1", injector.port, ca_file) == serving
    assert injector.health("/readyz").status_code == 200
    pod = deployment_pod("still", annotations={c.ANNOTATION_INJECT: "python"})
    assert decode_patch(injector.review(admission_review(pod, namespace="ns-tls")))
    (tls_dir / "tls.crt").write_bytes(good_cert)


def test_no_token_means_no_mirrored_secret(setup: Setup) -> None:
    setup.issued()
    kube, injector = setup.kube, setup.injector
    pod = deployment_pod("tokenless", annotations={c.ANNOTATION_INJECT: "python"})

    assert decode_patch(injector.review(admission_review(pod, namespace="ns-tls")))

    wait_for(lambda: kube.events("ns-tls"), what="the injection Event")
    assert kube.get(f"/api/v1/namespaces/ns-tls/secrets/{c.DEFAULT_SECRET_NAME}") is None


def test_sigterm_stops_cleanly(setup: Setup) -> None:
    setup.issued()

    assert setup.injector.stop() == 0

    messages = [r["message"] for r in setup.injector.log_records()]
    assert "SIGTERM received: stopping" in messages
    assert messages[-1] == "operator stopped; shutting down"
