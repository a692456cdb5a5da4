"""`sec serve`: the web console (pages and JSON API) on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from sec_wrapper import accounts
from sec_wrapper.errors import SecError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="the web console: clusters, sites, operations, releases (and /api/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; widen only with --cert/--key)")
    parser.add_argument("--port", type=int, default=8080, help="default 8080; 0 picks a free port")
    parser.add_argument("--cert", type=Path, help="TLS certificate (PEM): serve HTTPS")
    parser.add_argument("--key", type=Path, help="TLS private key (PEM) of --cert")
    parser.add_argument("--max-upload", type=_size, default="2G", metavar="SIZE",
                        help="largest release archive the console takes, e.g. 800M or 4G (default 2G); larger "
                             "uploads are refused with 413 before they reach the disk")
    parser.add_argument("--refresh", type=float, default=60, metavar="SECONDS",
                        help="read every site's state (maintenance, release, health, backups, space) in the "
                             "background this often (default 60; 0: only when a page finds none)")
    parser.add_argument("--schedule-every", type=float, default=30, metavar="SECONDS",
                        help="run due schedules and check alerts this often (default 30; 0: no scheduler here, "
                             "e.g. when a systemd timer runs `sec schedule run-due`)")
    parser.set_defaults(func=_serve)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """'800M' -> bytes; argparse turns the ValueError into a one-line usage error."""
    number, unit = text.strip().upper().rstrip("B").rstrip("I"), ""
    if number and number[-1] in _UNITS:
        number, unit = number[:-1], number[-1]
    if not number.isdigit() or int(number) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give bytes or a number with K, M, G or T")
    return int(number) * _UNITS[unit]


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before the URL is printed: a client that connects at once waits in the kernel's queue
        # until uvicorn accepts, instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SecError(f"cannot listen on {host}:{port}: {exc.strerror}: choose another --port") from None
    return sock


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sec_wrapper.web.app import create_app

    if bool(args.cert) != bool(args.key):
        raise SecError("--cert and --key go together: give both to serve HTTPS")
    for path in (args.cert, args.key):
        if path and not path.is_file():
            raise SecError(f"{path} does not exist")
    tls = bool(args.cert)
    if not is_loopback(args.host) and not tls:
        print(f"sec: warning: serving on {args.host} without TLS: passwords and session cookies cross the network "
              "in clear; give --cert/--key, or keep the default --host 127.0.0.1 behind a TLS proxy",
              file=sys.stderr)
    if not accounts.list_users():
        print("sec: warning: no account yet, nobody can log in: sec user add NAME (the password on stdin)",
              file=sys.stderr)
    sock = _listen(args.host, args.port)  # bound here, so --port 0 can print the port it got
    app = create_app(secure_cookies=tls, max_upload=args.max_upload, background_state=True,
                     refresh_every=args.refresh if args.refresh > 0 else None,
                     schedule_every=args.schedule_every if args.schedule_every > 0 else None)
    config = uvicorn.Config(app, log_level="info", proxy_headers=False,
                            server_header=False, ssl_certfile=str(args.cert) if tls else None,
                            ssl_keyfile=str(args.key) if tls else None)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"sec console: {'https' if tls else 'http'}://{shown}:{port}/", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
