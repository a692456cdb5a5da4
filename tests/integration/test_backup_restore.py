"""Backup and restore of a site's database on the real sandbox, through the playbooks AWX runs and the
modules on their own. Every test leaves the site as it found it: serving, out of maintenance, unlocked,
with its data, and without the backups it made."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from ansible_collections.fpt.sec.plugins.module_utils import db_backups
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PgClient
from ansible_collections.fpt.sec.plugins.module_utils.table_rows import TableRowCounter

from tests.integration.conftest import (
    child_pids,
    http_get,
    kill_sec_when,
    process_alive,
    run_module,
    run_playbook,
    sandbox_inventory,
    sec,
    site_by_name,
    site_status,
)

pytestmark = pytest.mark.integration

SITE = "prod.teststudio.com"


# -- helpers ------------------------------------------------------------------------------------------------
def _db(site: dict) -> dict:
    return yaml.safe_load(Path(site["site_dir"], "shared/config/database.yml").read_text())["production"]


def _connect(site: dict, dbname: str | None = None) -> psycopg.Connection:
    db = _db(site)
    return psycopg.connect(host=db["host"], port=db["port"], user=db["username"], password=str(db["password"]),
                           dbname=dbname or db["database"], autocommit=True)


def content(site: dict) -> dict[str, str]:
    """Every table's rows (md5 in primary-key order, and count) and every sequence's position: computed here,
    independently of the code under test."""
    sums: dict[str, str] = {}
    with _connect(site) as conn:
        tables = conn.execute(
            "SELECT c.relname, (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum) FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = c.oid AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid ="
            " c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1").fetchall()
        for table, pk in tables:
            row = conn.execute(f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {pk or 't::text'}), '')),"
                               f" count(*) FROM public.{table} t").fetchone()
            sums[table] = f"{row[0]}:{row[1]}"
        for (seq,) in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'S' ORDER BY 1").fetchall():
            sums[f"seq:{seq}"] = str(conn.execute(f"SELECT last_value, is_called FROM public.{seq}").fetchone())
    return sums


def databases(site: dict) -> set[str]:
    with _connect(site, "postgres") as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")}


def change_rows(site: dict) -> None:
    """What a working day does: new events, trimmed events, edited shots."""
    with _connect(site) as conn:
        conn.execute("INSERT INTO event_log_entries (created_at, event_type, entity_type, entity_id, project_id,"
                     " user_id, description, meta) SELECT now(), 'Shotgun_Shot_Change', 'Shot', g, 1, 1,"
                     " 'after the backup', '{}'::jsonb FROM generate_series(1, 500) g")
        conn.execute("DELETE FROM event_log_entries WHERE id <= 300")
        conn.execute("UPDATE shots SET description = description || ' (edited)' WHERE id % 7 = 0")


def flat(text: str) -> str:
    """The output with its line wrapping undone (the YAML callback folds long messages)."""
    return " ".join(text.split())


def password_of(site: dict) -> str:
    return str(_db(site)["password"])


def assert_no_secret(site: dict, *texts: str) -> None:
    secret = password_of(site)
    for text in texts:
        assert secret not in text


def assert_serving_unlocked(sandbox: dict, site: dict, events: int | None = None,
                            live: dict | None = None) -> None:
    """The site answers 200 out of maintenance, unlocked, with no restore leftovers (and `live`'s content)."""
    if live is not None:
        assert content(site) == live
    status = site_status(sandbox, site["name"])  # 200 through the vhost, or it fails
    if events is not None:
        assert status["events"] == events
    assert not Path(site["site_dir"], "tmp/maintenance.html").exists()
    assert not Path(site["site_dir"], "tmp/sec-operation.lock").exists()
    leftovers = {d for d in databases(site) if "_restore_" in d}  # replaced databases are kept: the undo
    assert not leftovers


def our_backups(site: dict) -> list[str]:
    root = Path(site["site_dir"], "db_backup")
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())


