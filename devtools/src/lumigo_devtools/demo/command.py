"""`lumigo-injector demo`: the whole chain locally, on embedded defaults."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="build the layer, inject an example manifest, run it locally and show the traces",
        description=(
            "Runs the example shop (a Flask frontend calling a FastAPI orders service) the way "
            "its injected pods would run, sends requests and prints the traces the embedded "
            "OTLP receiver got. No cluster and no Lumigo account needed."
        ),
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        help="only preview what the injector would change in this manifest (nothing is run)",
    )
    parser.add_argument("--receiver-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--namespace", default="default", help="namespace the pods run in")
    parser.add_argument("--workdir", type=Path, help="keep volumes and logs here (default: temp)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lumigo_devtools.demo.apps import DemoError
    from lumigo_devtools.demo.runner import DemoOptions, default_manifest, preview
    from lumigo_devtools.demo.runner import run as run_demo

    color = sys.stdout.isatty()
    try:
        if args.manifest is not None:
            if not args.manifest.exists():
                print(f"lumigo-injector demo: no such file: {args.manifest}", file=sys.stderr)
                return 2
            return preview(args.manifest, sys.stdout, color)
        options = DemoOptions(
            manifest=default_manifest(),
            namespace=args.namespace,
            receiver_port=args.receiver_port,
            workdir=args.workdir,
            color=color,
        )
        return run_demo(options, sys.stdout)
    except DemoError as exc:
        print(f"\nlumigo-injector demo failed: {exc}", file=sys.stderr)
        return 1
