"""Brings the sandbox up, reports on it and takes it down. Everything lives under one folder; every
process it starts is recorded in state.json by pid and stopped by that pid."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.sandbox import apache, postgres, ssh
from sec_wrapper.sandbox.processes import alive, free_port, start_daemon, stop, wait_for_port
from sec_wrapper.sandbox.releases import SERIES, build_series
from sec_wrapper.sandbox.sites import SiteSpec, create_site_dir, migrate_and_seed, new_spec

DEFAULT_SITES = [("prod.teststudio.com", "production"), ("staging.teststudio.com", "staging")]
POINTER = "sandbox.json"


def world_traversable(path: Path) -> bool:
    """Whether another OS user (postgres, www-data) can reach path: every ancestor has o+x."""
    path = path.resolve()
    for ancestor in [path, *path.parents]:
        if ancestor.exists() and not os.stat(ancestor).st_mode & 0o001:
            return False
    return True


def default_dir() -> Path:
    """The last sandbox brought up, else under the data folder. As root, PostgreSQL and Apache run as
    their own users, who cannot reach a private home: then /var/tmp/sec-sandbox instead."""
    pointer = sec_home() / POINTER
    if pointer.exists():
        return Path(json.loads(pointer.read_text())["dir"])
    return fresh_dir()


def fresh_dir(suffix: str = "") -> Path:
    """Where a new sandbox goes without --dir: under the data folder, else (as root, when the data folder
    is private) under /var/tmp. `suffix` keeps a split sandbox beside the single one."""
    candidate = sec_home() / f"sandbox{suffix}"
    if os.geteuid() == 0 and not world_traversable(candidate.parent):
        return Path(f"/var/tmp/sec-sandbox{suffix}")
    return candidate


class Sandbox:
    def __init__(self, folder: Path | None = None) -> None:
        self.dir = (folder or default_dir()).absolute()
        self.state_file = self.dir / "state.json"

    # -- reading ---------------------------------------------------------------------------------
    def state(self) -> dict:
        if not self.state_file.exists():
            raise SecError(f"no sandbox at {self.dir}: start one with `sec sandbox up`")
        return json.loads(self.state_file.read_text())

    def processes(self, state: dict) -> dict[str, int]:
        procs = {k: v for k, v in state.get("pids", {}).items() if k != "apps"}
        procs.update({f"app:{k}": v for k, v in state.get("pids", {}).get("apps", {}).items()})
        return procs

    def status(self) -> dict:
        state = self.state()
        running = {name: {"pid": pid, "running": alive(pid)} for name, pid in self.processes(state).items()}
        return {**self.summary(state), "processes": running,
                "healthy": all(p["running"] for p in running.values())}

    def summary(self, state: dict) -> dict:
        app = state["app_server"]
        backup = state.get("backup_host")
        commands = [f"sec cluster create sandbox --app-server {app['address']} --port {app['port']} "
                    f"--user {shlex.quote(app['user'])} --key {shlex.quote(app['key'])}"]
        if backup:
            commands.append(backup_host_command("sandbox", backup))
        return {
            "dir": str(self.dir),
            "topology": "single",
            "app_server": app,
            "apache": state["apache"],
            "postgres": {k: state["postgres"][k] for k in ("port", "data")},
            "releases_dir": state["releases_dir"],
            "sites": state["sites"],
            "backup_host": backup,
            "commands": commands,
        }

    # -- up --------------------------------------------------------------------------------------
    # What a topology changes: its first state, how it brings its hosts up (_up), and the pointer.
    label = "sandbox"

    def _new_state(self) -> dict:
        return {"dir": str(self.dir), "pids": {"apps": {}}, "started": time.time(), "sites": []}

    def _point_at_this(self) -> None:
        """`sec sandbox status/down` without --dir name the sandbox brought up last."""
        (sec_home() / POINTER).write_text(json.dumps({"dir": str(self.dir)}) + "\n")

    def up(self, events: int = 100_000, media_files: int = 50, version: str = "8.0.0",
           sites: list[tuple[str, str]] | None = None, releases_dir: Path | None = None,
           progress=None) -> dict:
        say = progress or (lambda msg: None)
        # Refused before anything exists: a sandbox already there, an unknown version, a folder the
        # postgres and www-data users cannot reach.
        self._refuse_existing()
        if version not in SERIES:
            raise SecError(f"--version {version} is not a reference release; choose one of {', '.join(SERIES)}")
        if os.geteuid() == 0 and not world_traversable(self.dir.parent):
            raise SecError(f"{self.dir.parent} is not reachable by the postgres and www-data users (as root the "
                           "sandbox needs every parent folder to be o+x): choose --dir under /var/tmp")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        state = self._new_state()
        try:
            self._up(state, events, media_files, version, sites or DEFAULT_SITES,
                     Path(releases_dir) if releases_dir else sec_home() / "releases", say)
        except Exception as exc:
            self._write_state(state)
            self.down()
            if isinstance(exc, SecError):
                raise
            raise SecError(f"{self.label} up failed, everything it started was stopped: {exc}") from exc
        self._point_at_this()
        return self.summary(state)

    def _refuse_existing(self) -> None:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            running = [n for n, pid in self.processes(state).items() if alive(pid)]
            what = "is up" if running else "was not taken down"
            raise SecError(f"a sandbox {what} at {self.dir}: run `sec sandbox down` first")

    def _up(self, state: dict, events: int, media_files: int, version: str, site_list: list[tuple[str, str]],
            releases_dir: Path, say) -> None:
        sites_root = self.dir / "root" / "var" / "rails"
        sites_root.mkdir(parents=True, exist_ok=True)
        say("building the release series")
        build_series(releases_dir)
        state["releases_dir"] = str(releases_dir)

        say("starting PostgreSQL")
        state["postgres"] = postgres.setup(self.dir / "pg")
        self._write_state(state)
        state["pids"]["postgres"] = postgres.start(state["postgres"])
        self._write_state(state)

        apache_info = apache.setup(self.dir / "apache", sites_root)
        state["apache"] = apache_info
        specs: list[SiteSpec] = []
        for index, (name, role) in enumerate(site_list):
            spec = new_spec(name, role)
            spec.app_port = free_port()
            site_dir = sites_root / spec.reverse_name
            say(f"creating {name} ({role}, {version}, {events} events)")
            postgres.create_site_database(state["postgres"], spec.db_name, spec.db_user, spec.db_password)
            create_site_dir(site_dir, spec, version, releases_dir, state["postgres"]["port"], media_files,
                            media_seed_count=media_files if index == 0 else media_files // 2)
            migrate_and_seed(state["postgres"], spec, version, events)
            apache.add_site(Path(apache_info["server_root"]), name, spec.reverse_name, spec.app_port,
                            apache_info["port"])
            specs.append(spec)
            state["sites"].append({
                **spec.public(site_dir),
                "url": f"http://127.0.0.1:{apache_info['port']}/",
                "host_header": name,
                "version": version,
            })

        say("starting the site applications")
        for spec, site in zip(specs, state["sites"], strict=True):
            log = Path(site["site_dir"]) / "shared/log/app.log"
            pid = start_daemon([sys.executable, "-m", "sec_wrapper.sandbox.site_app", "--site-dir",
                                site["site_dir"], "--name", spec.name, "--port", str(spec.app_port)], log,
                               env=_app_env())
            state["pids"]["apps"][spec.name] = pid
            self._write_state(state)
            wait_for_port(spec.app_port, pid=pid, log=log)

        say("starting Apache")
        state["pids"]["apache"] = apache.start(apache_info)
        self._write_state(state)

        say("starting sshd")
        ssh_info = ssh.setup(self.dir / "ssh", Path(apache_info["config"]))
        state["ssh"] = ssh_info
        state["pids"]["sshd"] = ssh.start(self.dir / "ssh", ssh_info)
        state["app_server"] = {"address": "127.0.0.1", "port": ssh_info["port"], "user": ssh_info["user"],
                               "key": ssh_info["key"], "known_hosts": ssh_info["known_hosts"]}
        self._write_state(state)

        say(f"starting backup1, a backup host ({BACKUP_ADDRESS})")
        state["backup_host"], state["pids"]["sshd:backup1"] = start_backup_host(self.dir, BACKUP_ADDRESS)
        self._write_state(state)

    def _write_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.state_file)

    # -- down ------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stops every recorded process (and its children) by pid, then removes the folder."""
        if not self.dir.exists():
            raise SecError(f"no sandbox at {self.dir}")
        stopped: list[str] = []
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            procs = self.processes(state)
            # sshd first (no new operation gets in), then Apache and the apps, PostgreSQL last.
            rank = {"sshd": 0, "apache": 1, "app": 2, "postgres": 3}
            order = sorted(procs, key=lambda n: (rank.get(n.split(":")[0], 2), n))
            for name in order:
                pid = procs.get(name)
                if pid and alive(pid):
                    # PostgreSQL's fast shutdown is SIGINT; the others stop on SIGTERM.
                    stop(pid, sig=2 if name == "postgres" else 15)
                    stopped.append(name)
        shutil.rmtree(self.dir)
        pointer = sec_home() / POINTER
        if pointer.exists() and json.loads(pointer.read_text()).get("dir") == str(self.dir):
            pointer.unlink()
        return stopped


