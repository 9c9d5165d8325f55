"""Typed settings of `lumigo-injector serve`, parsed once from flags and environment variables.

Every flag has an environment variable of the same meaning (the flag wins). Values are
validated here, at the edge: a bad port, an unknown log format or an empty file name is an
argparse error naming the flag and the variable, never an exception deep inside the server.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lumigo_injector.k8s.mutation import InjectionSettings
from lumigo_injector.spec import names as c
from lumigo_injector.spec.delivery import AUTO, CHOICES, Delivery, DeliveryChoice

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")

#: Namespaces whose pods are never injected, besides the injector's own.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

#: Test-only: pods carrying this label make the admission handler raise (to prove fail-open).
ENV_TEST_FAULT_LABEL = "LUMIGO_INJECTOR_TEST_FAULT_LABEL"


@dataclass(frozen=True)
class ServeSettings:
    """Everything `serve` needs, typed and validated."""

    host: str = "0.0.0.0"
    port: int = 9443
    health_port: int = 8080
    tls_cert_file: Path = Path("/tls/tls.crt")
    tls_key_file: Path = Path("/tls/tls.key")
    tls_reload_interval: float = 5.0
    shutdown_delay: float = 2.0
    init_image: str = c.DEFAULT_INIT_IMAGE
    #: auto: image volume on Kubernetes 1.35+, else init container (`serve.delivery`).
    delivery: DeliveryChoice = AUTO
    secret_name: str = c.DEFAULT_SECRET_NAME
    secret_key: str = c.DEFAULT_SECRET_KEY
    endpoint: str | None = None
    namespace: str | None = None
    log_format: LogFormat = "json"
    log_level: str = "info"
    #: The Lumigo token mirrored into namespaces; never logged, never in repr.
    token: str | None = field(default=None, repr=False)
    test_fault_label: str | None = None

    def injection_settings(self, delivery: Delivery = "init-container") -> InjectionSettings:
        """The settings the pure mutation needs (`delivery`: `auto` already decided)."""
        return InjectionSettings(
            init_image=self.init_image,
            delivery=delivery,
            secret_name=self.secret_name,
            secret_key=self.secret_key,
            endpoint=self.endpoint,
        )

    def never_injected(self, namespace: str | None) -> bool:
        """Whether pods of this namespace are left alone whatever their annotations say."""
        if namespace is None:
            return False
        return namespace == self.namespace or namespace in SYSTEM_NAMESPACES


# Each option: flag, env var, default, parser, help. The env var supplies the default.
_Parser = Callable[[str], object]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text.strip()


def _optional(text: str) -> str | None:
    return text.strip() or None


def _choice(choices: tuple[str, ...]) -> _Parser:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(choices)})"
            )
        return value

    return parse


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    dest: str
    parse: _Parser
    help: str


_OPTIONS = (
    _Option("--host", "LUMIGO_INJECTOR_HOST", "host", _non_empty, "address to listen on"),
    _Option("--port", "LUMIGO_INJECTOR_PORT", "port", _port, "HTTPS admission port"),
    _Option(
        "--health-port",
        "LUMIGO_INJECTOR_HEALTH_PORT",
        "health_port",
        _port,
        "plain HTTP port of /healthz and /readyz",
    ),
    _Option(
        "--tls-cert-file",
        "LUMIGO_INJECTOR_TLS_CERT_FILE",
        "tls_cert_file",
        _non_empty,
        "PEM certificate (chain) of the admission endpoint; reloaded on change",
    ),
    _Option(
        "--tls-key-file",
        "LUMIGO_INJECTOR_TLS_KEY_FILE",
        "tls_key_file",
        _non_empty,
        "PEM private key of the admission endpoint; reloaded on change",
    ),
    _Option(
        "--tls-reload-interval",
        "LUMIGO_INJECTOR_TLS_RELOAD_INTERVAL",
        "tls_reload_interval",
        _positive_float,
        "seconds between checks of the certificate files",
    ),
    _Option(
        "--shutdown-delay",
        "LUMIGO_INJECTOR_SHUTDOWN_DELAY",
        "shutdown_delay",
        _non_negative_float,
        "seconds to keep answering admissions after SIGTERM (not ready meanwhile)",
    ),
    _Option(
        "--init-image",
        "LUMIGO_INJECTOR_INIT_IMAGE",
        "init_image",
        _non_empty,
        "image of the init container that copies the layer",
    ),
    _Option(
        "--delivery",
        "LUMIGO_INJECTOR_DELIVERY",
        "delivery",
        _choice(CHOICES),
        "how pods get the layer: auto (image volume on Kubernetes 1.35+, else init container), "
        "init-container or image-volume",
    ),
    _Option(
        "--secret-name",
        "LUMIGO_INJECTOR_SECRET_NAME",
        "secret_name",
        _non_empty,
        "Secret holding the Lumigo token in app namespaces",
    ),
    _Option(
        "--secret-key",
        "LUMIGO_INJECTOR_SECRET_KEY",
        "secret_key",
        _non_empty,
        "key of the token in that Secret",
    ),
    _Option(
        "--endpoint",
        "LUMIGO_ENDPOINT",
        "endpoint",
        _optional,
        "OTLP endpoint set as LUMIGO_ENDPOINT in injected containers",
    ),
    _Option(
        "--namespace",
        "POD_NAMESPACE",
        "namespace",
        _optional,
        "the injector's own namespace (its pods are never injected)",
    ),
    _Option(
        "--log-format",
        "LUMIGO_INJECTOR_LOG_FORMAT",
        "log_format",
        _choice(LOG_FORMATS),
        "json (default) or text",
    ),
    _Option(
        "--log-level",
        "LUMIGO_INJECTOR_LOG_LEVEL",
        "log_level",
        _choice(LOG_LEVELS),
        "debug, info (default), warning or error",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags; defaults are resolved later, together with the environment."""
    defaults = ServeSettings()
    for option in _OPTIONS:
        default = getattr(defaults, option.dest)
        shown = f"; default {default}" if default is not None else ""
        parser.add_argument(
            option.flag,
            dest=option.dest,
            type=option.parse,
            default=None,
            metavar=option.dest.upper(),
            help=f"{option.help} [env {option.env}{shown}]",
        )


def from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
) -> ServeSettings:
    """Combine parsed flags with the environment; raise `ValueError` naming a bad variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for option in _OPTIONS:
        value = getattr(args, option.dest, None)
        if value is None and env.get(option.env) is not None:
            try:
                value = option.parse(env[option.env])
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"environment variable {option.env}: {exc}") from None
        if value is not None:
            values[option.dest] = value
    for name in ("tls_cert_file", "tls_key_file"):
        if name in values:
            values[name] = Path(str(values[name]))
    token = env.get("LUMIGO_TRACER_TOKEN", "").strip() or None
    fault = env.get(ENV_TEST_FAULT_LABEL, "").strip() or None
    return ServeSettings(**values, token=token, test_fault_label=fault)  # type: ignore[arg-type]
