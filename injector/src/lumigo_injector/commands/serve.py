"""`lumigo-injector serve`: the operator and mutating webhook (what the Helm chart runs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    from lumigo_injector.serve.settings import add_arguments

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


def run(args: argparse.Namespace) -> int:
    from lumigo_injector.serve import logs, service
    from lumigo_injector.serve.settings import from_args

    try:
        settings = from_args(args)
    except ValueError as exc:
        print(f"lumigo-injector serve: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    return service.main(settings)
