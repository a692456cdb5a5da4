"""The sandbox DB server: a real PostgreSQL initialised in the sandbox folder, on a free loopback port.

As root the server runs as the `postgres` OS user (PostgreSQL refuses root); otherwise as the caller.
The superuser is reached only through the Unix socket in a 0700 folder; sites log in over TCP with a
password (scram-sha-256), as their database.yml says.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg

from sec_wrapper.sandbox.processes import free_port, system_tool, wait_for_port


def bindir() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian keeps it off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise RuntimeError("PostgreSQL server not found: install the postgresql package")


def server_user() -> str | None:
    """The OS user that runs the server: `postgres` when we are root, else None (ourselves)."""
    return "postgres" if os.geteuid() == 0 else None


def _as_server_user(argv: list[str]) -> list[str]:
    user = server_user()
    return [system_tool(("runuser",), "util-linux"), "-u", user, "--", *argv] if user else argv


def setup(folder: Path, address: str = "127.0.0.1") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = folder / "run"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    user = server_user()
    if user:
        entry = pwd.getpwnam(user)
        for path in (folder, run_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    bins = bindir()
    data = folder / "data"
    subprocess.run(
        _as_server_user([str(bins / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                         "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"]),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    port = free_port()
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"\n# sec sandbox\nport = {port}\nlisten_addresses = '{address}'\n"
            f"unix_socket_directories = '{run_dir}'\nunix_socket_permissions = 0700\n"
            "max_connections = 100\nshared_buffers = 256MB\nmax_wal_size = 4GB\n"
            "logging_collector = off\n"
        )
    return {"port": port, "address": address, "data": str(data), "socket_dir": str(run_dir), "bindir": str(bins),
            "log": str(folder / "postgres.log")}


def start(info: dict) -> int:
    log = Path(info["log"])
    log.touch()
    user = server_user()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(log, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        _as_server_user([os.path.join(info["bindir"], "pg_ctl"), "-D", info["data"], "-l", str(log), "-w",
                         "-t", "60", "start"]),
        check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    wait_for_port(info["port"], log=log, address=info.get("address", "127.0.0.1"))
    return postmaster_pid(info)


def postmaster_pid(info: dict) -> int:
    return int((Path(info["data"]) / "postmaster.pid").read_text().split()[0])


def superuser(info: dict, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host=info["socket_dir"], port=info["port"], user="postgres", dbname=dbname,
                           autocommit=True)


def create_site_database(info: dict, name: str, user: str, password: str) -> None:
    """A login role with a real password that owns its database (and may create the restore copy)."""
    with superuser(info) as conn:
        conn.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                psycopg.sql.Identifier(user), psycopg.sql.Literal(password)
            )
        )
        conn.execute(
            psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                psycopg.sql.Identifier(name), psycopg.sql.Identifier(user)
            )
        )