# The single sandbox's backup host: its own loopback address, sshd and root (split: 127.0.0.15).
BACKUP_ADDRESS = "127.0.0.21"


def start_backup_host(folder: Path, address: str) -> tuple[dict, int]:
    """backup1: a NAS stand-in with its own sshd on its own loopback address, and its files under
    ``hosts/backup1/root`` (the copies go to ``<root>/srv/sec-backups``). Returns its summary and sshd's pid."""
    root = folder / "hosts" / "backup1" / "root"
    backup_dir = root / "srv" / "sec-backups"
    backup_dir.mkdir(parents=True, exist_ok=True)
    # No web server there: discovery on it is pinned to an empty configuration.
    apache_config = root / "etc/apache2/apache2.conf"
    apache_config.parent.mkdir(parents=True, exist_ok=True)
    apache_config.write_text("# backup1 runs no web server\n")
    ssh_folder = folder / "hosts" / "backup1" / "ssh"
    info = ssh.setup(ssh_folder, apache_config, address=address)
    pid = ssh.start(ssh_folder, info)
    return {"name": "backup1", "address": address, "roles": ["backup"], "root": str(root),
            "backup_dir": str(backup_dir), "ssh": info}, pid


def backup_host_command(cluster: str, host: dict) -> str:
    """The `sec host add` line that registers a sandbox's backup host."""
    login = host["ssh"]
    return (f"sec host add {cluster} {host['name']} --address {host['address']} --port {login['port']} "
            f"--user {shlex.quote(login['user'])} --key {shlex.quote(login['key'])} --roles backup "
            f"--backup-dir {shlex.quote(host['backup_dir'])}")


def _app_env() -> dict[str, str]:
    env = dict(os.environ)
    # The app imports sec_wrapper from the same checkout, whatever the caller's working directory.
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    return env
