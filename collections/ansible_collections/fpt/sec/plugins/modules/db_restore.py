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
    renamed C(<db>_old_<UTC time>) and the fresh one given the live name. The old database is dropped only
    after the swap succeeded, unless O(keep_old). When the live database does not exist at all (lost), the
    backup is restored under its name, with a warning.
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
        M(fpt.sec.db_backup) returns it and C(sec backups SITE) lists it.
    type: str
    required: true
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
      - Keep the replaced database as C(<db>_old_<UTC time>) instead of dropping it after the swap.
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

- name: Restore a backup taken on 8.1.0 into a site now on 8.0.0, keeping the replaced database
  fpt.sec.db_restore:
    site_dir: /var/rails/com_teststudio_prod
    backup: 20240601T120000Z_8.1.0
    force: true
    keep_old: true
"""

RETURN = r"""
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
  description: The fresh database the backup was restored into, which now carries the live name.
  returned: when the checks passed
  type: str
  sample: teststudio_prod_restore_20240502093000
old_database:
  description:
    - The name the replaced database got at the swap (dropped unless O(keep_old)). Null when there was no
      live database to replace.
  returned: when the checks passed
  type: str
  sample: teststudio_prod_old_20240502093000
swapped:
  description: Whether the restored database is now the live one.
  returned: always
  type: bool
  sample: true
dropped_old:
  description: Whether the replaced database was dropped.
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

