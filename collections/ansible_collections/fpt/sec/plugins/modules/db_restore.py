#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_restore
short_description: Restore a site's database from one of the site's own backups
version_added: "0.1.0"
description:
  - Runs on the App server. Restores one backup made by M(fpt.sec.db_backup), named by its folder in
    C(<site_dir>/db_backup/), the vendor's fixed location. Paths, C(..), absolute names, hidden (partial)
    folders and symbolic links are refused.
  - Checks first, before anything changes. The manifest must be sound, and every file must be present
    with its recorded size and sha256, and nothing else in the dump. A flipped byte or a truncated file
    fails with one line naming the file, and so does a manifest that was edited (it carries its own
    checksum). A refused backup is recorded as damaged (C(sec-check.json), in check mode too), so that
    M(fpt.sec.db_backup_info) lists it as such. The backup must belong to this site and database unless O(force).
  - The backup's version must have the schema of the site's code, the release C(current) points at (the
    same major and minor version, as patch releases never change the schema). Otherwise the restore is
    refused, even with O(force), unless O(switch_release). Then C(current) is switched to
    C(releases/<backup version>) right after the swap, and the application restarted, so the code always
    matches the restored schema. When that release is not staged on the App server the restore is refused,
    naming the release to stage.
  - Restores with C(pg_restore --jobs=N) into a fresh database C(<db>_restore_<UTC time>), created with the
    live database's encoding and locale, then runs C(ANALYZE) on it. Then it swaps it in, in one
    transaction. New connections to the live database are refused, its sessions ended, the live database
    renamed C(<db>_replaced_<UTC time>) and the fresh one given the live name.
  - The replaced database is the undo. It is kept (with a comment saying when, by which operation and backup,
    and on which release it ran), and O(phase=undo) swaps the newest one back in, in seconds, with its release.
    The newest O(keep_replaced) replaced databases of the site are kept; older ones are dropped only after a
    swap succeeded.
  - O(phase=prepare) does the checks, the restore and C(ANALYZE) into the fresh database and stops there,
    the live database untouched (the site may still serve); O(phase=swap) then swaps that database (O(fresh))
    in, in the short window the caller keeps the site in maintenance for. O(phase=all) does both at once.
    A prepared database whose controller went away before the module ended is dropped (no task would swap
    it in); one left behind by a killed run is dropped by the next restore, which holds the site lock.
  - Room first. Where the DB server runs on this host, the restore is refused up front, naming both
    numbers, when its data directory cannot hold the fresh database beside the live one (which is then kept).
  - When the live database does not exist at all (lost), the backup is restored under its name, with a
    warning.
  - A failure before the swap (a pg_restore error, a full disk) drops the fresh database and leaves the
    live database as it was, serving. The swap itself either happens entirely or not at all.
  - It does not put the site into maintenance nor check its health. The C(restore.yml) playbook composes
    M(fpt.sec.site_lock), M(fpt.sec.maintenance), this module and M(fpt.sec.site_health).
extends_documentation_fragment:
  - fpt.sec.site
  - fpt.sec.site_database