def clone_backup(site: dict, name: str, new_name: str) -> Path:
    root = Path(site["site_dir"], "db_backup")
    shutil.copytree(root / name, root / new_name, symlinks=True)
    return root / new_name


def data_file_of(backup: Path, table: str) -> Path:
    """The dump file holding ``table``'s rows, from the archive's own table of contents."""
    listing = subprocess.run(["pg_restore", "-l", str(backup / "dump")], capture_output=True, text=True,
                             check=True).stdout
    for line in listing.splitlines():
        if " TABLE DATA public " in line and line.split()[-2] == table:
            return backup / "dump" / f"{line.split(';')[0].strip()}.dat.gz"
    raise AssertionError(f"no data for {table} in {backup}")


def rewrite_manifest_entry(backup: Path, rel: str) -> None:
    """Record the file's current size and checksum, as if it had always been so."""
    manifest = json.loads((backup / "manifest.json").read_text())
    data = (backup / rel).read_bytes()
    manifest["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (backup / "manifest.json").write_text(json.dumps(db_backups.seal(manifest), indent=2))


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(sandbox: dict) -> dict:
    return site_by_name(sandbox, SITE)


@pytest.fixture(scope="module")
def inventory(sandbox: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Module-scoped (the baseline fixture uses it), so not conftest's per-test `inventory`.
    return sandbox_inventory(sandbox, tmp_path_factory.mktemp("backup-inv") / "inventory.json")


@pytest.fixture(scope="module")
def baseline(sandbox: dict, site: dict, inventory: Path) -> Iterator[dict]:
    """The site's state before these tests, and a backup of it; put back at the end whatever happened."""
    root = Path(site["site_dir"], "db_backup")
    before_files = set(os.listdir(root))
    before = content(site)
    done = run_playbook("backup.yml", inventory, {"site": SITE, "keep": 50})
    assert done.returncode == 0, done.stdout + done.stderr
    assert_no_secret(site, done.stdout, done.stderr)
    name = our_backups(site)[-1]
    yield {"content": before, "backup": name, "events": site_status(sandbox, SITE)["events"]}

    # Teardown: the data as found (restored from the first backup if a test left it changed) ...
    Path(site["site_dir"], "tmp/maintenance.html").unlink(missing_ok=True)
    if content(site) != before:
        again = run_playbook("restore.yml", inventory, {"site": SITE, "backup": name})
        assert again.returncode == 0, again.stdout + again.stderr
    # ... and only the backup folder's original entries.
    for entry in set(os.listdir(root)) - before_files:
        shutil.rmtree(root / entry, ignore_errors=True)
    assert content(site) == before
    assert_serving_unlocked(sandbox, site)


# -- tests -----------------------------------------------------------------------------------------------------
def test_backup_writes_a_verified_backup_with_its_manifest(site: dict, baseline: dict) -> None:
    folder = Path(site["site_dir"], "db_backup", baseline["backup"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "sec-db-backup/1"
    assert manifest["site"] == SITE and manifest["database"] == _db(site)["database"]
    assert manifest["version"] == "8.0.0" and baseline["backup"].endswith("_8.0.0")
    assert manifest["dump"]["format"] == "directory" and manifest["dump"]["compression"] == "gzip:1"
    # A gzip archive of plain tables is read back from its data files; the counts are the ones the archive's
    # full pg_restore script holds.
    assert manifest["verified"]["toc"] and manifest["verified"]["checksums"]
    assert manifest["verified"]["data"] == "data files"
    script = TableRowCounter()
    with subprocess.Popen(["pg_restore", "--file", "-", str(folder / "dump")], stdout=subprocess.PIPE) as restore:
        while chunk := restore.stdout.read(1 << 20):
            script.feed(chunk)
    assert restore.returncode == 0
    assert manifest["table_rows"] == script.close() and manifest["table_rows"]["public.event_log_entries"] > 0
    assert manifest["size"] == sum(f["size"] for f in manifest["files"].values()) > 0
    for rel, entry in manifest["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == entry["sha256"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".partial-")]


def test_an_archive_with_large_objects_is_read_back_by_pg_restore(site: dict, inventory: Path,
                                                                  baseline: dict) -> None:
    """Large objects are not a table's data file: that archive's read-back is pg_restore's whole script."""
    with _connect(site) as conn:
        large_object = conn.execute("SELECT lo_from_bytea(0, 'a large object'::bytea)").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM event_log_entries").fetchone()[0]
    before = set(our_backups(site))
    try:
        done = run_playbook("backup.yml", inventory, {"site": SITE, "keep": 0, "label": "lo", "no_copy": True})
        assert done.returncode == 0, done.stdout + done.stderr
        (made,) = set(our_backups(site)) - before
        manifest = json.loads(Path(site["site_dir"], "db_backup", made, "manifest.json").read_text())
        assert manifest["verified"]["data"] == "pg_restore"
        assert manifest["table_rows"]["public.event_log_entries"] == events
    finally:
        with _connect(site) as conn:
            conn.execute("SELECT lo_unlink(%s)", (large_object,))
        for name in set(our_backups(site)) - before:
            shutil.rmtree(Path(site["site_dir"], "db_backup", name))


def test_the_password_travels_only_in_a_private_passfile(site: dict, baseline: dict) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = Path(tempfile.gettempdir(), f"sec-pgpass-{gone.pid}-killed")  # a killed run's passfile
    leftover.write_text("*:*:*:someone:secret\n")
    leftover.chmod(0o600)
    client = PgClient.for_site(site["site_dir"])
    with client:
        assert not leftover.exists()
        env = client.environment()
        passfile = Path(env["PGPASSFILE"])
        assert passfile.stat().st_mode & 0o777 == 0o600
        assert "PGPASSWORD" not in env
        result = client.psql(["SELECT 1"])
        assert result.rc == 0 and result.stdout.strip() == "1", result.stderr
        assert_no_secret(site, " ".join(result.argv), repr(client.describe()))
    assert not passfile.exists()
    folder = Path(site["site_dir"], "db_backup", baseline["backup"])
    assert_no_secret(site, (folder / "manifest.json").read_text())


def test_backup_then_restore_returns_the_exact_content(sandbox: dict, site: dict, inventory: Path,
                                                       baseline: dict) -> None:
    change_rows(site)
    changed = content(site)
    assert changed != baseline["content"]
    assert site_status(sandbox, SITE)["events"] == baseline["events"] + 200

    done = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert_no_secret(site, done.stdout, done.stderr)
    assert "Restored " + baseline["backup"] in flat(done.stdout)

    assert content(site) == baseline["content"]
    assert_serving_unlocked(sandbox, site, events=baseline["events"])


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_damaged_backup_is_refused_and_nothing_changes(sandbox: dict, site: dict, inventory: Path,
                                                         baseline: dict, damage: str) -> None:
    bad = clone_backup(site, baseline["backup"], f"20000101T000000Z_8.0.0_{damage}")
    victim = data_file_of(bad, "event_log_entries")
    data = bytearray(victim.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-100:]
    victim.write_bytes(bytes(data))
    change_rows(site)  # the live data differ from the backup: a wrongful restore would show
    live = content(site)
    try:
        done = run_playbook("restore.yml", inventory, {"site": SITE, "backup": bad.name})
        assert done.returncode != 0
        word = "corrupt" if damage == "flipped" else "truncated"
        assert f"dump/{victim.name} is {word}" in flat(done.stdout)
        assert "nothing was changed" in flat(done.stdout)
        assert "Put the site into maintenance" not in flat(done.stdout)  # stopped before touching the site
        assert_no_secret(site, done.stdout, done.stderr)
        assert_serving_unlocked(sandbox, site, events=baseline["events"] + 200, live=live)
    finally:
        shutil.rmtree(bad)
        back = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]})
        assert back.returncode == 0, back.stdout


def test_a_restore_whose_pg_restore_fails_leaves_the_old_data_serving(sandbox: dict, site: dict, inventory: Path,
                                                                      baseline: dict) -> None:
    # A backup whose checksums are right but whose data cannot be restored: a duplicated shot row, as a
    # damaged source database could have produced. COPY takes it; the primary key then cannot be built.
    bad = clone_backup(site, baseline["backup"], "20000101T000000Z_8.0.0_duplicate-pk")
    shots = data_file_of(bad, "shots")
    lines = gzip.decompress(shots.read_bytes()).decode().split("\n")
    shots.write_bytes(gzip.compress("\n".join([lines[0], *lines]).encode()))
    rewrite_manifest_entry(bad, f"dump/{shots.name}")
    change_rows(site)
    live = content(site)
    try:
        check, output = run_module(inventory, "db_restore",
                                   {"site_dir": site["site_dir"], "site": SITE, "backup": bad.name}, check=True)
        assert not check.get("failed"), check  # it passes every check that can be made beforehand

        done = run_playbook("restore.yml", inventory, {"site": SITE, "backup": bad.name})
        assert done.returncode != 0
        assert "failed at restore" in flat(done.stdout) and "shots_pkey" in flat(done.stdout)
        assert "The old database is still live and unchanged; the site is back in service" in flat(done.stdout)
        assert_no_secret(site, done.stdout, done.stderr, output)
        assert_serving_unlocked(sandbox, site, events=baseline["events"] + 200, live=live)
    finally:
        shutil.rmtree(bad)
        back = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]})
        assert back.returncode == 0, back.stdout


