"""`sec advanced list | run`: the low-level operations (the collection's modules), one at a time."""

from __future__ import annotations

import argparse

from sec_wrapper.errors import SecError
from sec_wrapper.paths import COLLECTIONS_DIR
from sec_wrapper.render import print_json, print_table
from sec_wrapper.site_operation import first_result, run_on_site

MODULES_DIR = COLLECTIONS_DIR / "ansible_collections" / "fpt" / "sec" / "plugins" / "modules"
# The engine itself, and the lock every run already takes, are not operations of their own here.
NOT_LISTED = {"run_module", "site_lock"}


def low_level_modules() -> list[dict]:
    # Slow to import (Ansible's doc parser): only when listing.
    from ansible_collections.fpt.sec.plugins.plugin_utils.module_docs import module_doc

    rows = []
    for path in sorted(MODULES_DIR.glob("*.py")):
        if path.stem in NOT_LISTED or path.stem.startswith("_"):
            continue
        doc = module_doc(str(path))
        rows.append({"module": path.stem, "description": doc.get("short_description", ""),
                     "options": sorted(doc.get("options") or {})})
    return rows


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("advanced", help="low-level operations: run one module of fpt.sec on a site")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the low-level modules, one line each")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)
    run = actions.add_parser("run", help="run one module on a site (recorded like any operation)")
    run.add_argument("module")
    run.add_argument("site")
    run.add_argument("args", nargs="*", metavar="KEY=VALUE", help="the module's own arguments")
    run.add_argument("--cluster")
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=_run)


def _list(args: argparse.Namespace) -> int:
    rows = low_level_modules()
    if args.json:
        print_json(rows)
    else:
        print_table(rows, ["module", "description"])
    return 0


def _run(args: argparse.Namespace) -> int:
    known = {m["module"]: m for m in low_level_modules()}
    if args.module not in known:
        raise SecError(f"no low-level module {args.module}: choose one of {', '.join(sorted(known))}")
    module_args = {}
    for item in args.args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SecError(f"{item!r}: write KEY=VALUE, e.g. state=on")
        module_args[key] = value  # the module's argument spec types it
    _, site, result = run_on_site(f"advanced {args.module}", "advanced/run_module.yml", args.site, args.cluster,
                                  {"module": args.module, "module_args": module_args},
                                  arguments={"module": args.module, **module_args})
    answer = first_result(result, "fpt.sec.run_module")
    if args.json:
        print_json({"operation": result.id, "site": site.name, "result": answer})
    else:
        print(f"{site.name}: fpt.sec.{args.module} {'changed' if answer.get('changed') else 'ok'} "
              f"(operation {result.id})")
    return 0
