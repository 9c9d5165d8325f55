"""Typed settings of `lumigo-injector serve`, in groups: listening, TLS, injection, cluster, logs.

Built once at the edge by `commands/serve.py` from flags and environment variables (the
option table and its checks are `commands/options.py`); nothing past this point parses text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lumigo_injector.k8s.options import InjectionSettings
from lumigo_injector.serve.fleet.settings import FleetSettings
from lumigo_injector.spec.delivery import AUTO, DeliveryChoice

LogFormat = Literal["json", "text"]

#: Namespaces whose pods are never injected, besides the injector's own.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class ListenSettings:
    """Where the webhook (HTTPS) and the health endpoints (HTTP) listen, and how they stop."""

    host: str = "0.0.0.0"
    port: int = 9443
    health_port: int = 8080
    #: Seconds to keep answering admissions after SIGTERM (not ready meanwhile).
    shutdown_delay: float = 2.0


@dataclass(frozen=True)
class TlsSettings:
    """The webhook's certificate files, reloaded when they change."""

    cert_file: Path = Path("/tls/tls.crt")
    key_file: Path = Path("/tls/tls.key")
    reload_interval: float = 5.0


@dataclass(frozen=True)
class ClusterSettings:
    """What `serve` knows about the cluster it runs in."""

    #: The injector's own namespace (its pods are never injected).
    namespace: str | None = None
    #: How pods get the layer: auto (image volume on Kubernetes 1.35+, read from the API
    #: server at start-up by `serve.delivery`), init-container or image-volume.
    delivery: DeliveryChoice = AUTO
    #: The Lumigo token mirrored into namespaces; never logged, never in repr.
    token: str | None = field(default=None, repr=False)
    #: Copy workloads' lumigo.io/inject annotation onto their pod templates (False: webhook
    #: only, no workload is watched or patched; the chart's `propagation.enabled: false`).
    propagation: bool = True

    def never_injected(self, namespace: str | None) -> bool:
        """Whether pods of this namespace are left alone whatever their annotations say."""
        if namespace is None:
            return False
        return namespace == self.namespace or namespace in SYSTEM_NAMESPACES


@dataclass(frozen=True)
class LogSettings:
    """The operator's own log lines."""

    format: LogFormat = "json"
    level: str = "info"


@dataclass(frozen=True)
class ServeSettings:
    """Everything `serve` needs, typed and validated, in groups."""

    listen: ListenSettings = field(default_factory=ListenSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    injection: InjectionSettings = field(default_factory=InjectionSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
