"""`sec host add` checks a host over SSH before it joins a cluster: it answers, the sites it should carry
are there (same site, same database as discovered on the App server), and its roles make sense."""

from __future__ import annotations

import os

from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import host_site_info

from sec_wrapper import store
from sec_wrapper.cluster_discovery import run_discovery
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import single_host_inventory

WEB_ROLES = ("app", "api")


def _database_differs(site: store.Site, found: dict) -> str | None:
    """Why the database a web head's database.yml names is not the site's, or None."""
    known, there = site.database, found.get("database") or {}
    if known is None:
        return None
    for field in ("name", "port"):
        if str(there.get(field) or "") != str(getattr(known, field) or ""):
            return f"database {field} {there.get(field)!r} there, {getattr(known, field)!r} on the App server"
    return None


def matching_sites(cluster: store.Cluster, host_name: str, found: list[dict]) -> dict[str, dict]:
    """{reverse name: this host's own view} for the cluster's sites found on the host; refuses a host that
    carries none of them, or a site whose dir or database differs from the one the App server serves."""
    known = {s.reverse_name: s for s in cluster.sites}
    carried = {f["reverse_name"]: f for f in found if f.get("reverse_name") in known}
    if not carried:
        seen = ", ".join(sorted(f.get("name", "?") for f in found)) or "no site at all"
        raise SecError(f"host {host_name} does not carry any site of cluster {cluster.name} "
                       f"({', '.join(s.name for s in cluster.sites)}); its Apache serves {seen}: "
                       "give the address of a web head of this cluster, or a role without app/api")
    for reverse, there in carried.items():
        site = known[reverse]
        if os.path.basename(there["site_dir"].rstrip("/")) != os.path.basename(site.site_dir.rstrip("/")):
            raise SecError(f"host {host_name} serves {site.name} from {there['site_dir']}, which is not the "
                           f"site dir discovered on the App server ({site.site_dir}): fix the vhost there first")
        differs = _database_differs(site, there)
        if differs:
            raise SecError(f"host {host_name} serves {site.name} against another database ({differs}): "
                           "fix database.yml there first")
    return {reverse: host_site_info(there) for reverse, there in carried.items()}


def check_db_role(cluster: store.Cluster, host_name: str, address: str) -> list[str]:
    """The sites whose database lives at `address`; refuses a DB server no site uses."""
    served = [s.name for s in cluster.sites if s.database and s.database.host == address]
    if not served:
        where = sorted({s.database.host for s in cluster.sites if s.database}) or ["nowhere known"]
        raise SecError(f"host {host_name} ({address}) is no site's DB server: the sites' database.yml name "
                       f"{', '.join(where)}; give that address, or drop the db role")
    return served


def check_new_host(cluster: store.Cluster, host: store.Host,
                   key_file: str | None) -> tuple[dict[str, dict], dict | None]:
    """Runs the checks over SSH (recorded as a `host add` operation); returns the sites the host carries
    as a web head, with its own view of each, and for a backup host its folder's check (free space)."""
    if "db" in host.roles:
        check_db_role(cluster, host.name, host.address)
    web = tuple(r for r in host.roles if r in WEB_ROLES)
    inventory = single_host_inventory(host.address, host.port, host.user, key_file, name=host.name,
                                      roles=tuple(host.roles), backup_dir=host.backup_dir)
    try:
        result, facts = run_discovery("host add", cluster.name, inventory, cluster.settings.get("apache_config"),
                                      {"cluster": cluster.name, "host": host.name, "address": host.address,
                                       "port": host.port, "roles": host.roles, "backup_dir": host.backup_dir})
    except SecError as exc:
        raise SecError(f"host {host.name} ({host.address}:{host.port}) was not added: {exc}") from exc
    backup_room = result.task_results("fpt.sec.room").get(host.name) if host.backup_dir else None
    if not web:
        return {}, backup_room
    return matching_sites(cluster, host.name, facts.get(host.name, {}).get("sites", [])), backup_room