def test_a_session_the_site_may_not_end_fails_the_swap_clearly_and_the_old_data_serves(
        sandbox: dict, site: dict, inventory: Path, baseline: dict) -> None:
    """A DBA's superuser session on the live database: the site's role may not end it (nor an autovacuum
    worker, which the rename stops itself). The swap leaves it alone, retries, then says why."""
    from sec_wrapper.sandbox.postgres import superuser

    change_rows(site)
    live = content(site)
    postgres = json.loads((Path(sandbox["dir"]) / "state.json").read_text())["postgres"]
    with superuser(postgres, site["db_name"]) as dba:
        dba.execute("SELECT 1")
        done = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]})
        assert dba.execute("SELECT 1").fetchone() == (1,)  # never ended
    assert done.returncode != 0
    said = flat(done.stdout)
    assert "failed at swap" in said and "is being accessed by other users" in said, said[-2000:]
    assert "must be a superuser" not in said
    assert "The old database is still live and unchanged; the site is back in service" in said
    assert_serving_unlocked(sandbox, site, events=baseline["events"] + 200, live=live)
    back = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]})
    assert back.returncode == 0, back.stdout


def test_a_lost_database_is_restored_under_its_name(sandbox: dict, site: dict, inventory: Path,
                                                     baseline: dict) -> None:
    live = _db(site)["database"]
    lost = f"{live}_lost_by_test"
    with _connect(site, "postgres") as conn:  # "someone dropped it": moved aside, so the test can undo it
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (live,))
        conn.execute(f'ALTER DATABASE "{live}" RENAME TO "{lost}"')
    try:
        assert http_get(sandbox, SITE)[0] == 500  # the site's app cannot reach its database
        result, output = run_module(inventory, "db_restore",
                                    {"site_dir": site["site_dir"], "site": SITE, "backup": baseline["backup"]})
        assert not result["failed"], result
        assert result["swapped"] and result["old_database"] is None and not result["dropped_old"]
        assert "does not exist: the backup will be restored under that name" in flat(output)
        assert_no_secret(site, output)
        assert content(site) == baseline["content"]
        assert_serving_unlocked(sandbox, site, events=baseline["events"])
    finally:
        with _connect(site, "postgres") as conn:
            if live in databases(site):
                conn.execute(f'DROP DATABASE IF EXISTS "{lost}" WITH (FORCE)')
            else:
                conn.execute(f'ALTER DATABASE "{lost}" RENAME TO "{live}"')


