"""The ansible inventory (YAML-inventory shape, as a dict) for a cluster, or for one host not yet in one.

Groups: app_servers, api_servers, db_servers (by host role), production and staging (the hosts serving
sites of that role), and one group per site, named by its reverse name, holding its App and API servers.
Each host carries `sec_sites`: {reverse_name: site} for the sites it serves.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from sec_wrapper import store
from sec_wrapper.paths import sec_home

ROLE_GROUPS = {"app": "app_servers", "api": "api_servers", "db": "db_servers"}


def known_hosts_file(cluster: store.Cluster | None = None) -> Path:
    """The cluster's `ssh_known_hosts` setting, else the data folder's known_hosts."""
    custom = cluster.settings.get("ssh_known_hosts") if cluster else None
    return Path(custom).expanduser() if custom else sec_home() / "known_hosts"


def ssh_common_args(known_hosts: Path) -> str:
    # accept-new: first contact records the key, a changed key later is refused (never silently trusted).
    return (f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))} "
            "-o StrictHostKeyChecking=accept-new")


def host_vars(host: store.Host) -> dict[str, Any]:
    hv: dict[str, Any] = {"ansible_host": host.address, "ansible_port": host.port, "ansible_user": host.user}
    if host.key:
        hv["ansible_ssh_private_key_file"] = str(store.key_path(host.key))
    return hv


def cluster_inventory(cluster: store.Cluster) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    for h in cluster.hosts:
        hosts[h.name] = {**host_vars(h), "sec_roles": list(h.roles), "sec_sites": {}}
    groups: dict[str, set[str]] = {g: set() for g in (*ROLE_GROUPS.values(), *store.SITE_ROLES)}
    for h in cluster.hosts:
        for role in h.roles:
            if role in ROLE_GROUPS:
                groups[ROLE_GROUPS[role]].add(h.name)
    for site in cluster.sites:
        serving = [n for n in (*site.app_hosts, *site.api_hosts) if n in hosts]
        groups.setdefault(site.reverse_name, set()).update(serving)
        groups.setdefault(site.role, set()).update(serving)
        for name in serving:
            hosts[name]["sec_sites"][site.reverse_name] = site.to_dict()
    return {
        "all": {
            "vars": {"ansible_ssh_common_args": ssh_common_args(known_hosts_file(cluster)),
                     "sec_cluster": cluster.name},
            "hosts": hosts,
            "children": {g: {"hosts": {n: {} for n in sorted(members)}} for g, members in sorted(groups.items())},
        }
    }


def single_host_inventory(address: str, port: int = 22, user: str = "root", key_file: str | Path | None = None,
                          name: str = "candidate", roles: tuple[str, ...] = ("app",)) -> dict[str, Any]:
    """A one-host inventory for a host not yet in any cluster (`sec cluster create` probes it).

    `key_file` is used where it is (after the same mode check as an import): the key is copied into keys/
    only once the cluster file is written.
    """
    hv: dict[str, Any] = {"ansible_host": address, "ansible_port": port, "ansible_user": user}
    if key_file:
        hv["ansible_ssh_private_key_file"] = str(store.check_key_file(key_file))
    children = {ROLE_GROUPS[r]: {"hosts": {name: {}}} for r in roles if r in ROLE_GROUPS}
    return {
        "all": {
            "vars": {"ansible_ssh_common_args": ssh_common_args(known_hosts_file())},
            "hosts": {name: hv},
            "children": children,
        }
    }


def endpoints(inventory: dict[str, Any]) -> dict[str, str]:
    """{host: "address:port"}, to name a host the way the user typed it in error messages."""
    hosts = inventory.get("all", {}).get("hosts", {})
    return {n: f"{v.get('ansible_host', n)}:{v.get('ansible_port', 22)}" for n, v in hosts.items()}
