"""Runs discovery on a cluster's App servers (playbooks/discover.yml) and folds what it found into the
cluster: the one path `sec cluster create` and `sec cluster connect` share."""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import cluster_from_discovery, describe_skipped

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.runner import OperationResult, run_operation

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def run_discovery(operation: str, cluster_name: str, inventory: dict[str, Any], apache_config: str | None,
                  arguments: dict[str, Any], apache_env: dict[str, str] | None = None,
                  apache_defines: list[str] | None = None) -> tuple[OperationResult, dict[str, dict]]:
    """Runs discover.yml; returns the operation and site_facts' result per App server."""
    extravars: dict[str, Any] = {"apache_config": apache_config} if apache_config else {}
    if apache_env:
        extravars["apache_env"] = dict(apache_env)
    if apache_defines:
        extravars["apache_defines"] = list(apache_defines)
    result = run_operation(operation, "discover.yml", inventory, extravars, cluster=cluster_name, site=None,
                           arguments=arguments)
    if not result.ok:
        raise SecError(f"{result.message or 'discovery failed'} (operation {result.id})")
    facts = result.task_results("fpt.sec.site_facts")
    return result, facts


def skipped_sites(facts: dict[str, dict]) -> list[dict]:
    """Every site-shaped vhost discovery did not take as a site, with its App server and reason."""
    return [{**entry, "app_server": host} for host, res in sorted(facts.items())
            for entry in res.get("skipped_sites", [])]


def print_skipped(skipped: list[dict]) -> None:
    """What an administrator reads to see why a site they expected is not there."""
    if not skipped:
        return
    print(f"\nnot taken as sites ({len(skipped)}):")
    for entry in skipped:
        print(f"  {entry['app_server']}: {describe_skipped(entry)}")


def parse_apache_env(pairs: list[str] | None) -> dict[str, str]:
    """``["SITES=/srv/x", ...]`` (``--apache-env``) -> {"SITES": "/srv/x"}; a bad item is a one-line error."""
    env: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not _NAME_RE.match(name):
            raise SecError(f"--apache-env takes NAME=VALUE with NAME a variable name, not {pair!r}")
        env[name] = value
    return env


def check_defines(names: list[str] | None) -> list[str]:
    for name in names or []:
        if not _NAME_RE.match(name):
            raise SecError(f"--apache-define takes a -D name (letters, digits, _), not {name!r}")
    return list(names or [])


def require_sites(facts: dict[str, dict], where: str) -> None:
    found = [s for res in facts.values() for s in res.get("sites", [])]
    if not found:
        configs = ", ".join(a.get("config", "?") for res in facts.values() for a in res.get("apache", [])) or "none"
        reasons = "".join(f"; {e['app_server']}: {describe_skipped(e)}" for e in skipped_sites(facts))
        raise SecError(f"no Flow Production Tracking site found on {where} (Apache config read: {configs}); "
                       f"a site is a vhost whose DocumentRoot is <site_dir>/current/public{reasons}")


def refreshed(cluster: store.Cluster, facts: dict[str, dict]) -> tuple[store.Cluster, list[str]]:
    """The cluster with its sites replaced by what discovery found now. Hosts the user added or edited
    stay as they are; a site keeps the role the user gave it. Returns the cluster and what changed."""
    def server(h: store.Host) -> dict:
        return {"name": h.name, "address": h.address, "port": h.port, "user": h.user, "key": h.key}

    api_servers = [server(h) for h in cluster.hosts_with_role("api") if "app" not in h.roles]
    found = cluster_from_discovery([server(h) for h in cluster.hosts_with_role("app")], facts, api_servers)
    # A DB server the user registered under a name of its own is the one database.yml names by address.
    by_address = {h.address: h.name for h in cluster.hosts}
    for data in found["hosts"]:
        known = by_address.get(data["address"])
        if known and known != data["name"]:
            for site in found["sites"]:
                if site.get("db_host") == data["name"]:
                    site["db_host"] = known
            data["name"] = known
    old_sites = {s.reverse_name: s for s in cluster.sites}
    notes: list[str] = []
    sites = []
    for data in found["sites"]:
        site = store.Site.from_dict(data)
        previous = old_sites.pop(site.reverse_name, None)
        if previous is None:
            notes.append(f"new site {site.name}")
        else:
            site.role = previous.role
            if previous.version != site.version:
                notes.append(f"{site.name}: version {previous.version} -> {site.version}")
        sites.append(site)
    notes += [f"site {s.name} is no longer in the Apache configuration" for s in old_sites.values()]
    hosts = {h.name: h for h in cluster.hosts}
    for data in found["hosts"]:
        if data["name"] not in hosts:
            hosts[data["name"]] = store.Host.from_dict(data)
            notes.append(f"new host {data['name']} (roles {','.join(data['roles'])})")
            continue
        known = hosts[data["name"]]
        if "db" in data["roles"] and "db" not in known.roles:
            known.roles.append("db")
        if known.python is None and data.get("python"):
            known.python = data["python"]
    cluster.sites = sites
    cluster.hosts = sorted(hosts.values(), key=lambda h: h.name)
    return cluster, notes
