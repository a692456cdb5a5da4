#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_drill
short_description: Prove that a backup restores, in a scratch database, without touching the site
version_added: "0.3.0"
description:
  - A restore drill. Restores one of the site's backups into a scratch database C(<db>_drill_<UTC time>) on
    the site's DB server, checks it, records the outcome in the backup's folder (C(sec-drill.json)) and drops
    the scratch database, whatever happened.
  - The checks are that every file matches its checksum, that C(pg_restore) restores the whole archive,
    that every table holds the row count recorded when the backup was made (its read-back counted them),
    that the schema is the backup's version (every migration of that release applied, no other), and that
    the site's largest tables answer a read query.
  - The site is not touched, and no maintenance is needed. The restore runs at low priority
    (C(nice)/C(ionice)) beside the live site. The drill takes no site lock, so it may run beside other
    operations. The backup it reads is pinned meanwhile, so that no retention pass removes it.
  - Room first. The DB server must hold the scratch database (the backup's database size, with a margin)
    where the live database lives. Checked here when the DB server runs on this host, else returned for
    M(fpt.sec.room) to check on the DB server, as the playbook does.
  - A scratch database left by a drill whose process is gone (killed) is dropped by the next drill.
  - Check mode resolves the backup, checks its manifest and the room, and restores nothing.
author:
  - sec maintainers (!UNKNOWN)
extends_documentation_fragment:
  - fpt.sec.site
options:
  backup:
    description:
      - The backup's name, as C(db_backup_info) lists it. Default, the newest backup not known to be damaged.
    type: str
  jobs:
    description: Parallel C(pg_restore) jobs. Defaults to the number of CPUs, at most 4.
    type: int
  low_priority:
    description: Run C(pg_restore) under C(nice) and C(ionice), leaving the live site the machine first.
    type: bool
    default: true
  operation_id:
    description: The operation that runs the drill, kept in the drill's record.
    type: str
  maintenance_db:
    description: The database to connect to for creating and dropping the scratch database.
    type: str
    default: postgres
attributes:
  check_mode:
    support: full
    description: Resolves the backup, checks its manifest and the room, and restores nothing.
  diff_mode:
    support: none
    description: Nothing of the site changes.
"""

EXAMPLES = r"""
- name: Drill the newest backup
  fpt.sec.db_drill:
    site_dir: /var/rails/com_teststudio_prod
  register: drill

- name: Drill one backup
  fpt.sec.db_drill:
    site_dir: /var/rails/com_teststudio_prod
    backup: 20240501T120000Z_8.0.0
"""

RETURN = r"""
backup:
  description: The backup drilled.
  returned: when one was found
  type: str
  sample: 20240501T120000Z_8.0.0
passed:
  description: Whether every check passed.
  returned: when the drill ran
  type: bool
  sample: true
reason:
  description: Why the drill failed (one line), null when it passed.
  returned: when the drill ran
  type: str
  sample: "public.projects has 9 rows, the backup recorded 10"
scratch_database:
  description: The scratch database the backup was restored into (dropped since).
  returned: always
  type: str
  sample: teststudio_prod_drill_20240501120500
dropped:
  description: Whether the scratch database was dropped (always, unless the DB server stopped answering).
  returned: when the drill ran
  type: bool
  sample: true
restore_seconds:
  description: Time of the restore into the scratch database.
  returned: when the drill ran
  type: float
  sample: 41.2
checks_seconds:
  description: Time of the checks on the restored database.
  returned: when the drill ran
  type: float
  sample: 3.1
recovery_seconds:
  description: Restore plus checks, the time to get this backup back, rounded to a second.
  returned: when the drill ran
  type: int
  sample: 44
tables:
  description: Tables whose row counts were compared with the backup's.
  returned: when the drill ran
  type: int
  sample: 42
rows:
  description: Rows counted in them.
  returned: when the drill ran
  type: int
  sample: 2000000
room:
  description: The free space check for the scratch database (see C(db_restore)'s C(room)).
  returned: when the checks reached the database
  type: dict
  sample: {checked: true, path: /var/lib/postgresql/16/main, free_bytes: 52428800000, needed_bytes: 134217728}
dropped_leftovers:
  description: Scratch databases of earlier drills whose process was gone, dropped first.
  returned: when the drill ran
  type: list
  elements: str
  sample: []
"""

import json
import os
import re
import socket
import time

from ansible_collections.fpt.sec.plugins.module_utils import db_backups, db_replaced, room, site_releases
from ansible_collections.fpt.sec.plugins.module_utils.interrupt import Interrupted, raise_on_signals
from ansible_collections.fpt.sec.plugins.module_utils.postgres import (
    PgClient,
    PostgresError,
    default_jobs,
    find_binary,
    quote_ident,
    quote_literal,
)
from ansible_collections.fpt.sec.plugins.module_utils.priority import low_priority_prefix
from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive
from ansible_collections.fpt.sec.plugins.module_utils.site_model import looks_like_site_dir
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_database, site_module
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

# A table name as pg_restore's script writes it: schema.table, each part plain or double-quoted.
_PART = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_TABLE_RE = re.compile(rf"^{_PART}\.{_PART}$")
READ_TABLES = 5  # the largest tables each answer a read query


class DrillFailed(Exception):
    """A check failed: the backup does not restore as it should. ``str()`` is the reason, one line."""


def choose_backup(site_dir: str, name: str | None) -> str:
    """The backup's folder: the one named, else the newest one not known to be damaged."""
    if name:
        return db_backups.resolve_backup(site_dir, name)
    for entry in reversed(db_backups.list_backups(site_dir)):
        check = db_backups.read_check(entry["path"])
        if not (check and check["state"] == "damaged"):
            return entry["path"]
    raise db_backups.BackupError("the site has no backup to drill: take one first (sec backup)")


def drop_orphans(client: PgClient, live: str, admin_db: str) -> list[str]:
    """Scratch databases of earlier drills on this host whose process is gone: a kill left them."""
    dropped = []
    for entry in db_replaced.drill_databases(client, live, admin_db):
        info = entry["info"]
        pid = info.get("pid")
        if info.get("host") == socket.gethostname() and isinstance(pid, int) and pid_alive(pid):
            continue
        if info.get("host") not in (None, socket.gethostname()) and time.time() - float(info.get("started", 0)) < 86400:
            continue  # another App server's drill, maybe still running; a day later it is not
        client.drop_database(entry["name"], maintenance_db=admin_db)
        dropped.append(entry["name"])
    return dropped


def count_rows(client: PgClient, database: str, tables: list[str]) -> dict[str, int]:
    """Every table's row count in one session."""
    counts: dict[str, int] = {}
    for start in range(0, len(tables), 200):
        chunk = tables[start:start + 200]
        sql = " UNION ALL ".join(f"SELECT {quote_literal(t)}, count(*) FROM {t}" for t in chunk)
        for name, count in client.query(sql, database=database):
            counts[name] = int(count)
    return counts


def check_restored(client: PgClient, scratch: str, manifest: dict, site_dir: str, warn) -> dict:
    """The drill's checks on the restored scratch database; raises DrillFailed with the first reason."""
    expected = manifest.get("table_rows")
    summary = {"tables": 0, "rows": 0}
    if isinstance(expected, dict) and expected:
        tables = [t for t in expected if _TABLE_RE.match(t)]
        if len(tables) != len(expected):
            raise DrillFailed("the backup's manifest names a table in a form sec does not read")
        try:
            found = count_rows(client, scratch, tables)
        except PostgresError as exc:
            raise DrillFailed(f"the restored tables cannot be counted: {exc}") from None
        for table in tables:
            if found.get(table) != int(expected[table]):
                raise DrillFailed(f"{table} has {found.get(table)} rows, the backup recorded {expected[table]}")
        summary.update(tables=len(tables), rows=sum(found.values()))
    else:
        warn("the backup was made before sec recorded row counts: the tables were restored but not counted")
        summary["counts"] = "not recorded"
    version = manifest.get("version")
    folder = site_releases.release_dir(site_dir, str(version)) if version else None
    if folder and os.path.isdir(folder):
        shipped = {m["version"] for m in site_releases.migrations_of(folder)}
        try:
            applied = {row[0] for row in client.query("SELECT version::text FROM schema_migrations",
                                                      database=scratch)}
        except PostgresError as exc:
            raise DrillFailed(f"the restored database has no readable schema_migrations: {exc}") from None
        missing, extra = sorted(shipped - applied), sorted(applied - shipped)
        if missing or extra:
            raise DrillFailed(f"the schema is not release {version}'s: "
                              + "; ".join(p for p in (f"missing migrations {', '.join(missing[:3])}" if missing else "",
                                                      f"migrations {', '.join(extra[:3])} it does not ship"
                                                      if extra else "") if p))
        summary["schema"] = version
    else:
        warn(f"release {version} is not staged on this server: the schema version was not checked")
        summary["schema"] = None
    largest = sorted((expected or {}).items(), key=lambda item: -int(item[1]))[:READ_TABLES]
    for table, rows in largest:
        try:
            answered = client.query(f"SELECT 1 FROM (SELECT * FROM {table} LIMIT 5) AS sample", database=scratch)
        except PostgresError as exc:
            raise DrillFailed(f"{table} does not answer a read query: {exc}") from None
        if len(answered) != min(5, int(rows)):
            raise DrillFailed(f"{table} answered {len(answered)} rows to a read of 5")
    return summary


def main() -> None:
    module = site_module(
        argument_spec={
            "backup": {"type": "str"},
            "jobs": {"type": "int"},
            "low_priority": {"type": "bool", "default": True},
            "operation_id": {"type": "str"},
            "maintenance_db": {"type": "str", "default": "postgres"},
        },
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    if not looks_like_site_dir(site_dir):
        module.fail_json(msg=f"{site_dir} is not a site dir (no current and shared/ in it)")
    jobs = params["jobs"] if params["jobs"] is not None else default_jobs()
    if jobs < 1:
        module.fail_json(msg=f"jobs must be 1 or more, got {jobs}")
    client = site_database(module, site_dir)
    live, admin_db = client.database, params["maintenance_db"]
    result: dict = {"changed": False, "scratch_database": None}

    try:
        path = choose_backup(site_dir, params["backup"])
        manifest = db_backups.read_manifest(path)
    except db_backups.BackupError as exc:
        module.fail_json(msg=f"{exc}; nothing was changed", **result)
    result["backup"] = os.path.basename(path)
    scratch = db_replaced.drill_name(live, db_replaced.stamp())
    result["scratch_database"] = scratch

    with client:
        try:
            problem = client.role_can_create(maintenance_db=admin_db)
            if problem:
                module.fail_json(msg=f"cannot drill: {problem}; nothing was changed", **result)
            _room(client, live, admin_db, manifest, result)
        except PostgresError as exc:
            module.fail_json(msg=f"database {live}: {exc}; nothing was changed", **result)
        refused = result["room"].pop("refused", None)
        if refused:
            module.fail_json(msg=refused, **result)
        if module.check_mode:
            module.exit_json(msg=f"would restore {result['backup']} into {scratch}, check it and drop it", **result)
        result["changed"] = True  # a scratch database comes and goes; the backup's drill record changes
        raise_on_signals()
        pin = db_backups.pin_for_reader(path, os.getpid())
        clock = time.monotonic()
        stage = "checksums"
        try:
            result["dropped_leftovers"] = drop_orphans(client, live, admin_db)
            db_backups.verify_files(path, manifest)
            stage = "restore"
            client.create_database_like(scratch, live, maintenance_db=admin_db)
            note = json.dumps({"kind": "drill", "backup": result["backup"], "pid": os.getpid(),
                               "host": socket.gethostname(), "started": time.time(),
                               "operation_id": params["operation_id"]}, sort_keys=True)
            client.execute([f"COMMENT ON DATABASE {quote_ident(scratch)} IS {quote_literal(note)}"],
                           database=admin_db)
            prefix = low_priority_prefix() if params["low_priority"] else []
            archive_major = str((manifest.get("dump") or {}).get("pg_dump_version") or "0").split(".", 1)[0]
            pg_restore = find_binary("pg_restore", min_major=max(client.server_version_num(admin_db) // 10000,
                                                                 int(archive_major) if archive_major.isdigit() else 0))
            restored = client.run(prefix + [pg_restore, *client.connection_args(), f"--jobs={jobs}", "--no-owner",
                                            "--exit-on-error", "-d", client.dbname_arg(scratch),
                                            os.path.join(path, db_backups.DUMP_DIR)])
            if restored.rc != 0:
                raise DrillFailed(f"pg_restore failed (exit {restored.rc}): {restored.errors()}")
            result["restore_seconds"] = round(time.monotonic() - clock, 2)
            stage = "checks"
            checked_at = time.monotonic()
            result.update(check_restored(client, scratch, manifest, site_dir, module.warn))
            result["checks_seconds"] = round(time.monotonic() - checked_at, 2)
            result.update(passed=True, reason=None)
        except db_backups.BackupError as exc:
            db_backups.record_check(path, str(exc), "db_drill")
            result.update(passed=False, reason=str(exc))
        except DrillFailed as exc:
            result.update(passed=False, reason=str(exc))
        except (PostgresError, OSError) as exc:
            result.update(passed=False, reason=f"{stage}: {' '.join(str(exc).split())}")
        except Interrupted as exc:
            result.update(passed=False, reason=f"interrupted during the {stage} ({exc})")
        finally:
            result["recovery_seconds"] = int(round(time.monotonic() - clock))
            try:
                client.drop_database(scratch, maintenance_db=admin_db)
                result["dropped"] = True
            except PostgresError as exc:
                result["dropped"] = False
                module.warn(f"could not drop {scratch}: {exc}; the next drill drops it")
            try:
                os.unlink(pin)
            except OSError:
                pass
        record = {"state": "passed" if result["passed"] else "failed", "at": iso_utc(),
                  "recovery_seconds": result["recovery_seconds"], "restore_seconds": result.get("restore_seconds"),
                  "reason": result["reason"], "operation_id": params["operation_id"],
                  "tables": result.get("tables"), "rows": result.get("rows")}
        db_backups.record_drill(path, record)
        result["drill"] = db_backups.drill_words(record)
    if not result["passed"]:
        module.fail_json(msg=f"drill of {result['backup']} failed: {result['reason']}", **result)
    module.exit_json(msg=f"{result['backup']} {result['drill']}", **result)


def _room(client: PgClient, live: str, admin_db: str, manifest: dict, result: dict) -> None:
    """Room first, as for a restore, for the scratch database (made in the live one's tablespace)."""
    live_size = int(client.query(f"SELECT pg_database_size({quote_literal(live)})", database=admin_db)[0][0])
    size = int(manifest.get("database_bytes") or live_size)
    result["room"] = room.for_new_database(
        client, live, admin_db, size, "this drill", f"a scratch copy of about {room.human(size)} for the drill",
        "free space there, or drill on a DB server with room for a copy of the database")


if __name__ == "__main__":
    main()
