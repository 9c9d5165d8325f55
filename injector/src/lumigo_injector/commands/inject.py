"""`lumigo-injector inject -f FILE|-`: inject manifests offline (like `istioctl kube-inject`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lumigo_injector.commands import options
from lumigo_injector.k8s.manifests import ManifestError, describe, dump_documents, load_documents
from lumigo_injector.k8s.manifests import transform as transform_documents
from lumigo_injector.k8s.mutation import InjectionSettings, inject, uninject
from lumigo_injector.spec import names as constants
from lumigo_injector.spec.delivery import DELIVERIES

PROG = "lumigo-injector inject"

DESCRIPTION = f"""\
Read Kubernetes manifests (multi-document YAML or JSON: Pods, Deployments, StatefulSets,
DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and Lists of them) and write
them to stdout with the Lumigo layer injected into every pod template annotated
{constants.ANNOTATION_INJECT}=python. Other kinds pass through unchanged.
"""

EXAMPLES = """\
examples:
  lumigo-injector inject -f deployment.yaml | kubectl apply -f -
  kubectl get deploy web -o yaml | lumigo-injector inject -f - --all
  lumigo-injector inject -f deployment.yaml --delivery image-volume   # Kubernetes 1.35+
  lumigo-injector inject -f injected.yaml --uninject > original.yaml

exit status: 0 done, 1 stdout closed early, 2 invalid input (nothing is written to stdout)
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inject",
        help="inject Kubernetes manifests offline (YAML or JSON, to stdout)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f",
        "--filename",
        "--file",
        dest="file",
        required=True,
        metavar="FILE",
        help="the manifest file, '-' for stdin",
    )
    parser.add_argument(
        "--uninject", action="store_true", help="remove a previous injection instead"
    )
    parser.add_argument(
        "--all",
        dest="inject_all",
        action="store_true",
        help=f"inject every workload without {constants.ANNOTATION_INJECT}=false, annotated or not",
    )
    defaults = InjectionSettings()
    options.add(parser, options.INIT_IMAGE, defaults.init_image, "IMAGE")
    parser.add_argument(
        "--delivery",
        choices=DELIVERIES,
        default=defaults.delivery,
        help=(
            "how pods get the layer: copied by an init container (any Kubernetes), or the init "
            "image mounted as a read-only image volume (Kubernetes 1.35+, no copy); a "
            f"{constants.ANNOTATION_DELIVERY} annotation on a pod template wins "
            "(default: %(default)s)"
        ),
    )
    options.add(parser, options.SECRET_NAME, defaults.secret_name, "NAME")
    options.add(parser, options.SECRET_KEY, defaults.secret_key, "KEY")
    options.add(parser, options.ENDPOINT, None, "URL")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only errors and warnings on stderr"
    )
    parser.set_defaults(func=run)


def _read(path: str) -> str:
    if path == "-":
        data = sys.stdin.buffer.read()
        source = "stdin"
    else:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise ManifestError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ManifestError(f"{path}: is a directory") from None
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read: {exc.strerror or exc}") from None
        source = path
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source}: not UTF-8 text (byte {exc.start})") from None


def run(args: argparse.Namespace) -> int:
    """Read, transform, then write everything at once: stdout stays empty on any error."""
    settings = InjectionSettings(
        **options.collect(args, options.SHARED, {}).get("injection", {}),
        inject_all=args.inject_all,
        delivery=args.delivery,
    )
    source = "stdin" if args.file == "-" else args.file

    def mutate(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        name = describe(document)
        if args.uninject:
            new = uninject(document)
            return new, ([] if new != document else [f"{name}: not injected, unchanged"])
        result = inject(document, settings)
        notes = [f"warning: {name}: {warning}" for warning in result.warnings]
        if not result.injected:
            hint = " (use --all to inject anyway)" if result.unannotated else ""
            notes.append(f"{name}: {result.reason}{hint}")
        return result.obj, notes

    try:
        documents, fmt = load_documents(_read(args.file))
        outcome = transform_documents(documents, mutate)
        text = dump_documents(outcome.documents, fmt)
    except ManifestError as exc:
        message = str(exc)
        where = "" if message.startswith(f"{args.file}:") else f"{source}: "
        print(f"{PROG}: error: {where}{message}", file=sys.stderr)
        return 2
    for note in outcome.notes:
        if not args.quiet or note.startswith("warning:"):
            print(f"{PROG}: {note}", file=sys.stderr)
    return _write(text)


def _write(text: str) -> int:
    """Write the result as UTF-8, whatever the locale; a closed pipe (`| head`) is not a crash."""
    try:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
