"""The cluster model and its inventory shape, in one place for the inventory plugin and the sec CLI.

A cluster is hosts (address, SSH settings, roles app/api/db) and sites (what discovery found, plus the
App servers that serve each). The inventory made from it has groups app_servers, api_servers, db_servers,
production, staging, one group per site (its reverse name), and on each App/API server the host var
`sec_sites`: the sites it serves, keyed by reverse name.
"""

from __future__ import annotations

from typing import Any

LOOPBACK = {"127.0.0.1", "localhost", "::1", "", None}
ROLES = ("app", "api", "db", "backup")
ROLE_GROUPS = {"app": "app_servers", "api": "api_servers", "db": "db_servers", "backup": "backup_servers"}
# Modules need only the standard library: prefer the distribution's Python over whatever a login shell
# puts first on PATH (a user's pyenv shims, say), which may not run non-interactively.
PYTHON_FALLBACK = ["/usr/bin/python3", "/usr/libexec/platform-python", "python3"]
SITE_KEYS = ("name", "aliases", "reverse_name", "site_dir", "role", "version", "state", "database", "media_dir",
             "backup_dir", "health_url", "ports", "ssl")
# What may differ from one web head to the next: where the site sits there and its own vhost. Kept per
# host in the site's `on_hosts` and laid over the site in that host's `sec_sites`.
HOST_SITE_KEYS = ("site_dir", "media_dir", "backup_dir", "health_url", "ports")


def host_site_info(found: dict) -> dict:
    """One web head's own view of a site, from what discovery found there."""
    return {k: found.get(k) for k in HOST_SITE_KEYS}


def site_for_host(site: dict, host: str) -> dict:
    """A site as one of its hosts sees it: the cluster's view with that host's own dirs and vhost."""
    merged = {k: v for k, v in site.items() if k not in ("app_hosts", "on_hosts")}
    merged.update({k: v for k, v in (site.get("on_hosts") or {}).get(host, {}).items() if v is not None})
    return merged


def cluster_from_discovery(app_servers: list[dict], discoveries: dict[str, dict],
                           api_servers: list[dict] | None = None, db_servers: list[dict] | None = None,
                           backup_servers: list[dict] | None = None) -> dict:
    """Builds hosts and sites from what discovery returned for each App server (and API server).

    app_servers, api_servers, db_servers, backup_servers: [{"name", "address", "port", "user", "key"[, "python"]
    [, "backup_dir"]}];
    discoveries: {host name: discover_sites(), plus "python", the interpreter that ran it}.
    A site's DB host on loopback is the App server itself (it gets the db role); a DB host listed in
    db_servers (matched by address) is that server, with its own SSH settings; another DB host becomes a
    host of its own with the App server's SSH user and key, which `sec host edit` can change.
    """
    hosts: dict[str, dict] = {}
    sites: dict[str, dict] = {}
    for server, role in [*((s, "app") for s in app_servers), *((s, "api") for s in api_servers or []),
                         *((s, "db") for s in db_servers or []), *((s, "backup") for s in backup_servers or [])]:
        host = hosts.setdefault(server["name"], {**server, "roles": []})
        if role not in host["roles"]:
            host["roles"].append(role)
        # The interpreter that ran discovery there: later runs need no interpreter discovery of their own.
        python = server.get("python") or discoveries.get(server["name"], {}).get("python")
        if python and not host.get("python"):
            host["python"] = python
    db_by_address = {s["address"]: s["name"] for s in db_servers or []}
    for server in app_servers:
        for found in discoveries.get(server["name"], {}).get("sites", []):
            site = sites.setdefault(found["reverse_name"], {k: found.get(k) for k in SITE_KEYS})
            site.setdefault("app_hosts", [])
            site.setdefault("on_hosts", {})[server["name"]] = host_site_info(found)
            site["app_hosts"] = sorted({*site.get("app_hosts", []), server["name"]})
            _note_broken(site, found, server["name"])
            db_host = (found.get("database") or {}).get("host")
            if db_host in LOOPBACK or db_host == server["address"]:
                db_name = server["name"]
            elif db_host in db_by_address:
                db_name = db_by_address[db_host]
            else:
                db_name = db_host
                hosts.setdefault(db_name, {"name": db_name, "address": db_host, "port": server.get("port"),
                                           "user": server.get("user"), "key": server.get("key"), "roles": []})
            if "db" not in hosts[db_name]["roles"]:
                hosts[db_name]["roles"].append("db")
            site["db_host"] = db_name
    # An API server serves the sites the App servers carry: only its own view of them is recorded.
    for server in api_servers or []:
        for found in discoveries.get(server["name"], {}).get("sites", []):
            if found["reverse_name"] in sites:
                sites[found["reverse_name"]]["on_hosts"][server["name"]] = host_site_info(found)
                _note_broken(sites[found["reverse_name"]], found, server["name"])
    for host in hosts.values():
        host["roles"] = [r for r in ROLES if r in host["roles"]]
    # Site-shaped vhosts that are not sites, per App server, with the reason: what an administrator reads
    # to see why a site they expected is missing.
    skipped = {server["name"]: list(discoveries.get(server["name"], {}).get("skipped_sites", []))
               for server in app_servers}
    return {"hosts": sorted(hosts.values(), key=lambda h: h["name"]),
            "sites": sorted(sites.values(), key=lambda s: s["name"]),
            "skipped_sites": {name: entries for name, entries in skipped.items() if entries}}