def test_a_failing_dump_leaves_no_partial_folder(site: dict, inventory: Path, baseline: dict) -> None:
    before = sorted(os.listdir(Path(site["site_dir"], "db_backup")))
    with _connect(site) as conn:  # a table the site's own role may not read: pg_dump fails on it
        conn.execute("CREATE TABLE sec_test_unreadable (id int)")
        conn.execute("REVOKE SELECT ON sec_test_unreadable FROM CURRENT_USER")
    try:
        result, output = run_module(inventory, "db_backup", {"site_dir": site["site_dir"], "site": SITE})
    finally:
        with _connect(site) as conn:
            conn.execute("DROP TABLE sec_test_unreadable")
    assert result.get("failed") and "pg_dump failed" in result["msg"] and "nothing kept" in result["msg"]
    assert "permission denied" in result["msg"]
    assert sorted(os.listdir(Path(site["site_dir"], "db_backup"))) == before
    assert_no_secret(site, output)


def test_retention_keeps_the_newest_and_leaves_foreign_files(site: dict, inventory: Path, baseline: dict) -> None:
    root = Path(site["site_dir"], "db_backup")
    vendor = root / "vendor_dump_2019.sql.gz"
    vendor.write_bytes(gzip.compress(b"-- the vendor's own dump\n"))
    stale = root / ".partial-20000101T000000Z_8.0.0-999999"  # a killed backup whose process is gone
    (stale / "dump").mkdir(parents=True)
    made = []
    try:
        for _ in range(3):
            result, output = run_module(inventory, "db_backup",
                                        {"site_dir": site["site_dir"], "site": SITE, "keep": 2, "label": "ret"})
            assert result.get("changed") and result["verified"], result
            assert_no_secret(site, output, json.dumps(result["commands"]))
            made.append(result["name"])
        # Safety backups (before-restore, left by the restores above) have their own rule: not counted here.
        ours = [name for name in our_backups(site) if "_before-" not in name and "_pre-" not in name]
        assert ours == sorted(made[-2:])  # the baseline backup and the first new one went
        assert baseline["backup"] not in ours
        assert vendor.exists() and not stale.exists()
    finally:
        vendor.unlink(missing_ok=True)
        shutil.rmtree(stale, ignore_errors=True)
    # put the baseline backup back, for the tests that follow
    keep_name = made[-1]
    for name in ours:
        if name != keep_name:
            shutil.rmtree(root / name)
    os.rename(root / keep_name, root / baseline["backup"])


