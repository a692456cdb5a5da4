"""The operations on two sites: sync-db (a site's database into a staging site) and sync-media (add-only).

The request's `site` is the source; `target` is an option (the CLI's second positional argument)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sec_wrapper import upgrades
from sec_wrapper.errors import SecError
from sec_wrapper.operations.site_work import first_result
from sec_wrapper.operations.spec import ConfirmationNeeded, OperationRequest, OperationSpec, Option, Prepared
from sec_wrapper.runner import OperationResult
from sec_wrapper.site_pair import (
    SitePair,
    check_db_target,
    check_distinct,
    find_pair,
    pair_inventory,
    source_agent,
    source_known_hosts,
)

PAIR = (
    Option("source", positional=True, required=True,
           help="the site to copy from: name (prod.teststudio.com) or reverse name"),
    Option("target", positional=True, required=True, help="the site to copy into"),
    Option("source_cluster", metavar="NAME", help="the source's cluster (a sync between clusters)"),
    Option("target_cluster", metavar="NAME", help="the target's cluster"),
)


def _pair_prepared(spec: OperationSpec, request: OperationRequest, options: dict[str, Any], playbook: str,
                   extravars: dict[str, Any], arguments: dict[str, Any], copy_hosts: bool = False) -> Prepared:
    """`copy_hosts`: the target's App server may pull from the source cluster's first backup host (a given
    backup the source's App server lost), so its key goes into the forwarded agent too."""
    pair: SitePair = _pair(request, options)
    backup_hosts = sorted((h for h in pair.source_cluster.hosts if "backup" in h.roles), key=lambda h: h.name)
    more = backup_hosts[:1] if copy_hosts and pair.same_cluster else []

    @contextmanager
    def agent() -> Iterator[dict[str, Any]]:
        with source_agent(pair, *more) as forwarding:
            yield {"forward_agent": forwarding, "known_hosts_file": source_known_hosts(pair)}

    return Prepared(
        spec=spec, options=options, playbook=playbook, inventory=pair_inventory(pair),
        extravars={"source": pair.source.reverse_name, "target": pair.target.reverse_name, **extravars},
        arguments={"source": pair.source.name, "source_cluster": pair.source_cluster.name,
                   "target": pair.target.name, **arguments},
        cluster=pair.target_cluster.name, site=pair.target.name,
        subject=f"{spec.name} {pair.source.name} -> {pair.target.name}", context={"pair": pair},
        environment=agent)


def _pair(request: OperationRequest, options: dict[str, Any]) -> SitePair:
    source = options.get("source") or request.site
    if not source:
        raise SecError("give the source site and the target site")
    return find_pair(str(source), options["target"], request.cluster, options["source_cluster"],
                     options["target_cluster"])


def _typed(spec: OperationSpec, request: OperationRequest) -> dict[str, Any]:
    given = dict(request.options)
    if request.site and "source" not in given:
        given["source"] = request.site
    return spec.typed(given)


# -- sync-media -------------------------------------------------------------------------------------------------
def _prepare_media(request: OperationRequest) -> Prepared:
    options = _typed(SYNC_MEDIA, request)
    if options["bwlimit"] < 0 or options["list"] < 0:
        raise SecError("--bwlimit and --list take 0 or more")
    pair = _pair(request, options)
    check_distinct(pair)
    if pair.target.role != "staging" and not options["dry_run"]:
        raise SecError(f"{pair.target.name} is a production site: nothing is ever synced into production "
                       f"(--dry-run lists what it lacks); if it is a staging site: "
                       f"sec site role {pair.target.name} staging")
    if not options["dry_run"] and not request.confirms(pair.target.name):
        raise ConfirmationNeeded(f"sync-media copies files into {pair.target.name}'s media folder",
                                 pair.target.name)
    extravars = {"dry_run": options["dry_run"], "bwlimit": options["bwlimit"]}
    return _pair_prepared(SYNC_MEDIA, request, options, "sync_media.yml", extravars, dict(extravars))


def _summarize_media(prepared: Prepared, result: OperationResult) -> dict[str, Any] | None:
    media = first_result(result, "fpt.sec.media_sync")
    if not result.ok and media.get("complete", True):  # failed elsewhere than in a copy that left names
        return None
    pair: SitePair = prepared.context["pair"]
    return {
        "operation": result.id, "source": pair.source.name, "target": pair.target.name,
        "dry_run": prepared.options["dry_run"], "transport": media.get("transport"),
        "files_copied": media.get("files_copied", 0), "bytes_copied": media.get("bytes_copied", 0),
        "dirs_created": media.get("dirs_created", 0), "source_files": media.get("source_files"),
        "complete": media.get("complete", True), "errors": media.get("errors") or [],
        "passed_over": media.get("passed_over") or [], "duration": media.get("duration"),
        "files": media.get("files") or [],
    }


SYNC_MEDIA = OperationSpec(
    "sync-media", "copy the media files a site lacks from another site, add-only",
    (*PAIR,
     Option("dry_run", kind="bool", default=False, help="only list what would be copied"),
     Option("bwlimit", kind="int", default=0, metavar="KIB_PER_S",
            help="transfer rate limit, to spare a busy source (default 0: none)"),
     Option("list", kind="int", default=20, metavar="N", help="how many of the copied files to print (default 20)")),
    _prepare_media, _summarize_media, result_when_failed=True, confirm="target")


# -- sync-db -------------------------------------------------------------------------------------------------------
def _prepare_db(request: OperationRequest) -> Prepared:
    options = _typed(SYNC_DB, request)
    pair = _pair(request, options)
    check_db_target(pair)
    if not request.confirms(pair.target.name):
        raise ConfirmationNeeded(f"sync-db overwrites the database of {pair.target.name} with "
                                 f"{pair.source.name}'s", pair.target.name)
    if options["max_age_hours"] < 0:
        raise SecError("--max-age-hours takes 0 (any age) or more")
    extravars: dict[str, Any] = {"keep_backup": options["keep_backup"], "max_age_hours": options["max_age_hours"]}
    if options["use_backup"]:
        extravars["use_backup"] = options["use_backup"]
    return _pair_prepared(SYNC_DB, request, options, "sync_db.yml", extravars,
                          {"use_backup": options["use_backup"], "keep_backup": options["keep_backup"],
                           "max_age_hours": options["max_age_hours"]}, copy_hosts=bool(options["use_backup"]))


def _summarize_db(prepared: Prepared, result: OperationResult) -> dict[str, Any]:
    pair: SitePair = prepared.context["pair"]
    made = first_result(result, "fpt.sec.db_backup")
    moved = first_result(result, "fpt.sec.db_backup_transfer")
    restored = first_result(result, "fpt.sec.db_restore")
    settings = first_result(result, "fpt.sec.site_settings").get("settings") or {}
    return {
        "operation": result.id, "source": pair.source.name, "target": pair.target.name,
        "backup": moved.get("name") or prepared.options["use_backup"], "new_backup": bool(made),
        "backup_size": moved.get("size"), "transfer": moved.get("method"),
        "database": restored.get("database"), "restore_seconds": restored.get("duration"),
        "replaced_database": restored.get("replaced_database"),
        "window_seconds": upgrades.window_seconds(result.events()),
        "site_url": settings.get("site_url"),
        "email_notifications_enabled": settings.get("email_notifications_enabled"),
        "duration": result.duration,
    }


SYNC_DB = OperationSpec(
    "sync-db", "copy a site's database into a staging site (backup, then restore)",
    (*PAIR,
     Option("use_backup", metavar="NAME",
            help="a recent verified backup of the source (as `sec backups SOURCE` lists it) instead of a new one"),
     Option("max_age_hours", kind="int", default=24,
            help="with --use-backup: refuse a backup older than this (default 24, 0: any age)"),
     Option("keep_backup", kind="bool", default=False,
            help="keep the backup made for the sync on the source and its copy on the target")),
    _prepare_db, _summarize_db, confirm="target")
