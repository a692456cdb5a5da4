"""An operation's CLI arguments, built from its spec (the service's), and its run from the parsed arguments:
the CLI spells no option of an operation itself."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sec_wrapper.errors import SecError
from sec_wrapper.operations import service
from sec_wrapper.operations.spec import ConfirmationNeeded, OperationRequest, OperationSpec, Prepared
from sec_wrapper.render import print_json
from sec_wrapper.runner import OperationResult

# How a command says its result to a person: from the result document (and the run, for its id).
Say = Callable[[Any, OperationResult], None]


def add_operation(sub: argparse._SubParsersAction, spec: OperationSpec, name: str | None = None
                  ) -> argparse.ArgumentParser:
    """`sec NAME` with the spec's options; --cluster for site operations, --yes where it needs a confirmation."""
    parser = sub.add_parser(name or spec.name, help=spec.summary)
    for option in spec.options:
        if option.kind == "object":
            continue  # a JSON object: each command offers its own way to give it (`site settings --file`)
        kwargs: dict[str, Any] = {"help": option.help or None}
        if option.metavar:
            kwargs["metavar"] = option.metavar
        if option.kind == "int":
            kwargs["type"] = int
        if option.kind == "choice":
            kwargs["choices"] = option.choices
        if option.positional:
            if option.kind == "list":
                kwargs["nargs"] = "*"
            elif not option.required:
                kwargs["nargs"] = "?"
            parser.add_argument(option.name, **kwargs)
            continue
        flag = "--" + option.name.replace("_", "-")
        if option.kind == "bool":
            parser.add_argument(flag, action="store_true", help=option.help or None)
            continue
        if option.kind == "list":
            kwargs["action"] = "append"
        parser.add_argument(flag, required=option.required, default=option.default, **kwargs)
    if spec.site_scoped:
        parser.add_argument("--cluster", help="when a site's name is in several clusters")
    if spec.confirm:
        parser.add_argument("--yes", action="store_true",
                            help="needed on a production site: it takes the site down or changes its data"
                            if spec.confirm == "production" else "needed: it changes the target's data")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(spec=spec)
    return parser


def request_of(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> OperationRequest:
    spec: OperationSpec = args.spec
    options = {o.name: getattr(args, o.name) for o in spec.options
               if o.name != "site" and hasattr(args, o.name)}
    return OperationRequest(spec.name, site=getattr(args, "site", None), options={**options, **(extra or {})},
                            cluster=getattr(args, "cluster", None), confirmed=bool(getattr(args, "yes", False)))


def prepare(request: OperationRequest) -> Prepared:
    try:
        return service.prepare(request)
    except ConfirmationNeeded as exc:
        raise SecError(f"{exc.what}: add --yes to go ahead") from None


def run(args: argparse.Namespace, extra: dict[str, Any] | None = None,
        allow_failed_result: bool = False) -> tuple[Prepared, OperationResult]:
    """Runs the parsed command's operation here; a failure is one line naming the log (a SecError), unless
    `allow_failed_result` and the failed run still has a result document (sync-media's names)."""
    prepared = prepare(request_of(args, extra))
    result = service.run(prepared)
    if not result.ok and not (allow_failed_result and result.result is not None):
        raise service.failure(prepared, result)
    return prepared, result


def add_said_operation(sub: argparse._SubParsersAction, spec: OperationSpec, say: Say, name: str | None = None
                       ) -> argparse.ArgumentParser:
    """`add_operation` for a command that runs the operation and prints its result: --json prints the
    result document, else `say` words it."""
    parser = add_operation(sub, spec, name)
    parser.set_defaults(func=lambda args: run_and_say(args, say))
    return parser


def run_and_say(args: argparse.Namespace, say: Say, extra: dict[str, Any] | None = None) -> int:
    _, result = run(args, extra)
    if args.json:
        print_json(result.result)
    else:
        say(result.result, result)
    return 0
