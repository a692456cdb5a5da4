"""Clusters and hosts: create and connect (discovery over SSH, recorded operations), and the cluster file's
own changes (host add/edit/remove, cluster remove), which run nothing on the hosts but the host check."""

from __future__ import annotations

from typing import Any

from sec_wrapper import store
from sec_wrapper.cluster_discovery import check_defines, parse_apache_env, refreshed, require_sites, skipped_sites
from sec_wrapper.errors import SecError
from sec_wrapper.host_checks import check_new_host
from sec_wrapper.inventory import cluster_inventory, single_host_inventory
from sec_wrapper.operations.spec import OperationRequest, OperationSpec, Option, Prepared
from sec_wrapper.runner import OperationResult

APACHE_OPTIONS = (
    Option("apache_config", metavar="PATH", help="Apache's main config file, to skip the search"),
    Option("apache_env", kind="list", metavar="NAME=VALUE",
           help="a ${NAME} of the Apache config that discovery cannot read from the App server (repeatable; kept "
                "with the cluster)"),
    Option("apache_define", kind="list", metavar="NAME",
           help="a -D name Apache is started with that discovery cannot read (repeatable)"),
)
NAME = Option("name", positional=True, required=True)


def _discovery_vars(options: dict[str, Any], apache_env: dict[str, str], defines: list[str]) -> dict[str, Any]:
    extravars: dict[str, Any] = {"apache_config": options["apache_config"]} if options["apache_config"] else {}
    if apache_env:
        extravars["apache_env"] = dict(apache_env)
    if defines:
        extravars["apache_defines"] = list(defines)
    return extravars


# -- cluster create -------------------------------------------------------------------------------------------
def _prepare_create(request: OperationRequest) -> Prepared:
    options = CLUSTER_CREATE.typed(request.options)
    name = store.ensure_new_cluster_name(options["name"])
    store.check_connection(options["app_server"], options["user"], options["port"])
    host_name = store.validate_name(options["host_name"] or options["app_server"], "host")
    apache_env, defines = parse_apache_env(options["apache_env"]), check_defines(options["apache_define"])
    inventory = single_host_inventory(options["app_server"], options["port"], options["user"], options["key"],
                                      name=host_name)
    return Prepared(spec=CLUSTER_CREATE, options=options, playbook="discover.yml", inventory=inventory,
                    extravars=_discovery_vars(options, apache_env, defines),
                    arguments={k: options[k] for k in ("app_server", "port", "user", "key")}, cluster=name,
                    site=None, subject=f"cluster create {name}",
                    context={"host_name": host_name, "apache_env": apache_env, "apache_defines": defines})


