#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_backup
short_description: Back a site's database up into the site's backup folder, verified
version_added: "0.1.0"
description:
  - Runs on the App server. Dumps the site's PostgreSQL database, as C(<site_dir>/shared/config/database.yml)
    describes it, into C(<site_dir>/db_backup/<UTC start>_<site version>[_<label>]/).
  - Uses C(pg_dump --format=directory --jobs=N) with fast compression. V(auto) takes the fastest method this
    C(pg_dump) build has. That is C(zstd:1), else C(lz4) (both from PostgreSQL 16 on, when built in), else
    gzip level 1 (the only choice with a PostgreSQL 15 client).
  - The dump is written under a hidden temporary name (C(.partial-<name>-<pid>)). It is then verified. The
    checks are C(pg_restore --list) of the archive, a read-back of every table's data whole (the rows of
    every table are counted in it on the way, for restore drills), and the sha256 of every file, recorded
    in C(manifest.json) and read back.
  - The read-back decompresses each data file of a gzip (or uncompressed) archive in the module, its gzip
    checksum and length checked at the end, when the archive's data files and the TOC's C(TABLE DATA)
    entries match one to one. Otherwise (large objects, lz4 or zstd files) it is a full C(pg_restore) of
    the archive to a script that reads and decompresses every byte. The manifest's C(verified.data) says
    which one ran.
    Only then is the folder renamed to its final name. A failure, or an interruption the module can catch,
    removes the temporary folder. A folder under the final name is always a complete, verified backup.
  - The dump and its verification run under C(nice -n 10) and C(ionice -c3), where available, so that the
    live site keeps the CPU and disk it needs.
  - Room first, in check mode too. The dump is refused up front, naming both numbers, when C(db_backup)
    has less free space than the backup should need. The estimate is the last backup's size plus a quarter,
    else half the database's size, plus 64 MB.
  - After a successful backup, only the newest O(keep) ordinary backups and the newest O(keep_safety)
    safety backups are kept. The one just made is never removed. A safety backup is one whose label starts
    with C(before-) or C(pre-) (C(before-restore), C(pre-upgrade-9.1.0)). Taken before an operation
    overwrites the data, it is how that operation is undone, so ordinary backups never push it out and the
    latest one always stays. Temporary folders left by a killed backup, whose process is gone, are removed too.
    Other files in the backup folder (the vendor's own dumps) are never touched.
extends_documentation_fragment:
  - fpt.sec.site
  - fpt.sec.site_database
options:
  site:
    description:
      - The site's name (C(prod.teststudio.com)), recorded in the manifest so that a restore can refuse a
        backup of another site. Defaults to the name of O(site_dir).
    type: str
  keep:
    description:
      - How many ordinary backups to keep, newest first, counting the one just made. V(0) keeps them all,
        and then no safety backup is removed either.
    type: int
    default: 5
  keep_safety:
    description:
      - How many safety backups to keep, newest first, when retention runs (O(keep) above 0). The latest
        safety backup is always kept, whatever this says; V(0) keeps them all.
    type: int
    default: 3
  jobs:
    description:
      - Parallel C(pg_dump) jobs (one table each at a time). Defaults to the number of CPUs, at most 4.
    type: int
  compression:
    description:
      - V(auto), or a C(pg_dump) compression such as V(gzip:1), V(gzip:6), V(lz4), V(zstd:3), V(none), or a
        gzip level V(0) to V(9). lz4 and zstd need a PostgreSQL 16 or newer client.
    type: str
    default: auto
  label:
    description:
      - A short tag added to the folder name, for example V(before-upgrade). Letters, digits and C(. + -).
    type: str
  low_priority:
    description: Run the dump and its verification under C(nice -n 10) and C(ionice -c3).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description:
      - Connects to the database (proving the credentials), picks the compression and reports the folder it
        would write, the command it would run and what retention would remove. Writes nothing.
  diff_mode:
    support: none
    description: A backup has no meaningful diff.
notes:
  - The database's role needs only to read the site's tables. Restoring needs more (see M(fpt.sec.db_restore)).
  - The client tools are found on C(PATH), then in C(/usr/lib/postgresql/*/bin) (Debian, Ubuntu) or
    C(/usr/pgsql-*/bin) (RHEL), and must be at least as new as the server.
seealso:
  - module: fpt.sec.db_restore
"""

EXAMPLES = r"""
- name: Back the site's database up, keeping the 5 newest backups
  fpt.sec.db_backup:
    site_dir: "{{ sec_site.site_dir }}"
    site: "{{ sec_site.name }}"
  register: backup

- name: A labelled backup before an upgrade, keeping 10
  fpt.sec.db_backup:
    site_dir: /var/rails/com_teststudio_prod
    site: prod.teststudio.com
    label: before-upgrade
    keep: 10

- name: Smaller archive, slower backup
  fpt.sec.db_backup:
    site_dir: /var/rails/com_teststudio_prod
    compression: gzip:6
"""

RETURN = r"""
room:
  description: The free space checked before the dump, and what the backup was estimated to need.
  returned: when the database could be reached
  type: dict
  sample: {path: /var/rails/com_teststudio_prod/db_backup, free_bytes: 52428800000, needed_bytes: 134217728}
path:
  description: The backup's folder (in check mode, the folder it would write).
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/db_backup/20240501T120000Z_8.0.0
name:
  description: The backup's folder name, what M(fpt.sec.db_restore) takes as O(fpt.sec.db_restore#module:backup).
  returned: always
  type: str
  sample: 20240501T120000Z_8.0.0
dump_bytes:
  description:
    - Bytes of the dump files. Zero in check mode.
    - Not called C(size), which Ansible fills with the stat of RV(path)'s folder.
  returned: always
  type: int
  sample: 734003200
duration:
  description: Seconds from start to the verified, renamed backup.
  returned: always
  type: float
  sample: 41.7
verified:
  description: The archive was listed, fully read back and its checksums matched. False in check mode.
  returned: always
  type: bool
  sample: true
database:
  description: The database dumped.
  returned: always
  type: str
  sample: teststudio_prod
version:
  description: The site's version (the release C(current) points at), part of the name.
  returned: always
  type: str
  sample: 8.0.0
compression:
  description: The compression used (or that would be).
  returned: always
  type: str
  sample: gzip:1
jobs:
  description: Parallel pg_dump jobs.
  returned: always
  type: int
  sample: 4
pg_dump_version:
  description: The C(pg_dump) client's version.
  returned: always
  type: str
  sample: "15.18"
server_version:
  description: The server's version.
  returned: always
  type: str
  sample: "15.18"
commands:
  description:
    - The commands run, as argument vectors (in check mode, the dump command it would run). They carry no
      secret. The password reaches the tools through a temporary passfile.
  returned: always
  type: list
  elements: list
  sample:
    - [nice, -n, "10", ionice, -c3, /usr/bin/pg_dump, -h, 127.0.0.1, -p, "5432", -U, teststudio_prod, -w,
       --format=directory, --jobs=4, -Z, "1", --lock-wait-timeout=120000, --file,
       /var/rails/com_teststudio_prod/db_backup/.partial-20240501T120000Z_8.0.0-4242/dump, -d, teststudio_prod]
removed:
  description:
    - Backups removed by retention, oldest first (in check mode, those that would be), and temporary
      folders of killed backups.
  returned: always
  type: list
  elements: str
  sample: [20240401T120000Z_8.0.0]
write_counters:
  description:
    - Rows inserted, updated and deleted per table as PostgreSQL's statistics counted them just before the
      dump started, for M(fpt.sec.db_migrate)'s O(fpt.sec.db_migrate#module:writes_since). Null when unreadable.
  returned: success
  type: dict
  sample: {public.projects: [12, 30, 0]}
manifest:
  description: The manifest written, without its per-file list (see C(manifest.json) in the folder).
  returned: success, not in check mode
  type: dict
  sample:
    format: sec-db-backup/1
    site: prod.teststudio.com
    database: teststudio_prod
    version: 8.0.0
    started: "2024-05-01T12:00:00Z"
    ended: "2024-05-01T12:00:42Z"
    size: 734003200
    file_count: 112
"""

import os
import threading
import time

from ansible_collections.fpt.sec.plugins.module_utils import db_backups, room
from ansible_collections.fpt.sec.plugins.module_utils.durable import fsync_dir
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.postgres import (
    PgClient,
    PostgresError,
    binary_version,
    default_jobs,
)
from ansible_collections.fpt.sec.plugins.module_utils.priority import low_priority_prefix
from ansible_collections.fpt.sec.plugins.module_utils.site_model import (
    looks_like_site_dir,
    read_running_version,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_module import recorded_work, site_database, site_module
from ansible_collections.fpt.sec.plugins.module_utils.table_rows import (
    NotReadable,
    TableRowCounter,
    data_files_plan,
    read_data_files,
)


class BackupFailed(Exception):
    pass


def _hash_in_background(folder: str) -> tuple[threading.Thread, dict]:
    """Checksums computed while pg_restore reads the same files: two CPUs, one pass over the page cache."""
    box: dict = {}

    def work() -> None:
        try:
            box["files"] = db_backups.hash_dump(folder)
        except Exception as exc:  # reported by the caller after join()
            box["error"] = exc

    thread = threading.Thread(target=work, name="sec-sha256", daemon=True)
    thread.start()
    return thread, box


def dump_and_verify(client: PgClient, partial: str, dump_argv: list[str], pg_restore: str,
                    prefix: list[str]) -> tuple[dict, dict[str, int], str]:
    """Run pg_dump into ``partial``/dump and verify it; returns the per-file checksums, every table's
    row count (counted in the read-back) and how the data was read back: ``data files`` (each data file
    decompressed whole here, see table_rows) or ``pg_restore`` (the archive's full script, streamed)."""
    dump_dir = os.path.join(partial, db_backups.DUMP_DIR)
    names = _table_names(client)
    result = client.run(dump_argv)
    if result.rc != 0:
        raise BackupFailed(f"pg_dump failed (exit {result.rc}): {result.errors()}")
    listing = client.run([pg_restore, "--list", dump_dir])
    if listing.rc != 0 or "; Archive created at" not in listing.stdout:
        raise BackupFailed(f"the new archive cannot be listed by pg_restore: {listing.errors()}")
    thread, box = _hash_in_background(partial)
    table_rows: dict[str, int] | None = None
    read_back = "data files"
    # The names must not have changed during the dump (a migration's rename): the counts are keyed by them.
    plan = data_files_plan(dump_dir, listing.stdout, names) if names and _table_names(client) == names else None
    if plan is not None:
        if prefix:
            _lower_own_priority()
        try:
            table_rows = read_data_files(plan)
        except NotReadable:
            table_rows = None
        except (ValueError, OSError) as exc:
            thread.join()
            raise BackupFailed(f"the new archive does not read back in full: {exc}") from None
    if table_rows is None:
        read_back = "pg_restore"
        counter = TableRowCounter()
        full = client.stream(prefix + [pg_restore, "--file", "-", dump_dir], counter.feed)
        if full.rc != 0:
            thread.join()
            raise BackupFailed(f"the new archive does not read back in full (pg_restore of every table's data): "
                               f"{full.errors()}")
        try:
            table_rows = counter.close()
        except ValueError as exc:
            thread.join()
            raise BackupFailed(f"the new archive's read-back is cut short: {exc}") from None
    thread.join()
    if "error" in box:
        raise BackupFailed(f"cannot checksum the new archive: {box['error']}")
    return box["files"], table_rows, read_back


def _table_names(client: PgClient) -> dict[str, str]:
    """The catalog's table names by oid; empty when they cannot be read (the read-back then uses pg_restore)."""
    try:
        return client.table_names_by_oid()
    except PostgresError:
        return {}


def _lower_own_priority() -> None:
    """The read-back in this process runs at the priority the dump ran at (nice 10; the page cache serves
    most of its reads, so no ionice)."""
    try:
        os.nice(10)
    except OSError:
        pass


def main() -> None:
    module = site_module(
        argument_spec={
            "site": {"type": "str"},
            "keep": {"type": "int", "default": 5},
            "keep_safety": {"type": "int", "default": db_backups.DEFAULT_KEEP_SAFETY},
            "jobs": {"type": "int"},
            "compression": {"type": "str", "default": "auto"},
            "label": {"type": "str"},
            "low_priority": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    started_at = db_backups.utc_now()
    clock = time.monotonic()
    site_dir = os.path.abspath(params["site_dir"])
    if not looks_like_site_dir(site_dir):
        module.fail_json(msg=f"{site_dir} is not a site dir (no current and shared/ in it)")
    if params["keep"] < 0:
        module.fail_json(msg=f"keep must be 0 (keep all) or more, got {params['keep']}")
    if params["keep_safety"] < 0:
        module.fail_json(msg=f"keep_safety must be 0 (keep all) or more, got {params['keep_safety']}")
    jobs = params["jobs"] if params["jobs"] is not None else default_jobs()
    if jobs < 1:
        module.fail_json(msg=f"jobs must be 1 or more, got {jobs}")
    try:
        db_backups.check_label(params["label"])
    except db_backups.BackupError as exc:
        module.fail_json(msg=str(exc))
    site = params["site"] or os.path.basename(site_dir.rstrip("/"))
    version = read_running_version(site_dir)[0]
    root = db_backups.backup_root(site_dir)

    client = site_database(module, site_dir)

    result: dict = {"changed": False, "database": client.database, "version": version or "unknown",
                    "jobs": jobs, "removed": [], "dump_bytes": 0, "verified": False}
    # SIGTERM/SIGHUP while working raise Interrupted, so that the temporary folder is removed on the way out.
    raise_on_signals()
    recorded_work(module, "db_backup", ("name", "path", "dump_bytes", "removed"))

    with client:
        try:
            server = client.server_version_num()
            pg_dump = client.tool("pg_dump")
            pg_restore = client.tool("pg_restore")
            compression_args, compression = client.pg_dump_compression_args(pg_dump, params["compression"])
        except PostgresError as exc:
            module.fail_json(msg=f"database {client.database}: {exc}", **result)
        result.update(
            compression=compression,
            server_version=f"{server // 10000}.{server % 10000}",
            pg_dump_version="{}.{}".format(*binary_version(pg_dump)),
        )
        prefix = low_priority_prefix() if params["low_priority"] else []
        existing = db_backups.list_backups(site_dir)
        stale = db_backups.stale_partials(site_dir)
        name = db_backups.new_backup_name(root, started_at, version, params["label"])
        path = os.path.join(root, name)
        partial = os.path.join(root, db_backups.partial_name(name))
        dump_argv = prefix + [
            pg_dump, *client.connection_args(), "--format=directory", f"--jobs={jobs}", *compression_args,
            # Fail rather than wait for ever behind a migration's exclusive lock.
            "--lock-wait-timeout=120000",
            "--file", os.path.join(partial, db_backups.DUMP_DIR), "-d", client.dbname_arg(client.database),
        ]
        result.update(name=name, path=path)

        # Room first: refused up front, both numbers in the message, when db_backup cannot hold the dump.
        try:
            database_bytes = int(client.query("SELECT pg_database_size(current_database())")[0][0])
        except (PostgresError, IndexError, ValueError):
            database_bytes = None
        last = next((b.get("size") for b in reversed(existing) if b.get("size")), None)
        needed, why = room.backup_needs(last, database_bytes)
        free = room.free_bytes(root)
        result["room"] = {"path": root, "free_bytes": free, "needed_bytes": needed}
        refused = room.refusal(root, free, needed, "this backup", why,
                               "free space there, or keep fewer backups (keep, keep_safety)")
        if refused:
            module.fail_json(msg=refused, **result)

        if module.check_mode:
            planned = existing + [{"name": name, "started": db_backups.iso(started_at), "label": params["label"]}]
            doomed = db_backups.plan_retention(planned, params["keep"], just_made=name,
                                               pinned=db_backups.pinned_backups(site_dir),
                                               keep_safety=params["keep_safety"])
            result.update(changed=True, commands=[dump_argv], duration=round(time.monotonic() - clock, 3),
                          removed=[b["name"] for b in doomed] + [os.path.basename(p) for p in stale])
            module.exit_json(**result)

        try:
            os.makedirs(root, mode=0o750, exist_ok=True)
            os.mkdir(partial, 0o750)
        except OSError as exc:
            module.fail_json(msg=f"cannot create {partial}: {exc.strerror or exc}", **result)
        # Taken just before the dump: what a rollback to this backup would discard can be counted later
        # (db_migrate's writes_since). Read from the statistics, the site still serving: never fatal.
        try:
            result["write_counters"] = client.write_counters()
        except PostgresError:
            result["write_counters"] = None
        try:
            files, table_rows, read_back = dump_and_verify(client, partial, dump_argv, pg_restore, prefix)
            ended_at = db_backups.utc_now()
            size = sum(entry["size"] for entry in files.values())
            manifest = {
                "format": db_backups.FORMAT,
                "name": name,
                "site": site,
                "reverse_name": os.path.basename(site_dir.rstrip("/")),
                "site_dir": site_dir,
                "database": client.database,
                "db_host": client.host,
                "db_port": client.port,
                "version": version,
                "label": params["label"],
                "started": db_backups.iso(started_at),
                "ended": db_backups.iso(ended_at),
                "duration": round(time.monotonic() - clock, 3),
                "size": size,
                # The database's size when the dump began: what a restore of it needs on the DB server.
                "database_bytes": database_bytes,
                "file_count": len(files),
                # Rows per table, counted in the read-back: what a restore drill checks the restored tables by.
                "table_rows": table_rows,
                "dump": {"tool": "pg_dump", "pg_dump_version": result["pg_dump_version"],
                         "server_version": result["server_version"], "format": "directory", "jobs": jobs,
                         "compression": compression},
                # data: every table's data read back whole, by pg_restore or from the data files here.
                "verified": {"toc": True, "data": read_back, "checksums": True, "at": db_backups.iso(ended_at)},
                "files": files,
            }
            db_backups.write_manifest(partial, manifest)
            # The manifest read back as a restore will read it. The checksums in it were taken from the files
            # on disk, while pg_restore read them: hashing them all a second time would prove nothing more.
            if db_backups.read_manifest(partial).get("files") != files:
                raise BackupFailed("the manifest written does not read back as written")
            os.rename(partial, path)
            fsync_dir(root)
        except (BackupFailed, PostgresError, db_backups.BackupError, OSError, Interrupted) as exc:
            db_backups.remove_tree(partial)
            result["commands"] = client.commands
            module.fail_json(msg=f"backup of {client.database} failed, nothing kept: {exc}", **result)
        except BaseException:
            db_backups.remove_tree(partial)
            raise

    result.update(changed=True, dump_bytes=size, verified=True, commands=client.commands,
                  manifest={k: v for k, v in manifest.items() if k != "files"})
    # Retention only after a verified backup exists: a failed run never costs an old backup.
    removed: list[str] = []
    warnings: list[str] = []
    for doomed in db_backups.plan_retention(db_backups.list_backups(site_dir), params["keep"], just_made=name,
                                            pinned=db_backups.pinned_backups(site_dir),
                                            keep_safety=params["keep_safety"]):
        if db_backups.is_pinned(doomed["path"]):
            continue  # pinned since the pins were read: the pin wins
        try:
            db_backups.remove_tree(doomed["path"])
            removed.append(doomed["name"])
        except OSError as exc:
            warnings.append(f"could not remove old backup {doomed['name']}: {exc}")
    for leftover in stale:
        try:
            db_backups.remove_tree(leftover)
            removed.append(os.path.basename(leftover))
        except OSError as exc:
            warnings.append(f"could not remove {leftover}: {exc}")
    for warning in warnings:
        module.warn(warning)
    result.update(removed=removed, duration=round(time.monotonic() - clock, 3))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
