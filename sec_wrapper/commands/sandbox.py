"""`sec sandbox up | status | down`: the local mini-cluster for tests and demos."""

from __future__ import annotations

import argparse
from pathlib import Path

from sec_wrapper.render import print_fields, print_json, print_table


def Sandbox(folder: Path | None, topology: str | None = None):  # noqa: N802 (stands for the class)
    # The sandbox pulls in psycopg; import it only when a sandbox command runs, so `sec` starts fast.
    from sec_wrapper.sandbox import open_sandbox

    return open_sandbox(folder, topology)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sandbox", help="a real local mini-cluster (sshd, Apache, PostgreSQL)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = actions.add_parser("up", help="start the sandbox and its reference sites")
    up.add_argument("--dir", type=Path, help="sandbox folder (default: under the data folder; sandbox-split "
                    "for --topology split)")
    up.add_argument("--events", type=int, default=100_000, help="events per site (default 100000)")
    up.add_argument("--media-files", type=int, default=50, help="media files on the production site")
    up.add_argument("--version", default="8.0.0", help="starting release of the sites (default 8.0.0)")
    up.add_argument("--topology", choices=("single", "split"), default="single",
                    help="single: one host is App and DB server; split: app1, app2, api1 and db1 on their own "
                         "loopback addresses (default single)")
    up.add_argument("--json", action="store_true")
    up.set_defaults(func=_up)

    for name, func, text in (("status", _status, "what runs"), ("down", _down, "stop everything, remove it")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--dir", type=Path, help="sandbox folder (default: the last one brought up)")
        action.add_argument("--json", action="store_true")
        action.set_defaults(func=func)


def _up(args: argparse.Namespace) -> int:
    sandbox = Sandbox(args.dir, args.topology)
    progress = None if args.json else (lambda msg: print(f"  {msg}", flush=True))
    summary = sandbox.up(events=args.events, media_files=args.media_files, version=args.version,
                         progress=progress)
    if args.json:
        print_json(summary)
        return 0
    app = summary["app_server"]
    if summary.get("topology") == "split":
        print(f"\nsplit sandbox up in {summary['dir']}")
        print_table([{**h, "ssh": f"{h['address']}:{h['ssh']['port']}", "roles": ",".join(h["roles"])}
                     for h in summary["hosts"].values()], ["name", "address", "roles", "ssh"])
        print_table(summary["sites"], ["name", "role", "version", "media"])
        print("\nnext, register the cluster host by host:")
        for line in summary["commands"]:
            print(f"  {line}")
        return 0
    print(f"\nsandbox up in {summary['dir']}")
    print_table(summary["sites"], ["name", "role", "version", "site_dir", "url"])
    print("\nnext, create a cluster from its App server:")
    print(f"  sec cluster create sandbox --app-server {app['address']} --port {app['port']} "
          f"--user {app['user']} --key {app['key']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = Sandbox(args.dir).status()
    if args.json:
        print_json(status)
        return 0
    print_fields({"dir": status["dir"], "topology": status.get("topology", "single"), "healthy": status["healthy"],
                  "ssh": f"{status['app_server']['address']}:{status['app_server']['port']}"})
    print_table([{"process": k, **v} for k, v in status["processes"].items()], ["process", "pid", "running"])
    return 0 if status["healthy"] else 1


def _down(args: argparse.Namespace) -> int:
    sandbox = Sandbox(args.dir)
    stopped = sandbox.down()
    if args.json:
        print_json({"dir": str(sandbox.dir), "stopped": stopped})
    else:
        print(f"sandbox at {sandbox.dir} is down ({', '.join(stopped) or 'nothing was running'}); folder removed")
    return 0