options:
  backup:
    description:
      - The backup's folder name in C(<site_dir>/db_backup/), for example C(20240501T120000Z_8.0.0), as
        M(fpt.sec.db_backup) returns it and C(sec backups SITE) lists it. Required but with O(phase=undo).
    type: str
  phase:
    description:
      - V(all) restores and swaps; V(prepare) only restores into the fresh database (returned as
        RV(restore_database)); V(swap) swaps the O(fresh) database prepared earlier in; V(undo) swaps the
        newest replaced database back in; V(discard) drops the O(fresh) database when its swap will not come.
    type: str
    choices: [all, prepare, swap, undo, discard]
    default: all
  fresh:
    description: With O(phase=swap) or O(phase=discard), the database O(phase=prepare) returned as RV(restore_database).
    type: str
  keep_replaced:
    description:
      - How many replaced databases of the site to keep after a successful swap, the one just replaced
        included. V(0) drops it at once (no undo).
    type: int
    default: 1
  operation_id:
    description: The operation recorded in the replaced database's comment (what an undo lists).
    type: str
  site:
    description:
      - The site's name (C(prod.teststudio.com)) or reverse name, to check that the backup is of this site.
        Defaults to the name of O(site_dir).
    type: str
  force:
    description:
      - Restore even a backup of another site or database. The checksums are always checked.
      - A backup of another schema version is still restored only with its release (as with
        O(switch_release)), never under code of another version.
    type: bool
    default: false
  switch_release:
    description:
      - When the backup was taken on another major or minor version than the site's code, switch the site's
        C(current) to the backup's release (C(releases/<version>), which must be staged on this host) together
        with the data, and restart the application.
    type: bool
    default: false
  keep_old:
    description:
      - Kept for playbooks written for earlier versions; V(true) keeps at least one replaced database, as
        O(keep_replaced) does by default.
    type: bool
    default: false
  jobs:
    description: Parallel C(pg_restore) jobs. Defaults to the number of CPUs, at most 4.
    type: int
  analyze:
    description:
      - Run C(ANALYZE) on the restored database before it goes live, so that the site's queries have
        planner statistics from the first request (C(pg_restore) does not restore them).
    type: bool
    default: true
  maintenance_db:
    description:
      - The database to connect to for creating, renaming and dropping databases (one cannot rename the
        database one is connected to).
    type: str
    default: postgres
attributes:
  check_mode:
    support: full
    description:
      - Does every check (manifest, checksums, site, version, connection, the role's rights, the archive's
        table of contents) and reports the databases it would create and replace. Changes nothing.
  diff_mode:
    support: none
    description: A database restore has no meaningful diff.
notes:
  - The site's database role must own the live database and have C(CREATEDB), as Flow Production Tracking
    installs set it up.
  - Objects are restored owned by the site's role (C(pg_restore --no-owner)). Settings made with
    C(ALTER DATABASE ... SET) on the live database are not carried over to the restored one.
seealso:
  - module: fpt.sec.db_backup
"""

EXAMPLES = r"""
- name: Check that a backup can be restored, changing nothing
  fpt.sec.db_restore:
    site_dir: "{{ sec_site.site_dir }}"
    site: "{{ sec_site.name }}"
    backup: 20240501T120000Z_8.0.0
  check_mode: true

- name: Restore it (the site should be in maintenance)
  fpt.sec.db_restore:
    site_dir: "{{ sec_site.site_dir }}"
    site: "{{ sec_site.name }}"
    backup: 20240501T120000Z_8.0.0
  register: restore

- name: Restore a backup taken on 8.1.0 into a site now on 8.0.0, keeping two replaced databases
  fpt.sec.db_restore:
    site_dir: /var/rails/com_teststudio_prod
    backup: 20240601T120000Z_8.1.0
    force: true
    keep_replaced: 2

- name: Prepare while the site serves...
  fpt.sec.db_restore:
    site_dir: "{{ sec_site.site_dir }}"
    backup: 20240501T120000Z_8.0.0
    phase: prepare
  register: prepared

- name: ...then swap it in, the site in maintenance for seconds
  fpt.sec.db_restore:
    site_dir: "{{ sec_site.site_dir }}"
    backup: 20240501T120000Z_8.0.0
    phase: swap
    fresh: "{{ prepared.restore_database }}"

- name: Put the replaced database back (undo)
  fpt.sec.db_restore:
    site_dir: "{{ sec_site.site_dir }}"
    phase: undo
"""

RETURN = r"""
room:
  description:
    - The free space checked on the DB server's data directory before the fresh database was made, where the
      DB server runs on the App server.
    - The fresh database is made in the live one's tablespace, so a database on a tablespace of its own is
      checked there (C(location)).
    - Otherwise C(checked) is false and the dict carries C(needed_bytes), C(port), C(location), C(why) and
      C(fix), which a playbook passes to M(fpt.sec.room) run on the DB server itself.
  returned: when the checks reached the database
  type: dict
  sample: {checked: true, path: /var/lib/postgresql/16/main, free_bytes: 52428800000, needed_bytes: 134217728}
