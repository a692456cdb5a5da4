#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_migrate
short_description: Apply staged releases' pending database migrations, release after release
version_added: "0.1.0"
description:
  - Runs on the App server that holds the site lock. Reads the migrations that each staged release
    C(<site_dir>/releases/<release>/) ships (C(db/migrate/<version>_<name>.sql)). It applies those whose
    version is not yet in the database's C(schema_migrations) table, in ascending version order.
  - Several releases (the steps of an upgrade path) are taken in the order given. Each release's pending
    migrations run before the next release's, so the database goes through every step exactly as it
    would with one call per release, in a single task.
  - Each migration runs in its own transaction together with the insertion of its C(schema_migrations)
    row (C(psql --single-transaction)). A migration is therefore either applied and recorded, or not
    applied at all. The first failure stops the run. The migrations before it stay applied and are
    reported.
  - With O(operation_id), the module checks before and during every migration that the site lock still
    belongs to that operation. If the controller that started it is gone (killed), or another operation
    took the lock over to recover the site, the running migration is cancelled and nothing more is
    applied. A rollback can then never race a migration left running by a dead upgrade.
extends_documentation_fragment:
  - fpt.sec.site
  - fpt.sec.site_database
options:
  release:
    description:
      - The staged release whose migrations to apply, for example V(8.2.0), or several in order, for
        example V([8.1.2, 8.2.0]).
    type: list
    elements: str
    required: true
  operation_id:
    description:
      - The operation that holds the site lock. When set, migrations stop as soon as the lock
        (C(<site_dir>/tmp/sec-operation.lock)) is no longer held by it.
    type: str
  writes_since:
    description:
      - The write counts M(fpt.sec.db_backup) returned as RV(fpt.sec.db_backup#module:write_counters). Before
        the first migration, the module ends the database's idle sessions (so that they report their counts)
        and returns in RV(writes_after_backup) the rows written since that backup, per table. It is what a
        rollback to that backup would discard. Use it only with the site in maintenance.
    type: dict
attributes:
  check_mode:
    support: full
    description: Connects, reads C(schema_migrations) and lists the pending migrations. Applies nothing.
  diff_mode:
    support: none
    description: Migrations have no meaningful diff.
notes:
  - Migrations that cannot run inside a transaction (C(CREATE INDEX CONCURRENTLY), C(VACUUM)) fail. Such
    a release needs its own procedure.
  - The C(schema_migrations) table must exist (a Rails site always has it).
seealso:
  - module: fpt.sec.release_stage
  - module: fpt.sec.release_activate
"""

EXAMPLES = r"""
- name: Which migrations would 8.2.0 apply?
  fpt.sec.db_migrate:
    site_dir: /var/rails/com_teststudio_prod
    release: 8.2.0
  check_mode: true
  register: pending

- name: Apply them, under the operation's lock
  fpt.sec.db_migrate:
    site_dir: "{{ sec_site.site_dir }}"
    release: 8.2.0
    operation_id: "{{ sec_operation_id }}"
  run_once: true
  register: migrated

- name: Go through two minors, 8.1.2's migrations first, then 8.2.0's
  fpt.sec.db_migrate:
    site_dir: /var/rails/com_teststudio_prod
    release: [8.1.2, 8.2.0]
"""

RETURN = r"""
release:
  description: The releases whose migrations were considered, in order.
  returned: always
  type: list
  elements: str
  sample: [8.1.2, 8.2.0]
steps:
  description: Per release, in order, the migrations it applied and still has pending, and their run time.
  returned: always
  type: list
  elements: dict
  sample: [{release: 8.1.2, applied: [20200601000000_add_shot_status.sql], pending: [], duration: 0.03},
           {release: 8.2.0, applied: [20201001000000_create_playlists.sql], pending: [], duration: 0.031}]
applied:
  description: The migrations applied by this run, in order, each with its release and run time in seconds.
  returned: always
  type: list
  elements: dict
  sample: [{release: 8.2.0, version: "20201001000000", name: create_playlists,
            file: 20201001000000_create_playlists.sql, duration: 0.031}]
pending:
  description:
    - The migrations still to apply after the run. In check mode, those that would be applied. After a
      failure, the failed one and those after it.
  returned: always
  type: list
  elements: str
  sample: [20201001000000_create_playlists.sql]
failed:
  description: The migration that failed and the server's error.
  returned: when a migration failed
  type: dict
  sample: {release: 8.3.0, file: 20990101000000_broken_migration.sql, error: "ERROR:  division by zero"}
applied_before:
  description: Every version in C(schema_migrations) before the run, sorted.
  returned: when the database could be read
  type: list
  elements: str
  sample: ["20200101000000", "20200601000000"]
schema_version:
  description: The highest version in C(schema_migrations) after the run.
  returned: when the database could be read
  type: str
  sample: "20201001000000"
writes_after_backup:
  description:
    - With O(writes_since), the rows written since the backup per table, read before the first migration
      (from PostgreSQL's statistics, so rows written just before the backup started may be counted too).
      Null when they could not be read.
  returned: when O(writes_since) was given and there were migrations to run
  type: dict
  sample: {public.projects: {inserted: 1, updated: 0, deleted: 0}}
unknown_applied:
  description: Versions in C(schema_migrations) that the release does not ship (a database ahead of it).
  returned: when the database could be read
  type: list
  elements: str
  sample: []
migrations_duration:
  description: Sum of the applied migrations' run times, in seconds.
  returned: always
  type: float
  sample: 0.062
database_size:
  description: Size of the database in bytes, as the server reports it.
  returned: when the database could be read
  type: int
  sample: 734003200
commands:
  description: The C(psql) commands run, as argument vectors. They carry no secret.
  returned: always
  type: list
  elements: list
"""

import os
import time

from ansible_collections.fpt.sec.plugins.module_utils import site_releases
from ansible_collections.fpt.sec.plugins.module_utils.db_migrations import Stopped, error_lines, run_watched, why_stop
from ansible_collections.fpt.sec.plugins.module_utils.postgres import (
    PostgresError,
    find_binary,
    quote_literal,
    writes_between,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_module import recorded_work, site_database, site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version


def load_steps(site_dir: str, releases: list[str]) -> list[dict]:
    """[{release, folder, migrations}] for each staged release, in the order given."""
    steps = []
    for text in releases:
        release = str(Version(text))
        folder = site_releases.release_dir(site_dir, release)
        if not os.path.isdir(folder):
            raise site_releases.ReleaseError(f"release {release} is not staged in {folder} "
                                             "(fpt.sec.release_stage first)")
        steps.append({"release": release, "folder": folder, "migrations": site_releases.migrations_of(folder)})
    return steps


def main() -> None:
    module = site_module(
        argument_spec={
            "release": {"type": "list", "elements": "str", "required": True},
            "operation_id": {"type": "str"},
            "writes_since": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    operation_id = params["operation_id"]
    result: dict = {"changed": False, "release": params["release"], "steps": [], "applied": [], "pending": [],
                    "migrations_duration": 0.0, "commands": []}
    if not params["release"]:
        module.fail_json(msg="release: give at least one version", **result)
    try:
        steps = load_steps(site_dir, params["release"])
    except (ValueError, site_releases.ReleaseError) as exc:
        module.fail_json(msg=str(exc), **result)
    result["release"] = [s["release"] for s in steps]

    client = site_database(module, site_dir, lambda msg: module.fail_json(msg=msg, **result))

    with client:
        try:
            rows = client.query(
                "SELECT 'v', version::text FROM schema_migrations"
                " UNION ALL SELECT 's', pg_database_size(current_database())::text"
                " UNION ALL SELECT 'n', current_setting('server_version_num')")
        except PostgresError as exc:
            hint = " (the database has no schema_migrations table)" if "schema_migrations" in str(exc) else ""
            module.fail_json(msg=f"cannot read the applied migrations of {client.database}{hint}: {exc}", **result)
        applied = sorted(r[1] for r in rows if r[0] == "v")
        server = next((int(r[1]) for r in rows if r[0] == "n"), 0)
        known = {m["version"] for step in steps for m in step["migrations"]}
        done = set(applied)
        # What each step will apply: its migrations not applied before it, by the database or an earlier step.
        plan = []
        for step in steps:
            pending = [m for m in step["migrations"] if m["version"] not in done]
            done.update(m["version"] for m in pending)
            plan.append((step, pending))
        queue = [(step["release"], m) for step, pending in plan for m in pending]
        result.update(
            applied_before=applied, database_size=next((int(r[1]) for r in rows if r[0] == "s"), None),
            unknown_applied=sorted(set(applied) - known), schema_version=schema_version(set(applied)),
            pending=[m["file"] for _release, m in queue],
            steps=[{"release": step["release"], "applied": [], "pending": [m["file"] for m in pending],
                    "duration": 0.0} for step, pending in plan])
        if module.check_mode or not queue:
            result["changed"] = bool(queue)
            module.exit_json(**result)
        # Owned on the host that holds the site lock: while psql runs, the lock names this process, and how
        # the migrations ended is recorded for the history even when the controller was killed (it then
        # stops at once: why_stop).
        if params["writes_since"] is not None:
            # Read before the first migration, the site in maintenance: what a rollback to the backup these
            # counts were taken with would discard (the migrations' own writes are not in it).
            try:
                result["writes_after_backup"] = writes_between(params["writes_since"],
                                                               client.write_counters(end_idle_sessions=True))
            except PostgresError as exc:
                result["writes_after_backup"] = None
                module.warn(f"could not count the writes made since the backup: {exc}")
        recorded_work(module, "db_migrate", ("applied", "pending", "schema_version"))

        psql = find_binary("psql")
        env = client.environment()
        env["PGAPPNAME"] = "sec db_migrate"
        # From PostgreSQL 14 the server itself notices a vanished client while a statement runs, so a
        # migration never outlives a psql we had to kill.
        preamble = ["-c", "SET client_connection_check_interval = 1000"] if server >= 140000 else []
        done = set(applied)
        by_release = {s["release"]: s for s in result["steps"]}
        for index, (release, migration) in enumerate(queue):
            remaining = [m["file"] for _r, m in queue[index:]]
            reason = why_stop(site_dir, operation_id)
            if reason:
                result["pending"] = remaining
                module.fail_json(msg=f"stopped before migration {migration['file']} of release {release}: "
                                     f"{reason}", **result)
            argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", *client.connection_args(),
                    "-d", client.dbname_arg(client.database), *preamble, "-f", migration["path"],
                    "-c", f"INSERT INTO schema_migrations (version) VALUES ({quote_literal(migration['version'])})"]
            result["commands"].append(argv)
            started = time.monotonic()
            try:
                rc, _out, err = run_watched(argv, env, site_dir, operation_id)
            except Stopped as exc:
                result["pending"] = remaining
                module.fail_json(msg=f"migration {migration['file']} of release {release} stopped: {exc} (its "
                                     "transaction was rolled back)", **result)
            except OSError as exc:
                module.fail_json(msg=f"cannot run {psql}: {exc}", **result)
            duration = round(time.monotonic() - started, 3)
            if rc != 0:
                result["pending"] = remaining
                result["failed"] = {"release": release, "file": migration["file"], "version": migration["version"],
                                    "error": error_lines(err, rc), "duration": duration}
                earlier = len(result["applied"])
                module.fail_json(
                    msg=f"migration {migration['file']} of release {release} failed (its transaction was rolled "
                        f"back): {error_lines(err, rc)}"
                        + (f" ({earlier} migration(s) before it in this run were applied)" if earlier else ""),
                    **result)
            done.add(migration["version"])
            entry = {"release": release, "version": migration["version"], "name": migration["name"],
                     "file": migration["file"], "duration": duration}
            result["changed"] = True
            result["applied"].append(entry)
            step = by_release[release]
            step["applied"].append(migration["file"])
            step["pending"].remove(migration["file"])
            step["duration"] = round(step["duration"] + duration, 3)
            result["migrations_duration"] = round(result["migrations_duration"] + duration, 3)
            result["pending"] = remaining[1:]
            result["schema_version"] = schema_version(done)
    module.exit_json(**result)


def schema_version(versions: set[str]) -> str | None:
    return max(versions, key=lambda v: (int(v), v)) if versions else None


if __name__ == "__main__":
    main()
