"""The `lumigo-injector` command line: a thin dispatcher.

Each subcommand lives in `lumigo_injector.commands.<name>`, or comes from another installed
package through the `lumigo_injector.commands` entry-point group (`demo` is the development
tools' command, absent from the operator image). A subcommand module exposes
`add_parser(subparsers)` (which sets `func` on its parser); `func(args) -> int` returns the
process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points
from types import ModuleType

from lumigo_injector import __version__

# Subcommands, in the order `--help` shows them.
COMMANDS = ("demo", "inject", "serve", "status", "ecs", "build_layer")
PLUGIN_GROUP = "lumigo_injector.commands"


def _command_module(name: str) -> ModuleType | None:
    """The module of subcommand `name`: a plugin's if one is installed, else ours, else None."""
    for entry in entry_points(group=PLUGIN_GROUP, name=name):
        return importlib.import_module(entry.value)
    try:
        return importlib.import_module(f"lumigo_injector.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"lumigo_injector.commands.{name}":
            raise
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumigo-injector",
        description="Inject the Lumigo OpenTelemetry distro into Python workloads.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _command_module(name)
        if module is not None:
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
