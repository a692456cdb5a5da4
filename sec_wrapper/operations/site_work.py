"""The operations on one site: how each is prepared (its checks, extra vars, recorded arguments) and what its
result document says (the CLI's --json, kept in the record whichever front end started it)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso

from sec_wrapper import store, upgrades
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import cluster_inventory, known_hosts_file
from sec_wrapper.operations.spec import ConfirmationNeeded, OperationRequest, OperationSpec, Option, Prepared
from sec_wrapper.paths import releases_dir
from sec_wrapper.runner import OperationResult
from sec_wrapper.site_pair import host_agent


def first_result(result: OperationResult, name: str) -> dict[str, Any]:
    """The result of module (or task) `name` on the first host that ran it (site-wide steps run once)."""
    return next(iter(result.task_results(name).values()), {})


def module_result(module: str, keys: tuple[str, ...] | None = None
                  ) -> Callable[[Prepared, OperationResult], dict[str, Any]]:
    """The result document of an operation that one module sums up: the operation's id, the site and that
    module's result (its `keys`, or all of it)."""
    def summarize(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
        answer = first_result(result, module)
        picked = answer if keys is None else {k: answer.get(k) for k in keys}
        return {"operation": result.id, "site": prepared.site, **picked}
    return summarize


def site_prepared(spec: OperationSpec, request: OperationRequest, options: dict[str, Any], playbook: str,
                  extravars: dict[str, Any], arguments: dict[str, Any] | None = None,
                  subject: str | None = None) -> Prepared:
    cluster, site = store.find_site(_site_query(spec, request), request.cluster)
    return Prepared(spec=spec, options=options, playbook=playbook, inventory=cluster_inventory(cluster),
                    extravars={"site": site.reverse_name, **extravars},
                    arguments={"site": site.name, **(extravars if arguments is None else arguments)},
                    cluster=cluster.name, site=site.name, subject=subject or f"{spec.name} on {site.name}",
                    context={"cluster": cluster, "site": site})


def _site_query(spec: OperationSpec, request: OperationRequest) -> str:
    if not request.site or not str(request.site).strip():
        raise SecError(f"{spec.name} needs a site: its name (prod.teststudio.com) or reverse name")
    return str(request.site)


def require_confirmed(request: OperationRequest, site: store.Site, what: str) -> None:
    """No prompt (AWX has no terminal): changing a production site's data needs a confirmation."""
    if site.role == "production" and not request.confirms(site.name):
        raise ConfirmationNeeded(f"{what} {site.name}, a production site", site.name)


SITE = Option("site", positional=True, required=True,
              help="name (prod.teststudio.com) or reverse name (com_teststudio_prod)")


# -- maintenance ---------------------------------------------------------------------------------------------
def _prepare_maintenance(request: OperationRequest) -> Prepared:
    options = MAINTENANCE.typed(request.options)
    extravars = {"state": options["state"], **({"message": options["message"]} if options["message"] else {})}
    prepared = site_prepared(MAINTENANCE, request, options, "maintenance.yml", extravars)
    if options["state"] == "on":
        require_confirmed(request, prepared.context["site"], "maintenance on takes down")
    return prepared


def upgrade_recovery(result: OperationResult) -> dict[str, Any] | None:
    """What leaving maintenance did about an upgrade killed in its window (maintenance.yml), or None."""
    found = first_result(result, "Look for an upgrade interrupted in its maintenance window")
    if not found.get("recovery_needed"):
        return None
    journal = found.get("journal") or {}
    return {"from": journal.get("from"), "to": journal.get("to"),
            # The rollback switches `current` back; an upgrade that had finished is only closed.
            "rolled_back": bool(first_result(result, "fpt.sec.release_activate")),
            "database_restored": bool(first_result(result, "fpt.sec.db_restore"))}


def _summarize_maintenance(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    return {"operation": result.id, "site": prepared.site, "state": prepared.options["state"],
            "upgrade_recovery": upgrade_recovery(result)}


MAINTENANCE = OperationSpec(
    "maintenance", "put a site in or out of maintenance (503 + page)",
    (SITE, Option("state", kind="choice", choices=("on", "off"), positional=True, required=True),
     Option("message", help="shown on the maintenance page")),
    _prepare_maintenance, _summarize_maintenance, confirm="production")


# -- backup, backups, restore ----------------------------------------------------------------------------------
def _prepare_backup(request: OperationRequest) -> Prepared:
    options = BACKUP.typed(request.options)
    extravars = {"keep": options["keep"], **({"label": options["label"]} if options["label"] else {}),
                 **({"keep_safety": options["keep_safety"]} if options["keep_safety"] is not None else {}),
                 **({"no_copy": True} if options["no_copy"] else {}),
                 **{k: options[k] for k in ("keep_copies", "keep_days") if options[k] is not None}}
    prepared = site_prepared(BACKUP, request, options, "backup.yml", extravars)
    cluster, site = prepared.context["cluster"], prepared.context["site"]
    if not options["no_copy"] and any("backup" in h.roles for h in cluster.hosts):
        prepared.environment = lambda: _app_server_agent(cluster, site)
    return prepared


def _app_server_agent(cluster: store.Cluster, site: store.Site) -> contextlib.AbstractContextManager[dict[str, Any]]:
    """The backup hosts pull the new backup from the App server over SSH with a forwarded private agent that
    holds only the App server's key, and trust only the host key the controller keeps for it."""
    app = cluster.host(site.app_hosts[0]) if site.app_hosts else next(h for h in cluster.hosts if "app" in h.roles)
    return _agent_for(cluster, app)


@contextmanager
def _agent_for(cluster: store.Cluster, host: store.Host) -> Iterator[dict[str, Any]]:
    """A private agent holding only `host`'s key, forwarded to the hosts that pull from it, and the
    controller's known_hosts file, from which the playbook gives them the only host key they trust."""
    with host_agent(host) as forwarding:
        yield {"forward_agent": forwarding, "known_hosts_file": str(known_hosts_file(cluster))}


def _summarize_backup(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    made = first_result(result, "fpt.sec.db_backup")
    copies = [{"host": host, "path": answer.get("copy_path"), "method": answer.get("method"),
               "removed": answer.get("removed") or []}
              for host, answer in sorted(result.task_results("fpt.sec.backup_copy").items())]
    return {"operation": result.id, "site": prepared.site,
            **{k: made.get(k) for k in ("path", "name", "dump_bytes", "duration", "verified", "removed")},
            "copies": copies}


BACKUP = OperationSpec(
    "backup", "back a site's database up into <site_dir>/db_backup",
    # Their range is checked with the playbook's own words (operation_inputs: "from 0 to 9999, 0 keeps all").
    (SITE, Option("keep", kind="int", default=5, help="newest ordinary backups to keep (default 5, 0 keeps all)"),
     Option("keep_safety", kind="int",
            help="newest safety backups (before-/pre- labels) to keep; the latest always stays (default 3, "
                 "0 keeps all)"),
     Option("label", help="a short tag in the backup's name, e.g. before-upgrade"),
     Option("no_copy", kind="bool", default=False, help="do not copy this backup to the backup hosts"),
     Option("keep_copies", kind="int", minimum=0,
            help="copies to keep on each backup host, newest first (default 0: all)"),
     Option("keep_days", kind="int", minimum=0, help="remove copies older than this on the backup hosts")),
    _prepare_backup, _summarize_backup)


def _prepare_backups(request: OperationRequest) -> Prepared:
    options = BACKUPS.typed(request.options)
    if options["pin"] and options["unpin"]:
        raise SecError("backups: give --pin or --unpin, not both")
    extravars: dict[str, Any] = {"check_files": options["check"]}
    for key in ("pin", "unpin"):
        if options[key]:
            extravars[key] = options[key]
    return site_prepared(BACKUPS, request, options, "backups.yml", extravars)


def replaced_rows(replaced: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The replaced databases kept as undo, as backup rows (kind `replaced`): `sec backups` and the console
    list them with the backups."""
    rows = []
    for entry in replaced or []:
        when = epoch_of_iso(entry.get("replaced_at") or "")
        rows.append({"name": entry["name"], "kind": "replaced", "state": "replaced", "size": entry.get("size_bytes"),
                     "started": entry.get("replaced_at"), "version": entry.get("release"),
                     "age_seconds": int(time.time() - when) if when else None,
                     "operation": entry.get("operation_id"), "backup": entry.get("backup"),
                     "by": entry.get("by")})
    return rows


def with_places(backups: list[dict[str, Any]], app_host: str, copies: dict[str, dict[str, Any]],
                backup_hosts: list[str] | None = None) -> list[dict[str, Any]]:
    """Each backup once, with every place it is: the App server and each backup host holding a copy, each
    with its own state and verified-at. A backup only a backup host still holds is listed too. A backup host
    that answered without a copy of a backup says `missing`; one that did not answer, `did not answer`."""
    rows = {row["name"]: {**row, "places": [{"host": app_host, "state": row.get("state"),
                                             "verified_at": row.get("verified_at"),
                                             "pinned": bool(row.get("pinned"))}]} for row in backups}
    # A host the listing could not reach has a result too (unreachable, no copies): it did not answer.
    copies = {host: answer for host, answer in copies.items() if "copies" in answer and not answer.get("unreachable")}
    for host in backup_hosts or []:
        for row in rows.values():
            held = any(c["name"] == row["name"] for c in (copies.get(host) or {}).get("copies") or [])
            if not held:
                row["places"].append({"host": host, "state": "missing" if host in copies else "did not answer",
                                      "verified_at": None})
    for host, answer in sorted(copies.items()):
        for copy in answer.get("copies") or []:
            place = {"host": host, "state": copy.get("state"), "verified_at": copy.get("verified_at"),
                     "pinned": copy.get("pinned", False)}
            row = rows.get(copy["name"])
            if row is None:
                started = epoch_of_iso(copy.get("started") or "")
                row = rows[copy["name"]] = {
                    "name": copy["name"], "kind": "copy", "version": copy.get("version"), "size": copy.get("size"),
                    "started": copy.get("started"), "state": "only on backup hosts", "places": [],
                    "age_seconds": int(time.time() - started) if started else None}
            row["places"].append(place)
    return sorted(rows.values(), key=lambda r: (str(r.get("started") or ""), r["name"]), reverse=True)


def _summarize_backups(prepared: Prepared, result: OperationResult) -> list[dict[str, Any]]:
    found = first_result(result, "fpt.sec.db_backup_info")
    app_host = next(iter(result.task_results("fpt.sec.db_backup_info")), "app server")
    backup_hosts = sorted(h.name for h in prepared.context["cluster"].hosts if "backup" in h.roles)
    return [*with_places(found.get("backups") or [], app_host, result.task_results("fpt.sec.backup_copy_info"),
                         backup_hosts),
            *replaced_rows(found.get("replaced"))]


BACKUPS = OperationSpec(
    "backups", "list a site's backups with size, age, version and state",
    (SITE, Option("check", kind="bool", default=False, help="re-read every file against its manifest"),
     Option("pin", metavar="NAME",
            help="pin this backup against retention, on the App server and every backup host holding a copy"),
     Option("unpin", metavar="NAME", help="let retention remove this backup again (every place)")),
    _prepare_backups, _summarize_backups)


def _prepare_restore(request: OperationRequest) -> Prepared:
    options = RESTORE.typed(request.options)
    if options["undo"] == bool(options["backup"]):
        raise SecError("restore: give the backup to restore, or --undo to put the replaced database back "
                       "(not both)")
    if options["keep_replaced"] < 0:
        raise SecError("restore: --keep-replaced takes 0 or more")
    extravars: dict[str, Any] = {"force": options["force"], "switch_release": options["switch_release"],
                                 "undo": options["undo"], "safety_backup": options["safety_backup"],
                                 "keep_replaced": options["keep_replaced"]}
    if options["backup"]:
        extravars["backup"] = options["backup"]
    if options["short_window"]:
        extravars["short_window"] = True
    prepared = site_prepared(RESTORE, request, options, "restore.yml", extravars)
    site = prepared.context["site"]
    backup_hosts = sorted((h for h in prepared.context["cluster"].hosts if "backup" in h.roles), key=lambda h: h.name)
    if backup_hosts and not options["undo"]:
        # A backup the App server lost comes back from the first backup host's copy, over a forwarded agent.
        prepared.environment = lambda: _agent_for(prepared.context["cluster"], backup_hosts[0])
    if options["undo"]:
        what = "undo puts the replaced database back as the database of"
    elif site.role == "production" and options["short_window"]:
        what = ("restoring with --short-window: what users write while the restore is prepared is lost; "
                "it overwrites the database of")
    else:
        what = "restoring a backup overwrites the database of"
    require_confirmed(request, site, what)
    return prepared


def restore_plan(site: store.Site, options: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of a restore (or undo), each saying whether it runs inside the maintenance window."""
    if options.get("undo"):
        return [{"step": "lock the site and check that a replaced database is there", "window": False},
                {"step": "put the site into maintenance", "window": True},
                {"step": "swap the newest replaced database back in (a rename; the live one is kept as replaced)",
                 "window": True},
                {"step": "switch back to the release it ran on, where it differs", "window": True},
                {"step": "take the site out of maintenance and check its health", "window": True}]
    short = options.get("short_window") or site.role != "production"
    steps = [{"step": f"lock the site and check backup {options.get('backup')} (manifest, every checksum, "
                      "site, version)", "window": False}]
    if options.get("safety_backup"):
        steps.append({"step": "take a verified backup of the live database (before-restore)", "window": False})
    prepare = {"step": "restore the backup into a fresh database and ANALYZE it", "window": not short}
    steps += [prepare] if short else []
    steps.append({"step": "put the site into maintenance", "window": True})
    steps += [] if short else [prepare]
    steps += [{"step": "swap the fresh database in (a rename); the live one is kept as <db>_replaced_<time>, the "
                       "undo", "window": True},
              {"step": "switch the release with the data when the backup needs it", "window": True},
              {"step": "take the site out of maintenance and check its health", "window": True},
              {"step": f"drop replaced databases beyond the newest {options.get('keep_replaced', 1)}",
               "window": False}]
    if site.role == "production" and short:
        steps.insert(1, {"step": "WARNING: what users write while the restore is prepared is lost", "window": False})
    return steps


def _summarize_restore(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    restored = first_result(result, "fpt.sec.db_restore")
    if restored.get("release_switched") and restored.get("swapped"):
        store.record_site_version(prepared.cluster or "", prepared.context["site"].reverse_name,
                                  restored["release_switched"]["to"])
    return {"operation": result.id, "site": prepared.site, "backup": prepared.options["backup"],
            "undo": prepared.options["undo"], "window_seconds": upgrades.window_seconds(result.events()),
            **restored}


RESTORE = OperationSpec(
    "restore", "restore one of the site's backups, or put the replaced database back (--undo)",
    (SITE, Option("backup", positional=True, help="the backup's name, as `sec backups SITE` lists it"),
     Option("undo", kind="bool", default=False,
            help="swap the newest replaced database (kept by the last restore or sync) back in, with its release"),
     Option("short_window", kind="bool", default=False,
            help="on a production site, prepare the fresh database while the site serves and keep maintenance "
                 "to the swap: what users write meanwhile is lost (staging sites always do this)"),
     Option("safety_backup", kind="bool", default=False,
            help="first take a verified backup of the live database (before-restore), a copy off the DB server"),
     Option("keep_replaced", kind="int", default=1, minimum=0, metavar="N",
            help="replaced databases to keep for this site, the new one included (default 1; 0: no undo)"),
     Option("force", kind="bool", default=False,
            help="accept a backup of another site (a backup of another version still needs its release)"),
     Option("switch_release", kind="bool", default=False,
            help="restore a backup of another version with its release: current is switched to it on every "
                 "App/API server of the site")),
    _prepare_restore, _summarize_restore, confirm="production")


# -- drill ------------------------------------------------------------------------------------------------------
def _prepare_drill(request: OperationRequest) -> Prepared:
    options = DRILL.typed(request.options)
    extravars = {"backup": options["backup"]} if options["backup"] else {}
    return site_prepared(DRILL, request, options, "drill.yml", extravars)


DRILL = OperationSpec(
    "drill", "prove a backup restores: into a scratch database on the DB server, checked, then dropped",
    (SITE, Option("backup", positional=True,
                  help="the backup's name, as `sec backups SITE` lists it (default: the newest not known damaged)")),
    _prepare_drill,
    module_result("fpt.sec.db_drill", ("backup", "passed", "reason", "drill", "restore_seconds", "checks_seconds",
                                       "recovery_seconds", "tables", "rows", "scratch_database", "dropped")))


# -- trim-events, redeploy ----------------------------------------------------------------------------------------
def _prepare_trim(request: OperationRequest) -> Prepared:
    options = TRIM_EVENTS.typed(request.options)
    tuning = {k: options[k] for k in ("batch_size", "throttle_ms", "keep_days") if options[k] is not None}
    prepared = site_prepared(TRIM_EVENTS, request, options, "trim_events.yml",
                             {"before": options["before"], "vacuum": options["vacuum"], **tuning})
    require_confirmed(request, prepared.context["site"], "trimming deletes events (archived to a CSV) of")
    return prepared


TRIM_EVENTS = OperationSpec(
    "trim-events", "archive events older than a date to a CSV, then delete them",
    (SITE, Option("before", required=True, metavar="YYYY-MM-DD", help="events created before this day go"),
     Option("batch_size", kind="int", help="rows per short transaction (default 5000)"),
     Option("throttle_ms", kind="int", help="pause between batches (default 20)"),
     Option("keep_days", kind="int", help="never trim the last N days (default 30)"),
     Option("vacuum", kind="bool", default=False, help="VACUUM (ANALYZE) the table afterwards")),
    _prepare_trim, module_result("fpt.sec.events_trim"), confirm="production")


def _prepare_redeploy(request: OperationRequest) -> Prepared:
    options = REDEPLOY.typed(request.options)
    prepared = site_prepared(REDEPLOY, request, options, "redeploy.yml", {"force": options["force"]})
    require_confirmed(request, prepared.context["site"], "redeploying restarts the application and Apache of")
    return prepared


REDEPLOY = OperationSpec(
    "redeploy", "apply persisted settings: runtime config, graceful restarts",
    (SITE, Option("force", kind="bool", default=False, help="even when nothing is pending")),
    _prepare_redeploy, module_result("fpt.sec.redeploy"), confirm="production")


# -- site settings, repair ------------------------------------------------------------------------------------------
def _prepare_settings(request: OperationRequest) -> Prepared:
    options = SETTINGS.typed(request.options)
    changes: dict[str, Any] = dict(options["settings"] or {})
    for item in options["set"] or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SecError(f"--set {item!r}: write KEY=VALUE, e.g. --set max_upload_mb=800")
        changes[key.strip()] = value  # the module types it by the schema
    if options["replace"] and options["settings"] is None:
        raise SecError("replace goes with the whole settings (--file, or the console's settings)")
    extravars: dict[str, Any] = {"force": options["force"], "replace": options["replace"]}
    if changes:
        extravars["settings_json"] = json.dumps(changes)
    return site_prepared(SETTINGS, request, options, "site_settings.yml", extravars)


SETTINGS = OperationSpec(
    "site settings", "show or change a site's settings (applied by a redeploy)",
    (SITE, Option("set", kind="list", metavar="KEY=VALUE",
                  help="change one setting (typed by the schema); repeat for several"),
     Option("settings", kind="object", help="a JSON object of settings to merge in"),
     Option("replace", kind="bool", default=False, help="the settings given are the whole settings"),
     Option("force", kind="bool", default=False, help="accept keys the schema does not know")),
    _prepare_settings,
    module_result("fpt.sec.site_settings", ("settings", "changes", "pending_redeploy", "pending_changes")))


def _prepare_repair(request: OperationRequest) -> Prepared:
    options = REPAIR.typed(request.options)
    return site_prepared(REPAIR, request, options, "repair.yml", {"releases_dir": str(releases_dir())},
                         arguments={})


def _summarize_repair(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    match = first_result(result, "fpt.sec.release_match")
    said = first_result(result, "Say what was found and done").get("msg", "")
    version = next((r.get("version") for r in result.task_results("fpt.sec.release_activate").values()), None)
    if version is None:
        running = {r.get("running_version") for r in result.task_results("fpt.sec.upgrade_journal").values()}
        version = running.pop() if len(running) == 1 else None
    if version:  # the stored version follows what every head now runs (a lost head had left it wrong)
        store.record_site_version(prepared.cluster or "", prepared.context["site"].reverse_name, version)
    return {"operation": result.id, "site": prepared.site, "version": version,
            "schema_version": match.get("schema_version"), "message": said}


REPAIR = OperationSpec(
    "site repair", "align every web head with the database (what a lost head or a broken site needs)",
    (SITE,), _prepare_repair, _summarize_repair)


# -- upgrade ---------------------------------------------------------------------------------------------------------
def upgrade_plan(site_query: str, to: str, cluster: str | None = None) -> dict[str, Any]:
    """The steps, sizes and estimate of upgrading the site to `to` (`sec upgrade --plan`); changes nothing."""
    found_cluster, site = store.find_site(site_query, cluster)
    return upgrades.build_plan(found_cluster, site, to, releases_dir())


def _prepare_upgrade(request: OperationRequest) -> Prepared:
    options = UPGRADE.typed(request.options)
    cluster, site = store.find_site(_site_query(UPGRADE, request), request.cluster)
    state = str(site.extra.get("state") or "ok")
    if state.startswith("broken"):
        raise SecError(f"{site.name} is {state}: run sec site repair {site.name} first")
    plan = upgrades.build_plan(cluster, site, options["to"], releases_dir())
    require_confirmed(request, site, f"upgrading to {options['to']}")
    if plan["warning"] and not options["tested"]:
        # The staging-first rule blocks, on every front end alike; the record keeps who chose to go past it.
        raise SecError(f"{plan['warning']}; or, having tested {options['to']} another way, say so: --tested "
                       "(the console: tick \"I have tested this\")")
    extravars = {"to": options["to"], "releases_dir": str(releases_dir()), "keep_releases": options["keep_releases"]}
    arguments = {"from": site.version, "to": options["to"], "keep_releases": options["keep_releases"],
                 **({"tested_without_staging": True} if plan["warning"] else {})}
    prepared = site_prepared(UPGRADE, request, options, "upgrade.yml", extravars, arguments=arguments,
                             subject=f"upgrade of {site.name} to {options['to']}")
    prepared.context["plan"] = plan
    return prepared


def _summarize_upgrade(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    to = prepared.options["to"]
    store.record_site_version(prepared.cluster or "", prepared.context["site"].reverse_name, to)
    events = result.events()
    return {"operation": result.id, "site": prepared.site, "from": prepared.context["plan"]["from"], "to": to,
            "steps": upgrades.migrations_applied(events),
            "backup": upgrades.result_of(events, "fpt.sec.db_backup").get("name"),
            "window": upgrades.window_seconds(events), "duration": result.duration}


UPGRADE = OperationSpec(
    "upgrade", "upgrade a site along the enforced path (--plan shows it first)",
    (SITE, Option("to", required=True, metavar="VERSION", help="the target version, e.g. 8.2.0"),
     Option("keep_releases", kind="int", default=3, minimum=1, metavar="N",
            help="releases to keep on the servers afterwards, the current one included (default 3)"),
     Option("tested", kind="bool", default=False,
            help="go ahead although no staging site of the cluster has reached the version (you tested it "
                 "another way); the record keeps this choice")),
    _prepare_upgrade, _summarize_upgrade, confirm="production")


# -- a low-level module ------------------------------------------------------------------------------------------------
def _prepare_module(request: OperationRequest) -> Prepared:
    from sec_wrapper.operations.modules import low_level_modules  # slow to import: Ansible's doc parser

    options = RUN_MODULE.typed(request.options)
    known = {m["module"]: m for m in low_level_modules()}
    module = options["module"]
    if module not in known:
        raise SecError(f"no low-level module {module}: choose one of {', '.join(sorted(known))}")
    module_args: dict[str, Any] = {}
    for item in options["args"] or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SecError(f"{item!r}: write KEY=VALUE, e.g. state=on")
        if key not in known[module]["options"]:
            raise SecError(f"fpt.sec.{module} has no option {key}")
        module_args[key] = value  # the module's argument spec types it
    prepared = site_prepared(RUN_MODULE, request, options, "advanced/run_module.yml",
                             {"module": module, "module_args": module_args},
                             arguments={"module": module, **module_args}, subject=f"advanced {module} on")
    prepared.subject += f" {prepared.site}"
    prepared.context["name"] = f"advanced {module}"
    return prepared


def _summarize_module(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    return {"operation": result.id, "site": prepared.site, "result": first_result(result, "fpt.sec.run_module")}


RUN_MODULE = OperationSpec(
    "advanced run", "run one module of fpt.sec on a site (recorded like any operation)",
    (Option("module", positional=True, required=True), SITE,
     Option("args", kind="list", positional=True, metavar="KEY=VALUE", help="the module's own arguments")),
    _prepare_module, _summarize_module)