def _summarize_create(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    options, context = prepared.options, prepared.context
    facts = result.task_results("fpt.sec.site_facts")
    require_sites(facts, f"{options['app_server']}:{options['port']}")
    # The cluster file and the key copy are written only now that discovery succeeded.
    name = store.ensure_new_cluster_name(options["name"])
    key = store.import_key(options["key"], name, context["host_name"]) if options["key"] else None
    app = store.Host(name=context["host_name"], address=options["app_server"], port=options["port"],
                     user=options["user"], key=key, roles=["app"])
    cluster, _ = refreshed(store.Cluster(name=name, hosts=[app]), facts)
    if options["apache_config"]:
        cluster.settings["apache_config"] = options["apache_config"]
    if context["apache_env"]:
        cluster.settings["apache_env"] = context["apache_env"]
    if context["apache_defines"]:
        cluster.settings["apache_defines"] = context["apache_defines"]
    try:
        store.save_cluster(cluster, new=True)
    except BaseException:
        if key:
            store.remove_cluster_keys(name)
        raise
    return {**cluster.to_dict(), "skipped_sites": skipped_sites(facts), "operation": result.id}


CLUSTER_CREATE = OperationSpec(
    "cluster create", "discover a cluster from its App server over SSH",
    (NAME, Option("app_server", required=True, metavar="HOST", help="address of the main App server"),
     Option("port", kind="int", default=22, minimum=1), Option("user", default="root"),
     Option("key", metavar="PATH", help="SSH private key (copied into the keys folder)"),
     *APACHE_OPTIONS,
     Option("host_name", metavar="NAME",
            help="the App server's name in the cluster (default: its address), e.g. app1")),
    _prepare_create, _summarize_create, site_scoped=False)


# -- cluster connect -------------------------------------------------------------------------------------------
def _prepare_connect(request: OperationRequest) -> Prepared:
    options = CLUSTER_CONNECT.typed(request.options)
    cluster = store.load_cluster(options["name"])
    if not cluster.hosts_with_role("app"):
        raise SecError(f"cluster {cluster.name} has no App server: sec host add {cluster.name} NAME --roles app ...")
    options["apache_config"] = options["apache_config"] or cluster.settings.get("apache_config")
    apache_env = parse_apache_env(options["apache_env"]) or cluster.settings.get("apache_env") or {}
    defines = check_defines(options["apache_define"]) or cluster.settings.get("apache_defines") or []
    return Prepared(spec=CLUSTER_CONNECT, options=options, playbook="discover.yml",
                    inventory=cluster_inventory(cluster), extravars=_discovery_vars(options, apache_env, defines),
                    arguments={"cluster": cluster.name}, cluster=cluster.name, site=None,
                    subject=f"cluster connect {cluster.name}")


def _summarize_connect(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    facts = result.task_results("fpt.sec.site_facts")
    require_sites(facts, f"cluster {prepared.cluster}")
    # Read again: the cluster file may have changed while discovery ran (a host edited meanwhile).
    cluster, notes = refreshed(store.load_cluster(prepared.cluster or ""), facts)
    store.save_cluster(cluster)
    return {"cluster": cluster.to_dict(), "changes": notes, "operation": result.id,
            "skipped_sites": skipped_sites(facts)}


CLUSTER_CONNECT = OperationSpec(
    "cluster connect", "re-check every host and refresh the sites", (NAME, *APACHE_OPTIONS),
    _prepare_connect, _summarize_connect, site_scoped=False)


# -- the cluster file's own changes ------------------------------------------------------------------------------
def remove_cluster(name: str) -> None:
    store.remove_cluster(name)


def _refuse_if_serving(cluster: store.Cluster, name: str, what: str) -> None:
    users = [s.name for s in cluster.sites if name in s.app_hosts or s.db_host == name]
    if users:
        raise SecError(f"cannot {what} {name}: sites {', '.join(users)} depend on it (add --force to do it anyway)"
                       if what == "remove" else f"cannot {what}: sites {', '.join(users)} run on {name}")


def check_roles(roles: list[str] | str | None) -> list[str]:
    """A host's roles in the store's order, from a list or "app,api"; refused when empty or unknown."""
    given = roles.split(",") if isinstance(roles, str) else list(roles or [])
    wanted = {str(r).strip() for r in given if str(r).strip()}
    if not wanted or wanted - set(store.ROLES):
        raise SecError(f"roles are a comma-separated subset of {','.join(store.ROLES)}")
    return [r for r in store.ROLES if r in wanted]


def check_backup_dir(roles: list[str], backup_dir: str | None) -> str | None:
    """A backup host needs an absolute folder for the copies; other roles take none."""
    if "backup" in roles:
        if not backup_dir or not str(backup_dir).startswith("/") or "\n" in str(backup_dir):
            raise SecError("a backup host needs --backup-dir, the absolute path of the folder its copies go to "
                           "(for example /srv/sec-backups)")
        return str(backup_dir).rstrip("/") or "/"
    if backup_dir:
        raise SecError("--backup-dir is for a host with the backup role: add backup to --roles")
    return None


def add_host(cluster_name: str, name: str, address: str, roles: list[str], port: int | None = None,
             user: str | None = None, key: str | None = None, python: str | None = None,
             check: bool = True, backup_dir: str | None = None) -> dict[str, Any]:
    """Adds a host, checked over SSH unless `check` is false; returns it and the sites it carries."""
    cluster = store.load_cluster(cluster_name)
    store.validate_name(name, "host")
    if not address:
        raise SecError("give the host's address")
    store.check_connection(address, user, port)
    if any(h.name == name for h in cluster.hosts):
        raise SecError(f"cluster {cluster.name} already has a host {name}: use `sec host edit`")
    host = store.Host(name=name, address=address, port=port or 22, user=user or "root", roles=check_roles(roles),
                      python=python)
    host.backup_dir = check_backup_dir(host.roles, backup_dir)
    # Discovery names a remote DB server by the address database.yml gives; adding it by name adopts it.
    placeholder = next((h for h in cluster.hosts if h.name == h.address == address and h.roles == ["db"]), None)
    taken = next((h for h in cluster.hosts if (h.address, h.port) == (host.address, host.port)), None)
    if taken and taken is not placeholder:
        raise SecError(f"host {taken.name} of {cluster.name} already is {host.address}:{host.port}: "
                       f"use `sec host edit {cluster.name} {taken.name}`")
    carried, backup_room = check_new_host(cluster, host, key) if check else ({}, None)
    host.key = store.import_key(key, cluster.name, name) if key else None
    if placeholder:
        host.roles = [r for r in store.ROLES if r in {*host.roles, *placeholder.roles}]
        cluster.hosts = [h for h in cluster.hosts if h is not placeholder]
    cluster.hosts.append(host)
    for site in cluster.sites:
        if placeholder and site.db_host == placeholder.name:
            site.db_host = host.name
        if site.reverse_name in carried:
            site.extra.setdefault("on_hosts", {})[host.name] = carried[site.reverse_name]
            if "app" in host.roles and host.name not in site.app_hosts:
                site.app_hosts = [*site.app_hosts, host.name]
    store.save_cluster(cluster)
    return {"cluster": cluster.name, **host.__dict__, "checked": check, "backup_room": backup_room,
            "serves": [s.name for s in cluster.sites if s.reverse_name in carried]}


def edit_host(cluster_name: str, name: str, changes: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """Changes a host's address, port, user, roles or python (those given and not None), and its key."""
    cluster = store.load_cluster(cluster_name)
    host = cluster.host(name)
    store.check_connection(changes.get("address"), changes.get("user"), changes.get("port"))
    if changes.get("roles") is not None:
        changes = {**changes, "roles": check_roles(changes["roles"])}
        if "app" in host.roles and "app" not in changes["roles"]:
            _refuse_if_serving(cluster, host.name, "drop its app role")
    roles = changes.get("roles") or host.roles
    if changes.get("backup_dir") is not None or ("backup" in roles) != ("backup" in host.roles):
        changes = {**changes, "backup_dir": check_backup_dir(roles, changes.get("backup_dir") or host.backup_dir)}
    for field in ("address", "port", "user", "roles", "python", "backup_dir"):
        if changes.get(field) is not None:
            setattr(host, field, int(changes[field]) if field == "port" else changes[field])
    if key:
        host.key = store.import_key(key, cluster.name, host.name)
    store.save_cluster(cluster)
    return {"cluster": cluster.name, **host.__dict__}


def remove_host(cluster_name: str, name: str, force: bool = False) -> None:
    cluster = store.load_cluster(cluster_name)
    host = cluster.host(name)
    if not force:
        _refuse_if_serving(cluster, host.name, "remove")
    cluster.hosts = [h for h in cluster.hosts if h.name != host.name]
    for site in cluster.sites:
        site.app_hosts = [h for h in site.app_hosts if h != host.name]
    store.save_cluster(cluster)