def test_retention_never_deletes_the_latest_safety_backup(site: dict, inventory: Path, baseline: dict) -> None:
    """Issue 16: the default keep of ordinary backups deleted the only pre-upgrade safety backup."""
    root = Path(site["site_dir"], "db_backup")
    made = []
    safety = run_module(inventory, "db_backup", {"site_dir": site["site_dir"], "site": SITE,
                                                 "label": "pre-upgrade-8.1.0", "keep": 0}).result
    assert safety.get("changed"), safety
    try:
        for _ in range(2):
            result = run_module(inventory, "db_backup", {"site_dir": site["site_dir"], "site": SITE, "keep": 1}).result
            assert result.get("changed"), result
            made.append(result["name"])
        ours = our_backups(site)
        assert safety["name"] in ours, "the only safety backup is not an ordinary backup to prune"
        assert made[-1] in ours and made[0] not in ours and baseline["backup"] not in ours
        assert safety["name"] not in result["removed"]
        listed = run_module(inventory, "db_backup_info", {"site_dir": site["site_dir"]}).result
        kinds = {b["name"]: b["kind"] for b in listed["backups"]}
        assert kinds[safety["name"]] == "safety" and kinds[made[-1]] == "ordinary"
    finally:
        shutil.rmtree(root / safety["name"], ignore_errors=True)
        for name in made[:-1]:
            shutil.rmtree(root / name, ignore_errors=True)
        if made and not (root / baseline["backup"]).exists():
            os.rename(root / made[-1], root / baseline["backup"])
        else:
            shutil.rmtree(root / made[-1], ignore_errors=True)