from ansible_collections.fpt.sec.plugins.module_utils import db_backups, site_releases
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.postgres import (
    PgClient,
    PostgresError,
    default_jobs,
    derived_name,
    find_binary,
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
            "backup": {"type": "str", "required": True},
            "site": {"type": "str"},
            "force": {"type": "bool", "default": False},
            "switch_release": {"type": "bool", "default": False},
            "keep_old": {"type": "bool", "default": False},
            "jobs": {"type": "int"},
            "analyze": {"type": "bool", "default": True},
            "maintenance_db": {"type": "str", "default": "postgres"},
        },
        supports_check_mode=True,
    )
    params = module.params
    clock = time.monotonic()
    site_dir = os.path.abspath(params["site_dir"])
    site_version = read_running_version(site_dir)[0] if looks_like_site_dir(site_dir) else None
    result: dict = {"changed": False, "backup": params["backup"], "swapped": False, "dropped_old": False,
                    "site_version": site_version, "forced": [], "commands": [], "database": None,
                    "release_switched": None}
    recorded_work(module, "db_restore", _summary)

    def fail(msg: str) -> None:
        result["duration"] = round(time.monotonic() - clock, 3)
        module.fail_json(msg=msg, **result)

    if not looks_like_site_dir(site_dir):
        fail(f"{site_dir} is not a site dir (no current and shared/ in it)")
    jobs = params["jobs"] if params["jobs"] is not None else default_jobs()
    if jobs < 1:
        fail(f"jobs must be 1 or more, got {jobs}")

    # 1. The backup itself: its name, manifest and every checksum, before any connection.
    try:
        path = db_backups.resolve_backup(site_dir, params["backup"])
        result["backup_path"] = path
        manifest = db_backups.read_manifest(path)
        result["backup_version"] = manifest.get("version")
        checked = db_backups.verify_files(path, manifest)
    except db_backups.BackupError as exc:
        if result.get("backup_path"):
            _record_damage(result["backup_path"], str(exc))
        fail(f"{exc}; nothing was changed")
    result["checked_files"] = checked

    client = site_database(module, site_dir, fail)
    live = client.database
    result["database"] = live

    # 2. Is it this site's, and not from the future?
    reasons = refusals(manifest, params["site"], site_dir, live, site_version)
    if reasons and not params["force"]:
        fail(f"refusing to restore {params['backup']}: {'; '.join(reasons)} (force=true overrides); "
             "nothing was changed")
    result["forced"] = reasons
    # 2b. The code must match the restored schema: another version goes in only with its release.
    why_not, switch_to = release_plan(manifest.get("version"), site_version, site_dir,
                                      params["switch_release"] or params["force"])
    if why_not:
        fail(f"refusing to restore {params['backup']}: {why_not}; nothing was changed")
    result["release_switched"] = {"from": site_version, "to": switch_to} if switch_to else None

    # SIGTERM/SIGHUP while working raise Interrupted, so that the fresh database is dropped on the way out.
    raise_on_signals()

    stamp = db_backups.utc_now().strftime("%Y%m%d%H%M%S")
    fresh = derived_name(live, "_restore_" + stamp)
    old = derived_name(live, "_old_" + stamp)
    result.update(restore_database=fresh, old_database=old)
    dump_dir = os.path.join(path, db_backups.DUMP_DIR)
    admin_db = params["maintenance_db"]

    with client:
        # 3. The server: reachable, the role may do the swap, the names are free, the archive is readable.
        try:
            # Through the maintenance database: the live one may be the very thing that was lost.
            major = client.server_version_num(admin_db) // 10000
            archive_version = str((manifest.get("dump") or {}).get("pg_dump_version") or "0")
            archive_major = int(archive_version.split(".", maxsplit=1)[0]) if archive_version[:1].isdigit() else 0
            pg_restore = find_binary("pg_restore", min_major=max(major, archive_major))
            # A lost live database (dropped by mistake) is the disaster a restore is for: restore it under its
            # name. Otherwise the role must be able to swap it out.
            live_exists = client.database_exists(live, maintenance_db=admin_db)
            if live_exists:
                problem = client.role_can_replace(live, maintenance_db=admin_db)
            else:
                problem = client.role_can_create(maintenance_db=admin_db)
                result["old_database"] = old = None
                module.warn(f"database {live} does not exist: the backup will be restored under that name")
            if problem:
                fail(f"cannot restore into {live}: {problem}; nothing was changed")
            for name in (fresh, old):
                if name and client.database_exists(name, maintenance_db=admin_db):
                    fail(f"database {name} already exists: another restore is running or was left behind; "
                         "nothing was changed")
            listing = client.run([pg_restore, "--list", dump_dir], record=False)
            if listing.rc != 0:
                fail(f"backup {params['backup']}: pg_restore cannot read its table of contents: {listing.errors()}; "
                     "nothing was changed")
        except PostgresError as exc:
            fail(f"database {live}: {exc}; nothing was changed")

        restore_argv = [pg_restore, *client.connection_args(), f"--jobs={jobs}", "--no-owner",
                        "--exit-on-error", "-d", client.dbname_arg(fresh), dump_dir]
        if module.check_mode:
            result.update(changed=True, commands=[restore_argv], duration=round(time.monotonic() - clock, 3))
            module.exit_json(**result)

        # 4. Restore into the fresh database. Until the swap, the live database is not touched.
        stage = "create"
        try:
            client.create_database_like(fresh, live if live_exists else None, maintenance_db=admin_db)
            stage = "restore"
            restored = client.run(restore_argv)
            if restored.rc != 0:
                raise PostgresError(f"pg_restore failed (exit {restored.rc}): {restored.errors()}")
            if params["analyze"]:
                stage = "analyze"
                client.execute(["ANALYZE"], database=fresh)
            stage = "swap"
            if live_exists:
                client.swap_databases(live, fresh, old, maintenance_db=admin_db)
            else:
                client.rename_database(fresh, live, maintenance_db=admin_db)
        except (PostgresError, Interrupted, OSError) as exc:
            result["commands"] = client.commands
            swapped = stage == "swap" and _swap_happened(client, fresh, old or live, admin_db)
            if not swapped:
                if stage == "swap" and live_exists:
                    _allow_quietly(client, live, admin_db)
                cleanup = _drop_quietly(client, fresh, admin_db) if stage != "create" else ""
                fail(f"restore of {params['backup']} into {fresh} failed at {stage}: {exc}. "
                     f"The live database {live} was not changed{cleanup}")
            result["swapped"] = True  # interrupted after the swap committed: report what is now true
            fail(f"interrupted just after the swap: {live} now holds the backup"
                 + (f", the replaced database is {old} (kept)" if old else ""))

        result.update(changed=True, swapped=True)
        if switch_to:
            _switch_release(site_dir, switch_to, params["backup"], fail)
        # 5. The old database goes only now that the new one is live.
        if old is None:
            pass  # there was no live database to replace
        elif params["keep_old"]:
            try:
                client.allow_connections(old, True, maintenance_db=admin_db)
            except PostgresError as exc:
                module.warn(f"the replaced database {old} was kept but still refuses connections: {exc}")
        else:
            try:
                client.drop_database(old, maintenance_db=admin_db)
                result["dropped_old"] = True
            except PostgresError as exc:
                module.warn(f"the restore succeeded but the replaced database {old} could not be dropped: {exc}")

    result.update(commands=client.commands, duration=round(time.monotonic() - clock, 3))
    switched = result["release_switched"]
    said = f"restored {params['backup']} into {live}"
    module.exit_json(msg=said + (f" and switched the site from release {switched['from']} to {switched['to']}"
                                 if switched else ""), **result)


def _summary(result: dict) -> dict:
    return {k: result.get(k) for k in ("backup", "database", "swapped", "release_switched")}


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
