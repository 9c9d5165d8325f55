"""`lumigo-injector ecs`: inject a task definition file, or a live ECS service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lumigo_injector.commands import options
from lumigo_injector.ecs import aws as ecs_aws
from lumigo_injector.ecs import rewrite as ecs
from lumigo_injector.ecs import taskdef
from lumigo_injector.spec.names import DEFAULT_INIT_IMAGE

PROG = "lumigo-injector ecs"

EXAMPLES = """\
examples:
  lumigo-injector ecs -f taskdef.json --token-secret-arn ARN > injected.json
  aws ecs describe-task-definition --task-definition web | lumigo-injector ecs -f -
  lumigo-injector ecs --cluster prod --service web --token-secret-arn ARN --dry-run
  lumigo-injector ecs --cluster prod --service web --uninject

exit status: 0 done, 1 AWS call failed, 2 invalid input or options (nothing registered)
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ecs",
        help="inject an ECS task definition (file or live service)",
        description="Rewrite an ECS task definition so its Python containers load the Lumigo "
        "layer: from a file (the result goes to stdout), or for a live service (a new "
        "revision is registered and the service updated to it).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("what to rewrite (one of)")
    source.add_argument(
        "-f",
        "--file",
        metavar="PATH",
        help="a task definition JSON file, '-' for stdin: the RegisterTaskDefinition input "
        "or the DescribeTaskDefinition output",
    )
    source.add_argument("--service", help="the ECS service to update")
    source.add_argument(
        "--cluster", default="default", help="the service's cluster (default: %(default)s)"
    )
    source.add_argument("--region", help="AWS region (default: the standard AWS settings)")
    opts = parser.add_argument_group("injection")
    opts.add_argument(
        "--token-secret-arn",
        metavar="ARN",
        help="Secrets Manager secret or SSM parameter ARN holding the Lumigo token; "
        "becomes LUMIGO_TRACER_TOKEN through the container's `secrets`",
    )
    options.add(opts, options.ENDPOINT, None, "URL")
    opts.add_argument(
        "--containers",
        metavar="A,B",
        help="comma list of containers to inject (default: every container but known sidecars)",
    )
    options.add(opts, options.INIT_IMAGE, DEFAULT_INIT_IMAGE, "IMAGE")
    opts.add_argument("--uninject", action="store_true", help="remove the injection instead")
    opts.add_argument(
        "--dry-run",
        action="store_true",
        help="print a unified diff of the change instead; register nothing",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if (args.file is None) == (args.service is None):
            raise taskdef.TaskDefinitionError("give either -f/--file or --service")
        settings = _settings(args)
        if args.file is not None:
            return _run_file(args, settings)
        return _run_service(args, settings)
    except (taskdef.TaskDefinitionError, OSError, UnicodeDecodeError) as exc:
        _err(f"error: {exc}")
        return 2
    except ecs_aws.AwsError as exc:
        _err(f"error: {exc}")
        return 1


def _settings(args: argparse.Namespace) -> ecs.EcsSettings:
    containers = None
    if args.containers is not None:
        containers = tuple(n.strip() for n in args.containers.split(",") if n.strip())
        if not containers:
            raise taskdef.TaskDefinitionError("--containers names no container")
    if args.token_secret_arn is not None:
        taskdef.validate_secret_arn(args.token_secret_arn)
    injection = options.collect(args, (options.INIT_IMAGE, options.ENDPOINT), {})
    return ecs.EcsSettings(
        **injection.get("injection", {}),
        token_secret_arn=args.token_secret_arn,
        containers=containers,
    )


def _rewrite(
    td: dict[str, Any], args: argparse.Namespace, settings: ecs.EcsSettings
) -> dict[str, Any]:
    if args.uninject:
        return ecs.uninject(td)
    result = ecs.inject(td, settings)
    for name, reason in result.skipped:
        _err(f"skipped container {name!r}: {reason}")
    for warning in result.warnings:
        _err(f"warning: {warning}")
    return result.task_definition


def _run_file(args: argparse.Namespace, settings: ecs.EcsSettings) -> int:
    source = "stdin" if args.file == "-" else args.file
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    before = taskdef.parse_task_definition(text, source)
    after = _rewrite(before, args, settings)
    if args.dry_run:
        sys.stdout.write(taskdef.diff(before, after, source, f"{source} (rewritten)"))
    else:
        sys.stdout.write(taskdef.render(after))
    return 0


def _run_service(args: argparse.Namespace, settings: ecs.EcsSettings) -> int:
    client = ecs_aws.client(args.region)
    current = ecs_aws.describe(client, args.cluster, args.service)
    taskdef.validate(current.task_definition)
    after = _rewrite(current.task_definition, args, settings)
    unchanged = after == current.task_definition
    if args.token_secret_arn and not args.uninject:
        problem = ecs_aws.secret_warning(args.token_secret_arn)
        if problem:
            _err(f"warning: {problem}")
    if args.dry_run:
        new_name = f"{after['family']} (new revision)"
        sys.stdout.write(taskdef.diff(current.task_definition, after, current.arn, new_name))
        if unchanged:
            _err(f"{current.arn} needs no change")
        return 0
    if unchanged:
        _err(f"{current.arn} needs no change; nothing registered")
        print(current.arn)
        return 0
    arn = ecs_aws.register(client, after)
    try:
        ecs_aws.point_service(client, args.cluster, args.service, arn)
    except (taskdef.TaskDefinitionError, ecs_aws.AwsError) as exc:
        _err(f"error: registered {arn} but could not update service {args.service!r}: {exc}")
        return 1
    _err(f"registered {arn} and updated service {args.service!r} in cluster {args.cluster!r}")
    print(arn)
    return 0


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)
