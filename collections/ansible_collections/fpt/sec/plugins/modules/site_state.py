#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_state
short_description: Read the state of the sites a web head serves, in one call
version_added: "0.3.0"
description:
  - Reads, for every site the host serves, what a site administrator checks first - whether the site is in
    maintenance (and its message), the release C(current) points at, whether the site is fenced or its
    C(current) is broken, its health through its Apache virtual host, whether an operation holds the site
    lock, its persisted settings and whether a redeploy is pending, its backups (newest, count, total size),
    the free space where the site writes, and its database's size and estimated event count.
  - One module call per host reads every site, so a probe of a cluster costs one SSH round trip per host.
  - The database part lists the replaced databases a restore or sync kept as its undo.
  - Read-only, takes no lock and is safe beside a running operation. Backups are listed from their
    manifests (their files are not re-read); the event count is the catalog's estimate
    (C(pg_class.reltuples)), not a C(count(*)).
  - A part that cannot be read is returned with its C(error), the other parts still are.
author:
  - sec maintainers (!UNKNOWN)
options:
  sites:
    description:
      - The sites this host serves, keyed by reverse name, as the inventory's C(sec_sites) host variable
        holds them. Each needs C(name) and C(site_dir); C(health_url) enables the health check.
    type: dict
    required: true
  site:
    description:
      - Read only this site (its name or reverse name). Default, every site in O(sites).
    type: str
  database:
    description:
      - Read the database's size and event estimate (one C(psql) per site, with database.yml's credentials).
    type: bool
    default: true
  health_timeout:
    description: Seconds a health request may take.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: The module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
"""

EXAMPLES = r"""
- name: Read the state of every site of this web head
  fpt.sec.site_state:
    sites: "{{ sec_sites }}"
  register: state

- name: Read one site, without its database
  fpt.sec.site_state:
    sites: "{{ sec_sites }}"
    site: staging.teststudio.com
    database: false
"""

RETURN = r"""
sites:
  description: The state of each site read, keyed by reverse name.
  returned: always
  type: dict
  sample:
    com_teststudio_staging:
      name: staging.teststudio.com
      read_at: "2026-12-07T03:40:00Z"
      maintenance: {"on": true, "message": "Back at 10:00", "since": "2026-12-07T03:30:00Z"}
      release: {"name": "8.0.1", "version": "8.0.1", "broken": null}
      staged_releases: ["8.0.0", "8.0.1", "8.1.0"]
      fence: null
      health: {"url": "http://127.0.0.1/status", "status": 503, "problem": "answered 503 (expected 200)"}
      lock: null
      settings: {"persisted": {"max_upload_mb": 500}, "pending": false, "reason": "...", "changes": []}
      backups: {"count": 2, "total_bytes": 104857600, "newest": {"name": "2026-12-06T22-00-00Z_8.0.1"}}
      disk: [{"path": "/var/rails/com_teststudio_staging", "free_bytes": 1073741824, "total_bytes": 4294967296}]
      database: {"name": "shotgun_staging", "size_bytes": 12582912, "events_estimate": 10000, "replaced": []}
