"""`lumigo-injector serve`: the operator and mutating webhook (what the Helm chart runs)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lumigo_injector.commands import options
from lumigo_injector.spec.names import ENV_TRACER_TOKEN

if TYPE_CHECKING:
    from lumigo_injector.serve.settings import ServeSettings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the operator and the mutating admission webhook",
        description=(
            "Runs the kopf operator (workload annotation propagation, token Secret mirroring) "
            "and the HTTPS mutating webhook POST /mutate-pods, standalone and cluster-wide. "
            "Each flag can also be given as the environment variable shown in brackets."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags; defaults are resolved later, together with the environment."""
    from lumigo_injector.serve.settings import ServeSettings

    defaults = ServeSettings()
    for option in options.SERVE:
        default = getattr(getattr(defaults, option.group), option.name)
        options.add(parser, option, default, env_in_help=True)


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeSettings:
    """Combine parsed flags with the environment; raise `ValueError` naming a bad variable."""
    from lumigo_injector.k8s.options import InjectionSettings
    from lumigo_injector.serve import settings as s
    from lumigo_injector.serve.fleet.settings import FleetSettings

    env = os.environ if environ is None else environ
    groups = options.collect(args, options.SERVE, env)
    tls = groups.get("tls", {})
    for name in ("cert_file", "key_file"):
        if name in tls:
            tls[name] = Path(str(tls[name]))
    token = env.get(ENV_TRACER_TOKEN, "").strip() or None
    return s.ServeSettings(
        listen=s.ListenSettings(**groups.get("listen", {})),
        tls=s.TlsSettings(**tls),
        injection=InjectionSettings(**groups.get("injection", {})),
        cluster=s.ClusterSettings(**groups.get("cluster", {}), token=token),
        logs=s.LogSettings(**groups.get("logs", {})),
        fleet=FleetSettings(**groups.get("fleet", {})),
    )


def run(args: argparse.Namespace) -> int:
    from lumigo_injector.serve import logs, service

    try:
        settings = from_args(args)
    except ValueError as exc:
        print(f"lumigo-injector serve: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.logs.format, settings.logs.level)
    return service.main(settings)