backup:
  description: The backup restored.
  returned: always
  type: str
  sample: 20240501T120000Z_8.0.0
backup_path:
  description: Its folder.
  returned: when the name was acceptable
  type: str
  sample: /var/rails/com_teststudio_prod/db_backup/20240501T120000Z_8.0.0
database:
  description: The live database, the name the site connects to.
  returned: always
  type: str
  sample: teststudio_prod
restore_database:
  description:
    - The fresh database the backup was restored into (after a swap it carries the live name); with
      O(phase=undo), the replaced database put back.
  returned: always
  type: str
  sample: teststudio_prod_restore_20240502093000
old_database:
  description:
    - The name the replaced database got at the swap. Null when there was no live database to replace.
  returned: when the checks passed
  type: str
  sample: teststudio_prod_replaced_20240502093000
swapped:
  description: Whether the restored database is now the live one.
  returned: always
  type: bool
  sample: true
replaced_database:
  description: The replaced database kept as the undo (null when O(keep_replaced=0) or nothing was replaced).
  returned: always
  type: str
  sample: teststudio_prod_replaced_20240502093000
pruned:
  description: Older replaced databases dropped after the swap, beyond O(keep_replaced).
  returned: always
  type: list
  elements: str
  sample: []
phase:
  description: The phase run.
  returned: always
  type: str
  sample: all
dropped_leftovers:
  description: Fresh databases of earlier restores that never reached their swap, dropped before this one.
  returned: always
  type: list
  elements: str
  sample: []
undone:
  description: With O(phase=undo), the replaced database put back, with what its comment recorded.
  returned: when phase is undo and the checks passed
  type: dict
  sample: {name: teststudio_prod_replaced_20240502093000, replaced_at: "2024-05-02T09:30:00Z", release: 8.0.0}
dropped_old:
  description: Whether the replaced database was dropped (O(keep_replaced=0)).
  returned: always
  type: bool
  sample: true
backup_version:
  description: The site version the backup was taken on.
  returned: when the manifest was readable
  type: str
  sample: 8.0.0
site_version:
  description: The version of the site's code (C(current)).
  returned: always
  type: str
  sample: 8.0.0
checked_files:
  description: How many files of the backup were checked against their sha256.
  returned: when the checks passed
  type: int
  sample: 112
release_switched:
  description:
    - The release switch made with the data (C(from) and C(to) versions), or in check mode the one that
      would be made. Null when the backup has the schema of the site's code.
  returned: always
  type: dict
  sample: {from: 9.1.0, to: 9.0.0}
forced:
  description: The refusals that O(force) overrode.
  returned: always
  type: list
  elements: str
  sample: []
duration:
  description: Seconds for the whole module run.
  returned: always
  type: float
  sample: 63.2