def test_check_mode_writes_nothing(site: dict, inventory: Path, baseline: dict) -> None:
    root = Path(site["site_dir"], "db_backup")
    before = sorted(os.listdir(root))
    result, output = run_module(inventory, "db_backup", {"site_dir": site["site_dir"], "site": SITE, "keep": 1},
                                check=True)
    assert result["changed"] and not result["verified"] and result["dump_bytes"] == 0
    assert result["path"].startswith(str(root) + "/") and result["compression"] == "gzip:1"
    # keep=1: all the existing ordinary ones would go; safety backups (before-restore) follow their own rule
    ordinary = {name for name in our_backups(site) if "_before-" not in name and "_pre-" not in name}
    assert set(result["removed"]) == ordinary
    assert_no_secret(site, output)

    live = content(site)
    dbs = databases(site)
    played = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]}, "--check")
    assert played.returncode == 0, played.stdout
    played_backup = run_playbook("backup.yml", inventory, {"site": SITE, "keep": 1}, "--check")
    assert played_backup.returncode == 0, played_backup.stdout
    assert "Would write" in flat(played_backup.stdout)
    assert sorted(os.listdir(root)) == before
    assert content(site) == live and databases(site) == dbs
    assert not Path(site["site_dir"], "tmp/maintenance.html").exists()
    assert not Path(site["site_dir"], "tmp/sec-operation.lock").exists()
    assert_no_secret(site, played.stdout, played.stderr, played_backup.stdout, played_backup.stderr)


def test_another_sites_backup_is_refused_unless_forced_and_a_newer_one_even_forced(site: dict, inventory: Path,
                                                                                  baseline: dict) -> None:
    args = {"site_dir": site["site_dir"], "site": SITE}
    for suffix, edit, expected, forcible in [
        ("newer", {"version": "9.0.0"}, "release 9.0.0 is not in", False),
        ("other", {"site": "staging.teststudio.com", "reverse_name": "com_teststudio_staging"},
         "backup of site staging.teststudio.com", True),
    ]:
        copy = clone_backup(site, baseline["backup"], f"20000101T000000Z_8.0.0_{suffix}")
        try:
            manifest = json.loads((copy / "manifest.json").read_text())
            manifest.update(edit)
            (copy / "manifest.json").write_text(json.dumps(db_backups.seal(manifest)))  # as if made so
            refused, _ = run_module(inventory, "db_restore", {**args, "backup": copy.name}, check=True)
            assert refused.get("failed") and expected in refused["msg"], refused["msg"]
            forced, _ = run_module(inventory, "db_restore", {**args, "backup": copy.name, "force": True}, check=True)
            if forcible:
                assert "force=true" in refused["msg"]
                assert not forced.get("failed") and expected in forced["forced"][0]
            else:
                # Another version's schema never goes under this code: force switches the release or refuses.
                assert forced.get("failed") and expected in forced["msg"] and "stage it" in forced["msg"]
        finally:
            shutil.rmtree(copy)


@pytest.mark.parametrize("name", ["../com_teststudio_staging/db_backup/x", "/etc", "..", ".partial-x-1"])
def test_only_a_backup_of_the_sites_own_folder_is_accepted(site: dict, inventory: Path, baseline: dict,
                                                           name: str) -> None:
    refused, _ = run_module(inventory, "db_restore", {"site_dir": site["site_dir"], "backup": name}, check=True)
    assert refused.get("failed")
    assert "not a path" in refused["msg"] or "not a complete backup" in refused["msg"]


