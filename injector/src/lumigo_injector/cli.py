"""The `lumigo-injector` command line: a thin dispatcher.

Each subcommand lives in `lumigo_injector.commands.<name>` and exposes
`add_parser(subparsers)` (which sets `func` on its parser) so that the modules
stay small and independent. A subcommand's module is imported only when it is listed
here; `func(args) -> int` returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lumigo_injector import __version__

# Subcommand modules, in the order `--help` shows them.
COMMANDS = ("demo", "inject", "serve", "ecs", "build_layer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumigo-injector",
        description="Inject the Lumigo OpenTelemetry distro into Python workloads.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lumigo_injector.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"lumigo_injector.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
