"""The split sandbox: a cluster as larger studios run it, four hosts on their own loopback addresses.

- app1, app2: App servers, each with its own sshd, Apache, copy of every site's code and app processes;
- api1: an API server, the same but its vhost serves the API paths (and the status page) only;
- db1: the DB server, PostgreSQL listening on its own address, reached over TCP as database.yml says;
- backup1: a backup host (a NAS stand-in) whose folder `srv/sec-backups` takes the copies of the backups.

Each host's files live under `hosts/<host>/root`, so nothing one host writes is seen by another, except
each site's media: `nfs/<reverse_name>`, which every web head sees at `<site_dir>/media` (the stand-in for
the NFS mount studios use). Every process is recorded by pid in state.json, as for the single sandbox.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from sec_wrapper.paths import sec_home
from sec_wrapper.sandbox import apache, postgres, ssh
from sec_wrapper.sandbox.processes import free_port, start_daemon, wait_for_port
from sec_wrapper.sandbox.releases import build_series
from sec_wrapper.sandbox.sandbox import POINTER, Sandbox, _app_env
from sec_wrapper.sandbox.sites import SiteSpec, create_site_dir, migrate_and_seed, new_spec

# name, address, roles: 127.0.0.0/8 is all loopback, so each host has an address of its own.
HOSTS = [("app1", "127.0.0.11", ["app"]), ("app2", "127.0.0.12", ["app"]), ("api1", "127.0.0.13", ["api"]),
         ("db1", "127.0.0.14", ["db"]), ("backup1", "127.0.0.15", ["backup"])]
WEB_ROLES = ("app", "api")
CLUSTER_NAME = "split"


def registration_commands(hosts: dict[str, dict], cluster: str = CLUSTER_NAME) -> list[str]:
    """The `sec` lines that register the split cluster: create on app1, then add the other hosts."""
    def login(host: dict) -> str:
        ssh_info = host["ssh"]
        return f"--port {ssh_info['port']} --user {shlex.quote(ssh_info['user'])} --key {shlex.quote(ssh_info['key'])}"

    order = [name for name, _, _ in HOSTS]  # state.json sorts its keys: app1 first again
    first, *others = sorted(hosts.values(), key=lambda h: order.index(h["name"]) if h["name"] in order else 99)
    lines = [f"sec cluster create {cluster} --app-server {first['address']} --host-name {first['name']} {login(first)}"]
    lines += [f"sec host add {cluster} {h['name']} --address {h['address']} {login(h)} --roles {','.join(h['roles'])}"
              + (f" --backup-dir {shlex.quote(h['backup_dir'])}" if h.get("backup_dir") else "")
              for h in others]
    return lines


class SplitSandbox(Sandbox):
    topology = "split"

    def summary(self, state: dict) -> dict:
        hosts = state.get("hosts", {})
        return {
            "dir": str(self.dir),
            "topology": "split",
            "app_server": state.get("app_server"),
            "hosts": {n: {k: h.get(k) for k in ("name", "address", "roles", "root", "ssh", "apache", "backup_dir")}
                      for n, h in hosts.items()},
            "postgres": {k: state["postgres"][k] for k in ("address", "port", "data")} if "postgres" in state
            else None,
            "nfs": state.get("nfs"),
            "releases_dir": state.get("releases_dir"),
            "sites": state.get("sites", []),
            "commands": registration_commands(hosts) if hosts and all("ssh" in h for h in hosts.values()) else [],
        }

    label = "split sandbox"

    def _new_state(self) -> dict:
        return {"dir": str(self.dir), "topology": "split", "pids": {}, "started": time.time(), "sites": [],
                "hosts": {}}

    def _point_at_this(self) -> None:
        # `sec sandbox status/down` without --dir keep naming the sandbox brought up first.
        pointer = sec_home() / POINTER
        if not pointer.exists():
            pointer.write_text(f'{{"dir": "{self.dir}"}}\n')

    def _up(self, state: dict, events: int, media_files: int, version: str,
            site_list: list[tuple[str, str]], releases_dir: Path, say) -> None:
        say("building the release series")
        build_series(releases_dir)
        state["releases_dir"] = str(releases_dir)
        for name, address, roles in HOSTS:
            root = self.dir / "hosts" / name / "root"
            root.mkdir(parents=True, exist_ok=True)
            state["hosts"][name] = {"name": name, "address": address, "roles": roles, "root": str(root)}
            if "backup" in roles:  # the NAS stand-in: the copies of every backup go there
                (root / "srv" / "sec-backups").mkdir(parents=True, exist_ok=True)
                state["hosts"][name]["backup_dir"] = str(root / "srv" / "sec-backups")
        db_address = state["hosts"]["db1"]["address"]

        say(f"starting PostgreSQL on db1 ({db_address})")
        state["postgres"] = postgres.setup(self.dir / "hosts/db1/pg", address=db_address)
        self._write_state(state)
        state["pids"]["postgres"] = postgres.start(state["postgres"])
        self._write_state(state)

        web = [h for h in state["hosts"].values() if set(h["roles"]) & set(WEB_ROLES)]
        for host in web:
            sites_root = Path(host["root"]) / "var" / "rails"
            sites_root.mkdir(parents=True, exist_ok=True)
            host["apache"] = apache.setup(Path(host["root"]) / "etc/apache2", sites_root, address=host["address"])
        nfs = self.dir / "nfs"
        state["nfs"] = str(nfs)
        for index, (site_name, role) in enumerate(site_list):
            spec: SiteSpec = new_spec(site_name, role)
            say(f"creating {site_name} ({role}, {version}, {events} events) on {', '.join(h['name'] for h in web)}")
            postgres.create_site_database(state["postgres"], spec.db_name, spec.db_user, spec.db_password)
            media = nfs / spec.reverse_name
            media.mkdir(parents=True)
            heads: dict[str, dict] = {}
            for position, host in enumerate(web):
                site_dir = Path(host["root"]) / "var/rails" / spec.reverse_name
                site_dir.mkdir(parents=True)
                # The NFS stand-in: the same media folder behind every web head's <site_dir>/media.
                os.symlink(media, site_dir / "media")
                seed = (media_files if index == 0 else media_files // 2) if position == 0 else 0
                create_site_dir(site_dir, spec, version, releases_dir, state["postgres"]["port"], media_files,
                                media_seed_count=seed, db_host=db_address)
                app_port = free_port()
                api_only = "app" not in host["roles"]
                apache.add_site(Path(host["apache"]["server_root"]), site_name, spec.reverse_name, app_port,
                                host["apache"]["port"], address=host["address"], api_only=api_only)
                heads[host["name"]] = {"site_dir": str(site_dir), "app_port": app_port,
                                       "url": f"http://{host['address']}:{host['apache']['port']}/"}
            migrate_and_seed(state["postgres"], spec, version, events)
            first = heads[web[0]["name"]]
            state["sites"].append({**spec.public(Path(first["site_dir"])), "url": first["url"],
                                   "host_header": site_name, "version": version, "media": str(media),
                                   "heads": heads})
            self._write_state(state)

        say("starting the site applications, Apache and sshd on every web head")
        for host in web:
            for site in state["sites"]:
                head = site["heads"][host["name"]]
                log = Path(head["site_dir"]) / "shared/log/app.log"
                pid = start_daemon([sys.executable, "-m", "sec_wrapper.sandbox.site_app", "--site-dir",
                                    head["site_dir"], "--name", site["name"], "--port", str(head["app_port"]),
                                    "--address", host["address"]], log, env=_app_env())
                state["pids"][f"app:{host['name']}:{site['name']}"] = pid
                self._write_state(state)
                wait_for_port(head["app_port"], pid=pid, log=log, address=host["address"])
            state["pids"][f"apache:{host['name']}"] = apache.start(host["apache"])
            self._write_state(state)
        for name, host in state["hosts"].items():
            if "apache" in host:
                apache_config = Path(host["apache"]["config"])
            else:
                # A host without Apache: discovery there must not wander off to another Apache running on
                # this machine (a real DB server has none), so it is pinned to an empty configuration.
                apache_config = Path(host["root"]) / "etc/apache2/apache2.conf"
                apache_config.parent.mkdir(parents=True, exist_ok=True)
                apache_config.write_text(f"# {name} runs no web server\n")
            folder = self.dir / "hosts" / name / "ssh"
            host["ssh"] = ssh.setup(folder, apache_config, address=host["address"])
            state["pids"][f"sshd:{name}"] = ssh.start(folder, host["ssh"])
            self._write_state(state)
        app1 = state["hosts"]["app1"]
        state["app_server"] = {"address": app1["address"], "port": app1["ssh"]["port"],
                               "user": app1["ssh"]["user"], "key": app1["ssh"]["key"],
                               "known_hosts": app1["ssh"]["known_hosts"]}
        self._write_state(state)

    def stop_host_sshd(self, host: str) -> int:
        """Stops one host's sshd (a test's way to take a web head off the network); returns its pid."""
        from sec_wrapper.sandbox.processes import stop

        state = self.state()
        pid = state["pids"][f"sshd:{host}"]
        # Frozen first, the listener forks no session between the sweep of its sessions and its own end (a
        # session forked then would outlive it, reparented, and keep Ansible's connection to the host alive).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        stop(pid, signal.SIGKILL)
        return pid

    def start_host_sshd(self, host: str) -> int:
        state = self.state()
        info = state["hosts"][host]["ssh"]
        pid = ssh.start(self.dir / "hosts" / host / "ssh", info)
        state["pids"][f"sshd:{host}"] = pid
        self._write_state(state)
        return pid
