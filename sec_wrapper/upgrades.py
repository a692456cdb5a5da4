"""What `sec upgrade` knows before and after running playbooks/upgrade.yml: the plan (steps, migrations,
what runs outside and inside maintenance, the backup, an estimate from history, the staging-first warning)
and, from a run's job events, the migrations applied per step and the maintenance window.

The path itself is the collection's (`versions.upgrade_path` over the releases folder, through
`plugin_utils/release_folder.plan`), the same code the playbook's lookup runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils import release_archive
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version
from ansible_collections.fpt.sec.plugins.plugin_utils import release_folder

from sec_wrapper import history, store
from sec_wrapper.errors import SecError

OPERATION = "upgrade"
# The task of upgrade.yml that opens the window (history reads it back); the window closes with the task
# that removed the page: release_activate's leave_maintenance, or the maintenance module after each-step runs.
WINDOW_OPEN = "Put the site into maintenance"
BACKUP_LABEL = "pre-upgrade-{to}"


def _manifest_migrations(path: str) -> list[str] | None:
    try:
        return list(release_archive.read_manifest(path)["migrations"])
    except (release_archive.ReleaseArchiveError, OSError):
        return None


def build_plan(cluster: store.Cluster, site: store.Site, target: str, folder: Path) -> dict[str, Any]:
    """The plan of upgrading `site` to `target` over `folder`; SecError when there is no valid path."""
    try:
        Version(target)
    except ValueError as exc:
        raise SecError(f"--to: {exc}") from None
    if not site.version:
        raise SecError(f"the version of {site.name} is unknown: refresh it with sec cluster connect {cluster.name}")
    found = release_folder.plan(site.version, target, str(folder))
    if found["error"]:
        raise SecError(f"{site.name}: {found['error']}")
    releases = {r["version"]: r for r in release_folder.list_releases(str(folder))}
    # What each step adds: its migrations minus those of the release before it (the running one first).
    before = _manifest_migrations(releases[site.version]["path"]) if site.version in releases else None
    steps = []
    for step in found["steps"]:
        ships = _manifest_migrations(step["path"]) or []
        new = [m for m in ships if before is None or m not in before]
        steps.append({"version": step["version"], "file": step["file"], "size": step["size"],
                      "checksum": step["state"], "migrations": new, "exact": before is not None})
        before = ships
    servers = sorted(set(site.app_hosts) | {h.name for h in cluster.hosts_with_role("api")})
    plan: dict[str, Any] = {
        "site": site.name, "cluster": cluster.name, "role": site.role, "from": site.version, "to": target,
        "steps": steps, "servers": servers, "backup_label": BACKUP_LABEL.format(to=target),
        "outside": [
            "lock the site",
            f"copy {len(steps)} release(s) ({sum(s['size'] for s in steps)} bytes) to {len(servers)} server(s), "
            "verify and unpack them under releases/<version>",
            f"take and verify a database backup labelled {BACKUP_LABEL.format(to=target)}",
        ],
        "inside": [
            "run the migrations of " + ", ".join(f"{s['version']} ({len(s['migrations'])})" for s in steps)
            + ", in that order",
            f"switch current to releases/{target} on every server (one rename) and restart the application",
        ],
        "after": [f"check through the vhost that {target} answers and reads the migrated database",
                  "remove old releases beyond keep_releases, unlock"],
    }
    plan["estimate"] = estimate(cluster, site, target)
    plan["warning"] = staging_warning(cluster, site, target)
    return plan


def _upgrades(cluster: store.Cluster) -> list[dict[str, Any]]:
    return [r for r in history.list_operations(cluster=cluster.name, status="successful")
            if r.get("operation") == OPERATION]


def estimate(cluster: store.Cluster, site: store.Site, target: str) -> dict[str, Any] | None:
    """The durations of the closest successful upgrade in history: the same path on a staging site of the
    cluster first (the recommended rehearsal), else the same path on this site, else None."""
    staging = {s.name for s in cluster.sites if s.role == "staging"}
    runs = _upgrades(cluster)
    same_path = [r for r in runs if (r.get("arguments") or {}).get("from") == site.version
                 and (r.get("arguments") or {}).get("to") == target]
    for candidates, source in (([r for r in same_path if r.get("site") in staging], "staging"),
                               ([r for r in same_path if r.get("site") == site.name], "this site")):
        if candidates:
            record = candidates[0]  # newest first
            return {"source": source, "site": record.get("site"), "operation": record["id"],
                    "started": record.get("started"), "duration": record.get("duration"),
                    "window": window_seconds(history.load_events(record["id"]))}
    return None


def staging_warning(cluster: store.Cluster, site: store.Site, target: str) -> str | None:
    """For a production site: a warning when no staging site of the cluster has reached `target`."""
    if site.role != "production":
        return None
    staging = [s for s in cluster.sites if s.role == "staging"]
    if not staging:
        return (f"cluster {cluster.name} has no staging site: {target} was not tried on a copy of "
                f"{site.name} first")
    for other in staging:
        try:
            if other.version and Version(other.version) >= Version(target):
                return None
        except ValueError:
            continue
    if any((r.get("arguments") or {}).get("to") == target and r.get("site") in {s.name for s in staging}
           for r in _upgrades(cluster)):
        return None
    return (f"no staging site of cluster {cluster.name} has reached {target} "
            f"({', '.join(f'{s.name} runs {s.version}' for s in staging)}): upgrade staging first")


# -- reading a run back ---------------------------------------------------------------------------------------
def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def window_seconds(events: list[dict[str, Any]]) -> float | None:
    """Seconds between the first server's maintenance page going up and the last one's coming down, as the
    controller saw the two tasks end (a slight overestimate: each end includes the result's way back)."""
    opened: list[float] = []
    closed: list[float] = []
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_ok" or not (data.get("res") or {}).get("changed"):
            continue  # a page already up (or already gone) did not open (or close) this window
        end = _stamp(data.get("end"))
        if end is None:
            continue
        res = data.get("res") or {}
        action = str(data.get("resolved_action") or data.get("task_action") or "")
        if data.get("task") == WINDOW_OPEN:
            opened.append(end)
        elif res.get("maintenance_left") or (action.endswith("maintenance") and res.get("state") == "off"):
            closed.append(end)
    if not opened or not closed:
        return None
    return round(max(closed) - min(opened), 2)


def migrations_applied(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps of every db_migrate that applied something, in order: [{release, applied, duration}]."""
    steps: list[dict[str, Any]] = []
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") not in ("runner_on_ok", "runner_on_failed"):
            continue
        if "db_migrate" not in str(data.get("resolved_action") or data.get("task_action") or ""):
            continue
        res = data.get("res") or {}
        if res.get("invocation", {}).get("module_args", {}).get("_ansible_check_mode") or not res.get("applied"):
            continue
        steps.extend(s for s in res.get("steps") or [] if s.get("applied"))
    return steps


def result_of(events: list[dict[str, Any]], module: str) -> dict[str, Any]:
    """The last non-skipped result of `module` (FQCN) in the run."""
    found: dict[str, Any] = {}
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and (data.get("resolved_action") == module
                                                     or data.get("task_action") == module):
            found = data.get("res") or {}
    return found