def test_the_playbooks_check_their_inputs_first(sandbox: dict, inventory: Path, baseline: dict) -> None:
    done = run_playbook("restore.yml", inventory, {"site": SITE, "backup": "../../etc"})
    assert done.returncode != 0 and "not a path" in flat(done.stdout)
    done = run_playbook("restore.yml", inventory, {"site": SITE})
    assert done.returncode != 0 and "The extra var `backup` must be the folder name" in flat(done.stdout)
    done = run_playbook("backup.yml", inventory, {"site": SITE, "keep": "many"})
    assert done.returncode != 0 and "`keep` must be a whole number" in flat(done.stdout)
    done = run_playbook("backup.yml", inventory, {"site": "nosuch.teststudio.com"})
    assert done.returncode != 0 and "is not in this inventory" in flat(done.stdout)
    assert http_get(sandbox, SITE)[0] == 200


# -- a killed sec mid-restore -------------------------------------------------------------------------------------
def test_a_killed_sec_mid_restore_keeps_the_site_locked_and_the_history_tells_the_hosts_outcome(
        sandbox: dict, site: dict, inventory: Path, baseline: dict, cluster: str) -> None:
    """Issue 16: SIGKILL `sec restore` (and its ansible-playbook) while db_restore works on the App server. A
    DBA's session holds the swap off (it retries), so the remote work is certainly still running after the
    kill: another operation must be refused, and once the work ended the history must say what it did."""
    from sec_wrapper.sandbox.postgres import superuser

    change_rows(site)
    changed = content(site)
    lock = Path(site["site_dir"], "tmp/sec-operation.lock")
    postgres = json.loads((Path(sandbox["dir"]) / "state.json").read_text())["postgres"]
    db_name = site["db_name"]
    try:
        with superuser(postgres, db_name) as dba:
            dba.execute("SELECT 1")
            first = subprocess.Popen(["sec", "restore", SITE, baseline["backup"], "--yes"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            work: dict = {}

            def at_the_swap() -> bool:  # db_restore registered, its fresh database made, pg_restore done
                work.clear()
                work.update((json.loads(lock.read_text()).get("work") or {}) if lock.exists() else {})
                return (work.get("module") == "db_restore" and not child_pids(work["pid"])
                        and any(d.startswith(f"{db_name}_restore_") for d in databases(site)))

            kill_sec_when(first, at_the_swap, 120, "the restore's swap")
            assert process_alive(work["pid"]), "the remote restore outlives its killed controller"
            second = sec("backup", SITE, "--keep", "0", check=False, timeout=120)
            said = second.stderr.strip().splitlines()[-1]
            assert second.returncode != 0 and "still running" in said and "db_restore" in said, second.stderr
        # The DBA's session is gone: the swap goes through at its next attempt (or its retries ran out).
        deadline = time.monotonic() + 60
        while process_alive(work["pid"]):
            assert time.monotonic() < deadline, "the remote restore never ended"
            time.sleep(0.2)
        killed = next(op for op in json.loads(sec("ops", "list", "--site", SITE, "--json").stdout)
                      if op["operation"] == "restore")
        shown = json.loads(sec("ops", "show", killed["id"], "--json").stdout)
        assert shown["host_outcome"]["module"] == "db_restore", shown
        if content(site) == baseline["content"]:
            # The swap went through, but the run never reached its end (maintenance off, the lock's release).
            assert shown["status"] == "interrupted" and "db_restore completed on the App server" in shown["message"]
        else:
            assert content(site) == changed
            assert shown["status"] == "failed" and "db_restore failed on the App server" in shown["message"]
    finally:
        Path(site["site_dir"], "tmp/maintenance.html").unlink(missing_ok=True)
        if lock.exists():
            lock.unlink()
        if content(site) != baseline["content"]:
            again = run_playbook("restore.yml", inventory, {"site": SITE, "backup": baseline["backup"]})
            assert again.returncode == 0, again.stdout