"""

import html
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils import db_backups, db_replaced, site_fence, site_lock
from ansible_collections.fpt.sec.plugins.module_utils.files import folder_size
from ansible_collections.fpt.sec.plugins.module_utils.health_check import fetch, parse_json, problem
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PgClient, PostgresError
from ansible_collections.fpt.sec.plugins.module_utils.site_model import (
    DatabaseConfigError,
    read_running_version,
    reverse_name,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_releases import staged_versions
from ansible_collections.fpt.sec.plugins.module_utils.site_runtime import (
    SettingsFileError,
    pending_state,
    read_json_object,
    settings_path,
)
from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso, iso_utc

_DEFAULT_PAGE_TITLE = re.compile(r"<h1>.* is under maintenance</h1>", re.S)
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S)


def _guarded(read, *args):
    """A part that cannot be read says why; the other parts are still read."""
    try:
        return read(*args)
    except (OSError, ValueError, PostgresError, DatabaseConfigError, SettingsFileError,
            site_lock.LockError, db_backups.BackupError) as exc:
        return {"error": " ".join(str(exc).split())[:300]}


def maintenance(site_dir: str) -> dict:
    path = os.path.join(site_dir, "tmp", "maintenance.html")
    try:
        with open(path, "rb") as handle:
            page = handle.read(65536).decode("utf-8", "replace")
        since = iso_utc(os.stat(path).st_mtime)
    except FileNotFoundError:
        return {"on": False, "message": None, "since": None}
    found = _PARAGRAPH.search(page) if _DEFAULT_PAGE_TITLE.search(page) else None
    message = html.unescape(found.group(1)) if found else "(a custom maintenance page)"
    return {"on": True, "message": message, "since": since}


def release(site_dir: str) -> dict:
    version, path = read_running_version(site_dir)
    return {"name": os.path.basename(path) if path else None, "version": version,
            "broken": site_fence.broken_current(site_dir)}


def health(url: str | None, host_header: str, timeout: float) -> dict | None:
    if not url:
        return None
    answer = fetch(url, host_header, timeout, validate_certs=False)
    body = parse_json(answer["text"]) or {}
    return {"url": url, "status": answer["status"], "problem": problem(answer, body, 200, None),
            "version": body.get("version"), "schema_version": body.get("schema_version"),
            "elapsed": answer["elapsed"]}


def lock(site_dir: str) -> dict | None:
    holder = site_lock.with_work_state(site_lock.with_age(site_lock.read_lock(site_lock.lock_path(site_dir))))
    if holder is None:
        return None
    return {"operation_id": holder.get("operation_id"), "started": holder.get("started"),
            "age_seconds": holder.get("age_seconds"), "work_running": holder.get("work_running"),
            "description": site_lock.describe(holder)}


def settings(site_dir: str) -> dict:
    persisted, _raw = read_json_object(settings_path(site_dir))
    state = pending_state(site_dir, persisted or {}) if persisted is not None else {
        "pending": False, "reason": "the site has no persisted settings", "changes": []}
    return {"persisted": persisted, "pending": state["pending"], "reason": state["reason"],
            "changes": state["changes"]}


def backups(site_dir: str, now: float) -> dict:
    listed = db_backups.list_backups(site_dir)
    items = []
    for entry in listed:
        state = db_backups.listed_state(entry, db_backups.read_check(entry["path"]), None)
        item = {key: entry.get(key) for key in
                ("name", "started", "ended", "version", "label", "kind", "size", "file_count", "drill",
                 "last_drill", "pinned")}
        item.update(state=state["state"], verified_at=state["verified_at"], problem=state["problem"])
        items.append(item)
    newest = items[-1] if items else None
    if newest:
        started = epoch_of_iso(newest["started"]) if newest.get("started") else None
        newest = dict(newest, age_seconds=round(now - started) if started is not None else None)
    root = db_backups.backup_root(site_dir)
    return {"count": len(items), "newest": newest, "items": items,
            "total_bytes": folder_size(root) if os.path.isdir(root) else 0}


def disk(paths: list[str]) -> list[dict]:
    seen, found = set(), []
    for path in paths:
        try:
            stat = os.statvfs(path)
            device = os.stat(path).st_dev
        except OSError:
            continue
        if device in seen:
            continue
        seen.add(device)
        found.append({"path": path, "free_bytes": stat.f_bavail * stat.f_frsize,
                      "total_bytes": stat.f_blocks * stat.f_frsize})
    return found


def database(site_dir: str) -> dict:
    client = PgClient.for_site(site_dir)
    with client:
        rows = client.query(
            "SELECT current_database(), pg_database_size(current_database()), "
            "(SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE relname = 'event_log_entries' "
            "AND relkind IN ('r', 'p') ORDER BY relnamespace = 'public'::regnamespace DESC LIMIT 1)")
        replaced = db_replaced.listed(client, client.database, "postgres")
    name, size, events = (rows[0] + ["", "", ""])[:3] if rows else ("", "", "")
    return {"name": name or client.database, "size_bytes": int(size) if size else None,
            "events_estimate": int(events) if events else None, "replaced": replaced}


def read_site(info: dict, with_database: bool, timeout: float, now: float) -> dict:
    site_dir = str(info.get("site_dir") or "")
    name = str(info.get("name") or os.path.basename(site_dir))
    state: dict = {"name": name, "site_dir": site_dir, "read_at": iso_utc(now)}
    if not site_dir or not os.path.isdir(site_dir):
        state["error"] = f"site dir {site_dir or '(none)'} does not exist on this host"
        return state
    state["maintenance"] = _guarded(maintenance, site_dir)
    state["release"] = _guarded(release, site_dir)
    state["staged_releases"] = staged_versions(site_dir)
    state["fence"] = _guarded(site_fence.read, site_dir)
    state["lock"] = _guarded(lock, site_dir)
    state["settings"] = _guarded(settings, site_dir)
    state["backups"] = _guarded(backups, site_dir, now)
    state["disk"] = disk([site_dir, db_backups.backup_root(site_dir)])
    state["health"] = _guarded(health, info.get("health_url"), name, timeout)
    if with_database:
        state["database"] = _guarded(database, site_dir)
    return state


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "sites": {"type": "dict", "required": True},
            "site": {"type": "str"},
            "database": {"type": "bool", "default": True},
            "health_timeout": {"type": "float", "default": 5},
        },
        supports_check_mode=True,
    )
    wanted = module.params["site"]
    wanted_group = reverse_name(wanted) if wanted and "." in wanted else wanted
    now = time.time()
    found = {}
    for group, info in sorted(module.params["sites"].items()):
        if wanted_group and group != wanted_group:
            continue
        found[group] = read_site(info if isinstance(info, dict) else {}, module.params["database"],
                                 module.params["health_timeout"], now)
    module.exit_json(changed=False, sites=found)


if __name__ == "__main__":
    main()