commands:
  description:
    - The commands run, as argument vectors (in check mode, the C(pg_restore) it would run). They carry no
      secret. The password reaches the tools through a temporary passfile.
  returned: always
  type: list
  elements: list
  sample:
    - [/usr/bin/pg_restore, -h, 127.0.0.1, -p, "5432", -U, teststudio_prod, -w, --jobs=4, --no-owner,
       --exit-on-error, -d, teststudio_prod_restore_20240502093000,
       /var/rails/com_teststudio_prod/db_backup/20240501T120000Z_8.0.0/dump]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils import db_backups, db_replaced, room, site_releases
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, controller_gone, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.postgres import (
    PgClient,
    PostgresError,
    default_jobs,
    find_binary,
    quote_literal,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_model import (
    looks_like_site_dir,
    read_running_version,
    reverse_name,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_module import recorded_work, site_database, site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version


def _site_key(text: str | None) -> str | None:
    """prod.teststudio.com and com_teststudio_prod name the same site."""
    if not text or not text.strip():
        return None
    text = text.strip().lower()
    return reverse_name(text) if "." in text else text


def refusals(manifest: dict, site: str | None, site_dir: str, database: str, site_version: str | None) -> list[str]:
    """Why this backup should not be restored into this site (overridable by force)."""
    reasons = []
    ours = {k for k in (_site_key(site), _site_key(os.path.basename(site_dir.rstrip("/")))) if k}
    theirs = {k for k in (_site_key(manifest.get("site")), _site_key(manifest.get("reverse_name"))) if k}
    if not ours & theirs:
        reasons.append(f"it is a backup of site {manifest.get('site') or '(unknown)'}, "
                       f"not of {site or os.path.basename(site_dir)}")
    if manifest.get("database") != database:
        reasons.append(f"it is a backup of database {manifest.get('database')}, this site uses {database}")
    return reasons


def release_plan(backup_version: object, site_version: str | None, site_dir: str,
                 switch: bool) -> tuple[str | None, str | None]:
    """(why not, release to switch to): the code must match the restored schema, so a backup of another
    major or minor version goes in only with its own release, staged on this host. Not overridable."""
    try:
        theirs, ours = Version(str(backup_version)), Version(str(site_version))
    except ValueError:
        return (f"cannot compare the backup's version {backup_version} with the site's code ({site_version}), so "
                "the code might not match the restored schema", None)
    if (theirs.major, theirs.minor) == (ours.major, ours.minor):
        return None, None  # patch releases never change the schema
    staged = str(theirs) in site_releases.staged_versions(site_dir)
    where = site_releases.releases_root(site_dir)
    mismatch = (f"it was taken on version {theirs} and the site runs {ours}: the code would not match the "
                "restored schema")
    if not staged:
        return (f"{mismatch}, and release {theirs} is not in {where} to switch to: stage it there first (copy "
                f"its archive to the App server and run fpt.sec.release_stage version={theirs}, e.g. `sec advanced "
                f"run release_stage SITE archive=PATH version={theirs}`), or restore a backup taken on {ours.major}."
                f"{ours.minor}", None)
    if not switch:
        return (f"{mismatch}; restore it with its release: switch_release=true (sec restore --switch-release) "
                f"switches the site to release {theirs}, staged in {where}, with the data", None)
    return None, str(theirs)


def main() -> None:
    module = site_module(
        argument_spec={
            "backup": {"type": "str"},
            "site": {"type": "str"},
            "phase": {"type": "str", "default": "all", "choices": ["all", "prepare", "swap", "undo", "discard"]},
            "fresh": {"type": "str"},
            "force": {"type": "bool", "default": False},
            "switch_release": {"type": "bool", "default": False},
            "keep_replaced": {"type": "int", "default": 1},
            "keep_old": {"type": "bool", "default": False},
            "operation_id": {"type": "str"},
            "jobs": {"type": "int"},
            "analyze": {"type": "bool", "default": True},
            "maintenance_db": {"type": "str", "default": "postgres"},
        },
        required_if=[("phase", "all", ["backup"]), ("phase", "prepare", ["backup"]),
                     ("phase", "swap", ["backup", "fresh"]), ("phase", "discard", ["fresh"])],
        supports_check_mode=True,
    )
    params = module.params
    clock = time.monotonic()
    site_dir = os.path.abspath(params["site_dir"])
    site_version = read_running_version(site_dir)[0] if looks_like_site_dir(site_dir) else None
    result: dict = {"changed": False, "backup": params["backup"], "phase": params["phase"], "swapped": False,
                    "dropped_old": False, "site_version": site_version, "forced": [], "commands": [],
                    "database": None, "release_switched": None, "replaced_database": None, "pruned": [],
                    "restore_database": None, "dropped_leftovers": []}
    recorded_work(module, "db_restore", _summary)

    def fail(msg: str) -> None:
        result["duration"] = round(time.monotonic() - clock, 3)
        module.fail_json(msg=msg, **result)

    if not looks_like_site_dir(site_dir):
        fail(f"{site_dir} is not a site dir (no current and shared/ in it)")
    jobs = params["jobs"] if params["jobs"] is not None else default_jobs()
    if jobs < 1:
        fail(f"jobs must be 1 or more, got {jobs}")
    if params["keep_replaced"] < 0:
        fail(f"keep_replaced must be 0 or more, got {params['keep_replaced']}")
    keep = max(params["keep_replaced"], 1 if params["keep_old"] else 0)

    client = site_database(module, site_dir, fail)
    live = client.database
    result["database"] = live
    admin_db = params["maintenance_db"]
    if params["phase"] == "discard":
        with client:
            _discard(module, client, params["fresh"], result, fail)
        result.update(commands=client.commands, duration=round(time.monotonic() - clock, 3))
        module.exit_json(**result)
    if params["phase"] == "undo":
        with client:
            _undo(module, client, site_dir, site_version, keep, result, fail)
        result.update(commands=client.commands, duration=round(time.monotonic() - clock, 3))
        module.exit_json(**result)

    # Swapping a prepared database in reads the manifest again, without its checksums: they were checked
    # when it was prepared, minutes ago, under the same lock.
    try:
        path = db_backups.resolve_backup(site_dir, params["backup"])
        result["backup_path"] = path
        manifest = db_backups.read_manifest(path)
        result["backup_version"] = manifest.get("version")
        if params["phase"] != "swap":
            result["checked_files"] = db_backups.verify_files(path, manifest)
    except db_backups.BackupError as exc:
        if result.get("backup_path"):
            _record_damage(result["backup_path"], str(exc))
        fail(f"{exc}; nothing was changed")

    reasons = refusals(manifest, params["site"], site_dir, live, site_version)
    if reasons and not params["force"]:
        fail(f"refusing to restore {params['backup']}: {'; '.join(reasons)} (force=true overrides); "
             "nothing was changed")
    result["forced"] = reasons
    why_not, switch_to = release_plan(manifest.get("version"), site_version, site_dir,
                                      params["switch_release"] or params["force"])
    if why_not:
        fail(f"refusing to restore {params['backup']}: {why_not}; nothing was changed")
    result["release_switched"] = {"from": site_version, "to": switch_to} if switch_to else None

    raise_on_signals()
    when = db_replaced.stamp()
    fresh = params["fresh"] if params["phase"] == "swap" else db_replaced.fresh_name(live, when)
    old = db_replaced.replaced_name(live, when)
    result.update(restore_database=fresh, old_database=old)
    dump_dir = os.path.join(path, db_backups.DUMP_DIR)

    with client:
        live_exists = _check_database(client, live, fresh, old, params, dump_dir, result, fail, module)
        if params["phase"] == "swap":
            restore_argv = []
        else:
            restore_argv = [result.pop("_pg_restore"), *client.connection_args(), f"--jobs={jobs}", "--no-owner",
                            "--exit-on-error", "-d", client.dbname_arg(fresh), dump_dir]
        if module.check_mode:
            result.update(changed=True, commands=[restore_argv] if restore_argv else [],
                          duration=round(time.monotonic() - clock, 3))
            module.exit_json(**result)

        stage = "swap" if params["phase"] == "swap" else "create"
        try:
            if params["phase"] != "swap":
                result["dropped_leftovers"] = _drop_leftovers(client, live, admin_db, module)
                client.create_database_like(fresh, live if live_exists else None, maintenance_db=admin_db)
                stage = "restore"
                restored = client.run(restore_argv)
                if restored.rc != 0:
                    raise PostgresError(f"pg_restore failed (exit {restored.rc}): {restored.errors()}")
                if params["analyze"]:
                    stage = "analyze"
                    client.execute(["ANALYZE"], database=fresh)
                if params["phase"] == "prepare":
                    if controller_gone():
                        raise Interrupted("the controller went away while the database was prepared: no task "
                                          "will swap it in")
                    result.update(changed=True, commands=client.commands,
                                  duration=round(time.monotonic() - clock, 3))
                    module.exit_json(msg=f"prepared {fresh} from {params['backup']}; {live} is untouched", **result)
            stage = "swap"
            if live_exists:
                client.swap_databases(live, fresh, old, maintenance_db=admin_db)
            else:
                client.rename_database(fresh, live, maintenance_db=admin_db)
        except (PostgresError, Interrupted, OSError) as exc:
            result["commands"] = client.commands
            swapped = stage == "swap" and _swap_happened(client, fresh, old if live_exists else live, admin_db)
            if not swapped:
                if stage == "swap" and live_exists:
                    _allow_quietly(client, live, admin_db)
                cleanup = _drop_quietly(client, fresh, admin_db) if stage != "create" else ""
                fail(f"restore of {params['backup']} into {fresh} failed at {stage}: {exc}. "
                     f"The live database {live} was not changed{cleanup}")
            result["swapped"] = True  # interrupted after the swap committed: report what is now true
            fail(f"interrupted just after the swap: {live} now holds the backup"
                 + (f", the replaced database is {old} (kept)" if live_exists else ""))

        result.update(changed=True, swapped=True)
        if switch_to:
            _switch_release(site_dir, switch_to, params["backup"], fail)
        if not live_exists:
            result["old_database"] = None
        else:
            _keep_replaced(module, client, live, old, keep, admin_db, result,
                           db_replaced.replaced_info(params["operation_id"], params["backup"], site_version,
                                                     "restore"))

    result.update(commands=client.commands, duration=round(time.monotonic() - clock, 3))
    switched = result["release_switched"]
    said = f"restored {params['backup']} into {live}"
    module.exit_json(msg=said + (f" and switched the site from release {switched['from']} to {switched['to']}"
                                 if switched else ""), **result)


def _check_database(client: PgClient, live: str, fresh: str, old: str, params: dict, dump_dir: str, result: dict,
                    fail, module: AnsibleModule) -> bool:
    """Whether the live database exists, after every check that needs the server; `_pg_restore` in result."""
    admin_db = params["maintenance_db"]
    try:
        live_exists = client.database_exists(live, maintenance_db=admin_db)
        problem = (client.role_can_replace(live, maintenance_db=admin_db) if live_exists
                   else client.role_can_create(maintenance_db=admin_db))
        if not live_exists:
            module.warn(f"database {live} does not exist: the backup will be restored under that name")
        if problem:
            fail(f"cannot restore into {live}: {problem}; nothing was changed")
        if params["phase"] == "swap":
            if not client.database_exists(fresh, maintenance_db=admin_db):
                fail(f"the prepared database {fresh} does not exist: prepare it again; nothing was changed")
            return live_exists
        if client.database_exists(old, maintenance_db=admin_db):
            fail(f"database {old} already exists: another restore ran this second; nothing was changed")
        _check_room(client, live if live_exists else None, admin_db, result, fail,
                    db_backups.read_manifest(result["backup_path"]).get("database_bytes"))
        major = client.server_version_num(admin_db) // 10000
        manifest = db_backups.read_manifest(result["backup_path"])
        archive_version = str((manifest.get("dump") or {}).get("pg_dump_version") or "0")
        archive_major = int(archive_version.split(".", maxsplit=1)[0]) if archive_version[:1].isdigit() else 0
        pg_restore = find_binary("pg_restore", min_major=max(major, archive_major))
        listing = client.run([pg_restore, "--list", dump_dir], record=False)
        if listing.rc != 0:
            fail(f"backup {params['backup']}: pg_restore cannot read its table of contents: {listing.errors()}; "
                 "nothing was changed")
        result["_pg_restore"] = pg_restore
    except (PostgresError, db_backups.BackupError) as exc:
        fail(f"database {live}: {exc}; nothing was changed")
    return live_exists


def _check_room(client: PgClient, live: str | None, admin_db: str, result: dict, fail,
                backup_database_bytes: int | None) -> None:
    """Room first: the fresh database needs about the backed-up database's size (its manifest says, from
    0.3), or the live one's when larger or unknown, on the DB server; the replaced one is kept. Checked where
    the DB server runs on this host; elsewhere the result carries the estimate for the playbook to check."""
    live_size = int(client.query(f"SELECT pg_database_size({quote_literal(live)})",
                                 database=admin_db)[0][0]) if live else 0
    size = max(live_size, int(backup_database_bytes or 0))
    why = (f"a fresh database of about {room.human(size)} beside {live}, which is kept as the undo" if live
           else f"a fresh database of about {room.human(size)}")
    result["room"] = room.for_new_database(
        client, live, admin_db, size, "this restore", why,
        "free space there, or drop older replaced databases (keep_replaced 0 keeps none)")
    refused = result["room"].pop("refused", None)
    if refused:
        fail(refused)


def _drop_leftovers(client: PgClient, live: str, admin_db: str, module: AnsibleModule) -> list[str]:
    """Fresh databases an earlier restore left (killed before its swap): this run holds the site lock, so no
    other restore of the site is preparing one."""
    dropped = []
    for name in db_replaced.leftovers(client, live, admin_db):
        client.drop_database(name, maintenance_db=admin_db)
        module.warn(f"dropped {name}, left behind by an earlier restore that did not reach its swap")
        dropped.append(name)
    return dropped


def _keep_replaced(module: AnsibleModule, client: PgClient, live: str, old: str, keep: int, admin_db: str,
                   result: dict, info: dict) -> None:
    """The replaced database is the undo: noted, kept (keep 0: dropped), older ones beyond `keep` dropped, all
    only now that the swap succeeded."""
    try:
        if keep == 0:
            client.drop_database(old, maintenance_db=admin_db)
            result["dropped_old"] = True
            return
        db_replaced.note(client, old, info, admin_db)
        # The swap closed it to connections; kept, it may be read (what was written there, before an undo).
        client.allow_connections(old, True, maintenance_db=admin_db)
        result["replaced_database"] = old
        result["pruned"] = db_replaced.prune(client, live, keep, admin_db, spare=old)
    except PostgresError as exc:
        module.warn(f"the swap succeeded but keeping {old} (and pruning older replaced databases) did not: {exc}")


def _discard(module: AnsibleModule, client: PgClient, fresh: str, result: dict, fail) -> None:
    """Drop a database prepared for a swap that will not come (the run failed between the two)."""
    if fresh not in db_replaced.leftovers(client, client.database, module.params["maintenance_db"]):
        if client.database_exists(fresh, maintenance_db=module.params["maintenance_db"]):
            fail(f"{fresh} is not a database prepared for a restore of this site; nothing was changed")
        return
    result.update(restore_database=fresh, changed=True)
    if not module.check_mode:
        client.drop_database(fresh, maintenance_db=module.params["maintenance_db"])
        result["dropped_leftovers"] = [fresh]


def _undo(module: AnsibleModule, client: PgClient, site_dir: str, site_version: str | None, keep: int,
          result: dict, fail) -> None:
    """Swap the newest replaced database back in; the database it replaces is kept in its turn (an undo can
    be undone). The release it ran on comes back with it."""
    admin_db = module.params["maintenance_db"]
    live = client.database
    try:
        found = db_replaced.listed(client, live, admin_db)
        problem = client.role_can_replace(live, maintenance_db=admin_db)
    except PostgresError as exc:
        fail(f"database {live}: {exc}; nothing was changed")
    if not found:
        fail(f"{live} has no replaced database to put back (a restore or sync keeps one unless keep_replaced=0); "
             "nothing was changed")
    if problem:
        fail(f"cannot undo into {live}: {problem}; nothing was changed")
    back = found[0]
    release = back.get("release")
    switch_to = release if release and release != site_version else None
    if switch_to and switch_to not in site_releases.staged_versions(site_dir):
        fail(f"{back['name']} ran on release {switch_to}, which is no longer in "
             f"{site_releases.releases_root(site_dir)}: stage it first; nothing was changed")
    old = db_replaced.replaced_name(live, db_replaced.stamp())
    result.update(restore_database=back["name"], old_database=old, undone=back,
                  release_switched={"from": site_version, "to": switch_to} if switch_to else None)
    if module.check_mode:
        result["changed"] = True
        return
    raise_on_signals()
    try:
        client.allow_connections(back["name"], True, maintenance_db=admin_db)
        client.swap_databases(live, back["name"], old, maintenance_db=admin_db)
    except (PostgresError, Interrupted) as exc:
        if not _swap_happened(client, back["name"], old, admin_db):
            _allow_quietly(client, live, admin_db)
            try:
                client.allow_connections(back["name"], False, maintenance_db=admin_db)
            except PostgresError:
                pass
            fail(f"undo failed: {exc}. The live database {live} was not changed")
        result["swapped"] = True
        fail(f"interrupted just after the swap: {live} holds {back['name']}'s data again")
    result.update(changed=True, swapped=True)
    if switch_to:
        _switch_release(site_dir, switch_to, back["name"], fail)
    _keep_replaced(module, client, live, old, keep, admin_db, result,
                   db_replaced.replaced_info(module.params["operation_id"], None, site_version, "undo"))
    module.exit_json(msg=f"put {back['name']} back as {live} (replaced at {back['replaced_at']})", **result)


def _summary(result: dict) -> dict:
    return {k: result.get(k) for k in ("backup", "phase", "database", "swapped", "release_switched",
                                       "restore_database", "replaced_database")}


def _record_damage(folder: str, problem: str) -> None:
    """A refused backup is listed as damaged from now on (in check mode too: it changes no backup)."""
    try:
        db_backups.record_check(folder, problem, "restore")
    except OSError:
        pass  # the refusal itself is what matters


def _switch_release(site_dir: str, version: str, backup: str, fail) -> None:
    """``current`` to the backup's release, then the application restarted: the code matches the data."""
    try:
        link = site_releases.current_state(site_dir)["link"]
        site_releases.switch_current(site_dir, site_releases.link_text(site_dir, version, link))
        site_releases.touch(os.path.join(site_dir, site_releases.RESTART_FILE))
    except (OSError, site_releases.ReleaseError) as exc:
        fail(f"restored {backup} (its database is now live) but could not switch current to release {version}: "
             f"{exc}; switch it with fpt.sec.release_activate version={version} require_migrations=false")


def _swap_happened(client: PgClient, fresh: str, moved: str, admin_db: str) -> bool:
    """After an interrupted swap: the fresh name gone and ``moved`` (the old name, or the live name when there
    was no live database) present mean it committed."""
    try:
        return not client.database_exists(fresh, admin_db) and client.database_exists(moved, admin_db)
    except PostgresError:
        return False


def _allow_quietly(client: PgClient, name: str, admin_db: str) -> None:
    """A swap cut short may have left the live database refusing connections: let the site in again."""
    try:
        client.allow_connections(name, True, maintenance_db=admin_db)
    except PostgresError:
        pass


def _drop_quietly(client: PgClient, name: str, admin_db: str) -> str:
    """Drop the fresh database after a failure; returns the sentence to add to the error."""
    try:
        client.drop_database(name, maintenance_db=admin_db)
        return f"; the incomplete copy {name} was dropped"
    except PostgresError as exc:
        return f"; the incomplete copy {name} could not be dropped ({exc}): drop it by hand"


if __name__ == "__main__":
    main()
