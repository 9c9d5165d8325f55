"""The one table of command-line options: each flag defined once, with its check.

`inject`, `ecs` and `serve` share the injection options (`--init-image`, `--secret-name`,
`--secret-key`, `--endpoint`) and validate them alike; `serve` adds its own (ports, TLS,
logging) and also reads each option from an environment variable (the flag wins). A bad value
is an argparse error naming the flag, or a `ValueError` naming the variable, never an
exception deep inside a command.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lumigo_injector.spec.delivery import CHOICES as DELIVERY_CHOICES
from lumigo_injector.spec.names import ENV_ENABLE_LOGS, ENV_ENDPOINT

Parser = Callable[[str], Any]

LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")


def port(text: str) -> int:
    """A TCP port number, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_float(text: str) -> float:
    """A number greater than 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A number, 0 or more."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def non_empty(text: str) -> str:
    """Text, trimmed, that must not be empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text.strip()


def optional(text: str) -> str | None:
    """Text, trimmed; empty means "not set"."""
    return text.strip() or None


def boolean(text: str) -> bool:
    """true/false (also yes/no, 1/0, on/off)."""
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean (true or false): {text!r}")


def positive_int(text: str) -> int:
    """A whole number greater than 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def choice(choices: tuple[str, ...]) -> Parser:
    """One of `choices`, compared lower-cased."""

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(choices)})"
            )
        return value

    return parse


@dataclass(frozen=True)
class Option:
    """One flag: its environment variable (read by `serve`), where it goes, its check."""

    flag: str
    env: str
    group: str  # the settings group the value belongs to (see serve.settings)
    name: str  # the field in that group
    parse: Parser
    help: str

    @property
    def dest(self) -> str:
        return f"{self.group}__{self.name}"


# --- shared by inject, ecs and serve -------------------------------------------------------
INIT_IMAGE = Option(
    "--init-image",
    "LUMIGO_INJECTOR_INIT_IMAGE",
    "injection",
    "init_image",
    non_empty,
    "the layer's image: the init container's, or the image volume's",
)
SECRET_NAME = Option(
    "--secret-name",
    "LUMIGO_INJECTOR_SECRET_NAME",
    "injection",
    "secret_name",
    non_empty,
    "Secret holding the Lumigo token in app namespaces",
)
SECRET_KEY = Option(
    "--secret-key",
    "LUMIGO_INJECTOR_SECRET_KEY",
    "injection",
    "secret_key",
    non_empty,
    "key of the token in that Secret",
)
ENDPOINT = Option(
    "--endpoint",
    ENV_ENDPOINT,
    "injection",
    "endpoint",
    optional,
    "OTLP endpoint set as LUMIGO_ENDPOINT in injected containers",
)

#: The injection options every command takes.
SHARED = (INIT_IMAGE, SECRET_NAME, SECRET_KEY, ENDPOINT)


@dataclass(frozen=True)
class Switch:
    """An on/off flag without a value (off unless given)."""

    flag: str
    dest: str
    help: str


# --- ecs (Kubernetes asks with the annotation lumigo.io/enable-logs) -----------------------
ENABLE_LOGS = Switch(
    "--enable-logs", "enable_logs",
    f"set {ENV_ENABLE_LOGS}=true in injected containers (logging records over OTLP), "
    "unless a container sets it itself",
)  # fmt: skip

# --- serve only ----------------------------------------------------------------------------
SERVE = (
    Option("--host", "LUMIGO_INJECTOR_HOST", "listen", "host", non_empty, "address to listen on"),
    Option("--port", "LUMIGO_INJECTOR_PORT", "listen", "port", port, "HTTPS admission port"),
    Option(
        "--health-port", "LUMIGO_INJECTOR_HEALTH_PORT", "listen", "health_port", port,
        "plain HTTP port of /healthz and /readyz",
    ),
    Option(
        "--tls-cert-file", "LUMIGO_INJECTOR_TLS_CERT_FILE", "tls", "cert_file", non_empty,
        "PEM certificate (chain) of the admission endpoint; reloaded on change",
    ),
    Option(
        "--tls-key-file", "LUMIGO_INJECTOR_TLS_KEY_FILE", "tls", "key_file", non_empty,
        "PEM private key of the admission endpoint; reloaded on change",
    ),
    Option(
        "--tls-reload-interval", "LUMIGO_INJECTOR_TLS_RELOAD_INTERVAL", "tls", "reload_interval",
        positive_float, "seconds between checks of the certificate files",
    ),
    Option(
        "--shutdown-delay", "LUMIGO_INJECTOR_SHUTDOWN_DELAY", "listen", "shutdown_delay",
        non_negative_float,
        "seconds to keep answering admissions after SIGTERM (not ready meanwhile)",
    ),
    INIT_IMAGE,
    SECRET_NAME,
    SECRET_KEY,
    ENDPOINT,
    Option(
        "--delivery", "LUMIGO_INJECTOR_DELIVERY", "cluster", "delivery",
        choice(DELIVERY_CHOICES),
        "how pods get the layer: auto (image volume when the API server is 1.35+, else init "
        "container), init-container or image-volume",
    ),
    Option(
        "--namespace", "POD_NAMESPACE", "cluster", "namespace", optional,
        "the injector's own namespace (its pods are never injected)",
    ),
    Option(
        "--layer-version", "LUMIGO_INJECTOR_LAYER_VERSION", "injection", "layer_version",
        non_empty, "layer version the init image carries; pods with another are outdated",
    ),
    Option(
        "--fleet-interval", "LUMIGO_INJECTOR_FLEET_INTERVAL", "fleet", "interval",
        positive_float, "seconds between two checks of the running pods",
    ),
    Option(
        "--catch-up-restart", "LUMIGO_INJECTOR_CATCH_UP_RESTART", "fleet", "catch_up_restart",
        boolean, "restart workloads whose pods missed injection, one at a time",
    ),
    Option(
        "--upgrade-rollout", "LUMIGO_INJECTOR_UPGRADE_ROLLOUT", "fleet", "upgrade_rollout",
        choice(("manual", "automatic")),
        "automatic: restart workloads on an older layer in waves; manual: report only",
    ),
    Option(
        "--upgrade-wave-size", "LUMIGO_INJECTOR_UPGRADE_WAVE_SIZE", "fleet", "wave_size",
        positive_int, "workloads restarted together in one upgrade wave",
    ),
    Option(
        "--rollback", "LUMIGO_INJECTOR_ROLLBACK", "fleet", "rollback", boolean,
        "pause injection of workloads whose injected rollout crash-loops",
    ),
    Option(
        "--action-interval", "LUMIGO_INJECTOR_ACTION_INTERVAL", "fleet", "min_action_interval",
        non_negative_float, "minimum seconds between two restarting actions",
    ),
    Option(
        "--restart-cooldown", "LUMIGO_INJECTOR_RESTART_COOLDOWN", "fleet", "cooldown",
        non_negative_float, "minimum seconds between two restarts of one workload",
    ),
    Option(
        "--log-format", "LUMIGO_INJECTOR_LOG_FORMAT", "logs", "format", choice(LOG_FORMATS),
        "json (default) or text",
    ),
    Option(
        "--log-level", "LUMIGO_INJECTOR_LOG_LEVEL", "logs", "level", choice(LOG_LEVELS),
        "debug, info (default), warning or error",
    ),
    Option(
        "--propagation", "LUMIGO_INJECTOR_PROPAGATION", "cluster", "propagation", boolean,
        "true: copy workloads' lumigo.io/inject annotation onto their pod templates; "
        "false: webhook only, no workload is watched or patched",
    ),
)  # fmt: skip


def add(
    parser: argparse.ArgumentParser | Any,
    option: Option,
    default: Any,
    metavar: str | None = None,
    env_in_help: bool = False,
) -> None:
    """Add `option` to a parser (or argument group), checked by the option's parser."""
    shown = f"default {default}" if default is not None else ""
    if env_in_help:
        help_text = f"{option.help} [env {option.env}{'; ' + shown if shown else ''}]"
        default = None  # resolved later, together with the environment (see `collect`)
    else:
        help_text = f"{option.help} ({shown})" if shown else option.help
    parser.add_argument(
        option.flag,
        dest=option.dest,
        type=option.parse,
        default=default,
        metavar=metavar or option.flag.lstrip("-").replace("-", "_").upper(),
        help=help_text.replace("%", "%%"),
    )


def add_flag(parser: argparse.ArgumentParser | Any, switch: Switch) -> None:
    """Add an on/off `switch` to a parser (or argument group)."""
    parser.add_argument(
        switch.flag, dest=switch.dest, action="store_true", help=switch.help.replace("%", "%%")
    )


def collect(
    args: argparse.Namespace, options: Iterable[Option], environ: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Values given by flag, else by environment variable, grouped: {group: {name: value}}.

    Raises `ValueError` naming the variable when an environment value fails its check.
    """
    env = os.environ if environ is None else environ
    groups: dict[str, dict[str, Any]] = {}
    for option in options:
        value = getattr(args, option.dest, None)
        if value is None and env.get(option.env) is not None:
            try:
                value = option.parse(env[option.env])
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"environment variable {option.env}: {exc}") from None
        if value is not None:
            groups.setdefault(option.group, {})[option.name] = value
    return groups
