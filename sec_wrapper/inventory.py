"""The ansible inventory (YAML-inventory shape, as a dict) for a stored cluster, or for one new host.

The shape itself (groups app_servers/api_servers/db_servers, production/staging, one group per site by
reverse name, `sec_sites` on each App/API server) is the collection's `cluster_inventory`, the same code the
`fpt.sec.apache_sites` plugin uses; this module only feeds it what the data folder holds: key paths made
absolute after their mode check, and which known_hosts file ssh should use.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import (
    ROLE_GROUPS,
    as_yaml_inventory,
    host_connection_vars,
    inventory_from_cluster,
)

from sec_wrapper import store
from sec_wrapper.paths import sec_home

# accept-new: first contact records the host key, a changed key later is refused (never silently trusted).
HOST_KEY_CHECKING = "accept-new"
# A probe must log in with the key it was given, not ride on an ssh master that an earlier connection to
# the same user@host:port opened with another key (ansible's ControlPersist keeps them for 60s).
NO_SHARED_MASTER = "-C -o ControlMaster=no -o ControlPath=none"


def known_hosts_file(cluster: store.Cluster | None = None) -> Path:
    """The cluster's `ssh_known_hosts` setting, else the data folder's known_hosts."""
    custom = cluster.settings.get("ssh_known_hosts") if cluster else None
    return Path(custom).expanduser() if custom else sec_home() / "known_hosts"


def _quoted(path: Path) -> str:
    return shlex.quote(str(path))  # ansible splits ssh args like a shell


def cluster_inventory(cluster: store.Cluster) -> dict[str, Any]:
    data = cluster.to_dict()
    for host in data["hosts"]:
        if host.get("key"):
            host["key"] = str(store.key_path(host["key"]))
    inventory = as_yaml_inventory(inventory_from_cluster(data, _quoted(known_hosts_file(cluster)),
                                                         HOST_KEY_CHECKING))
    inventory["all"]["vars"] = {"sec_cluster": cluster.name}
    return inventory


def single_host_inventory(address: str, port: int = 22, user: str = "root", key_file: str | Path | None = None,
                          name: str = "candidate", roles: tuple[str, ...] = ("app",),
                          backup_dir: str | None = None) -> dict[str, Any]:
    """A one-host inventory for a host not yet in any cluster (`sec cluster create` probes it).

    `key_file` is used where it is (after the same mode check as an import): the key is copied into keys/
    only once the cluster file is written.
    """
    host = {"name": name, "address": address, "port": port, "user": user,
            "key": str(store.check_key_file(key_file)) if key_file else None, "roles": list(roles)}
    hostvars = host_connection_vars(host, _quoted(known_hosts_file()), HOST_KEY_CHECKING)
    hostvars["ansible_ssh_args"] = NO_SHARED_MASTER
    if backup_dir:
        hostvars["sec_backup_dir"] = backup_dir
    shaped = {"hosts": {name: hostvars}, "groups": {ROLE_GROUPS[r]: [name] for r in roles if r in ROLE_GROUPS}}
    return as_yaml_inventory(shaped)


def endpoints(inventory: dict[str, Any]) -> dict[str, str]:
    """{host: "address:port"}, to name a host the way the user typed it in error messages."""
    hosts = inventory.get("all", {}).get("hosts", {})
    return {n: f"{v.get('ansible_host', n)}:{v.get('ansible_port', 22)}" for n, v in hosts.items()}