def _note_broken(site: dict, found: dict, host: str) -> None:
    """A site broken on any web head is broken (state ``broken: current -> ... is missing on app2``)."""
    if str(found.get("state") or "ok").startswith("broken") and " is missing on " not in str(site.get("state")):
        site["state"] = f"{found['state']} on {host}"
        site["version"] = None
    elif site.get("state") is None:
        site["state"] = "ok"


def describe_skipped(entry: dict) -> str:
    """One line for a skipped site-shaped vhost: ``name (file:line): reason``."""
    label = entry.get("name") or entry.get("site_dir") or "vhost"
    return f"{label} ({entry.get('file')}:{entry.get('line')}) not taken as a site: {entry.get('reason')}"


def host_connection_vars(host: dict, known_hosts_file: str | None = None,
                         host_key_checking: str = "accept-new") -> dict[str, Any]:
    hostvars: dict[str, Any] = {"ansible_host": host["address"],
                                "ansible_interpreter_python_fallback": list(PYTHON_FALLBACK)}
    if host.get("python"):
        hostvars["ansible_python_interpreter"] = host["python"]
    if host.get("port"):
        hostvars["ansible_port"] = int(host["port"])
    if host.get("user"):
        hostvars["ansible_user"] = host["user"]
    if host.get("key"):
        hostvars["ansible_ssh_private_key_file"] = host["key"]
    ssh_args = [f"-o StrictHostKeyChecking={host_key_checking}"]
    if known_hosts_file:
        ssh_args.append(f"-o UserKnownHostsFile={known_hosts_file}")
    hostvars["ansible_ssh_common_args"] = " ".join(ssh_args)
    return hostvars


def inventory_from_cluster(cluster: dict, known_hosts_file: str | None = None,
                           host_key_checking: str = "accept-new") -> dict:
    """{"hosts": {name: hostvars}, "groups": {group: [host names]}} for a cluster."""
    hosts: dict[str, dict] = {}
    groups: dict[str, list[str]] = {g: [] for g in (*ROLE_GROUPS.values(), "production", "staging")}
    for host in cluster.get("hosts", []):
        hosts[host["name"]] = {**host_connection_vars(host, known_hosts_file, host_key_checking),
                               "sec_roles": list(host["roles"]),
                               "sec_sites": {}}
        if "backup" in host["roles"] and host.get("backup_dir"):
            hosts[host["name"]]["sec_backup_dir"] = host["backup_dir"]
        for role in host["roles"]:
            groups[ROLE_GROUPS[role]].append(host["name"])
    api_hosts = [h["name"] for h in cluster.get("hosts", []) if "api" in h["roles"]]
    for site in cluster.get("sites", []):
        # API servers serve every site of the cluster; App servers the sites discovery found on them.
        # App servers first, then API servers: a play's run_once steps (the site lock) run on the first.
        app_hosts = sorted(site.get("app_hosts", []))
        serving = [*app_hosts, *[h for h in api_hosts if h not in app_hosts]]
        groups[site["reverse_name"]] = serving
        for name in serving:
            hosts[name]["sec_sites"][site["reverse_name"]] = site_for_host(site, name)
            role_group = groups.setdefault(site.get("role") or "production", [])
            if name not in role_group:
                role_group.append(name)
    site_groups = {s["reverse_name"] for s in cluster.get("sites", [])}
    return {"hosts": hosts, "groups": {g: list(members) if g in site_groups else sorted(set(members))
                                       for g, members in groups.items()}}


def as_yaml_inventory(inventory: dict) -> dict:
    """The same inventory in the YAML-inventory shape ansible-runner and ansible-playbook take."""
    children = {group: {"hosts": {name: None for name in members}}
                for group, members in inventory["groups"].items()}
    return {"all": {"hosts": inventory["hosts"], "children": children}}
