"""Issue 26, restore drills: `sec drill SITE [BACKUP]` restores a backup into a scratch database on the DB
server, checks it (row counts recorded at backup time, schema, reads), records the outcome with the backup
and drops the scratch database, without touching the site."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import db_backups

from sec_wrapper import history
from sec_wrapper.sandbox.watch import VhostWatch
from tests.integration.conftest import kill_sec_when, process_alive, sec, site_by_name
from tests.integration.test_backup_restore import _connect, content, databases

pytestmark = pytest.mark.integration
STAGING = "staging.teststudio.com"


def drill_databases(site: dict) -> list[str]:
    return sorted(d for d in databases(site) if "_drill_" in d)


def backup_row(name: str) -> dict:
    return next(b for b in json.loads(sec("backups", STAGING, "--json").stdout) if b["name"] == name)


@pytest.fixture
def drilled_backups(sandbox: dict, cluster: str) -> Iterator[list[str]]:
    """Backups made for a test (the list it fills), removed afterwards; the site must be as found."""
    site = site_by_name(sandbox, STAGING)
    made: list[str] = []
    before = content(site)
    yield made
    for name in made:
        shutil.rmtree(Path(site["site_dir"], "db_backup", name), ignore_errors=True)
    assert content(site) == before and not drill_databases(site)


def backup(made: list[str], label: str, keep: int = 50) -> str:
    name = json.loads(sec("backup", STAGING, "--keep", str(keep), "--label", label, "--json").stdout)["name"]
    made.append(name)
    return name


def test_a_drill_proves_the_newest_backup_and_leaves_the_site_alone(sandbox: dict, drilled_backups: list[str]) -> None:
    site = site_by_name(sandbox, STAGING)
    name = backup(drilled_backups, "drill")
    manifest = db_backups.read_manifest(str(Path(site["site_dir"], "db_backup", name)))
    with _connect(site) as conn:
        events = conn.execute("SELECT count(*) FROM event_log_entries").fetchone()[0]
    # The read-back counted every table's rows as it streamed by.
    assert manifest["table_rows"]["public.event_log_entries"] == events
    assert manifest["database_bytes"] > 0
    listed_before = databases(site)
    with VhostWatch(sandbox["apache"]["port"], STAGING, poll=0.1) as watch:
        done = json.loads(sec("drill", STAGING, "--json").stdout)
    assert databases(site) == listed_before, "the list of databases is as it was"
    assert {code for _t, code, _v in watch.samples} == {200}, "the site served throughout, never in maintenance"
    assert done["passed"] is True and done["backup"] == name and done["reason"] is None, done
    assert done["tables"] == len(manifest["table_rows"]) and done["rows"] == sum(manifest["table_rows"].values())
    assert done["dropped"] and not drill_databases(site)
    row = backup_row(name)
    assert row["drill"].startswith("drilled ") and f"(restored in {done['recovery_seconds']} s)" in row["drill"]
    assert row["last_drill"]["state"] == "passed" and row["last_drill"]["operation_id"] == done["operation"]
    drills = [op for op in history.list_operations(site={STAGING}) if op["operation"] == "drill"]
    assert drills[0]["status"] == "successful" and drills[0]["id"] == done["operation"], drills[0]
    assert "drilled" in sec("backups", STAGING).stdout


def test_a_backup_whose_tables_do_not_hold_what_it_recorded_fails_its_drill(
        sandbox: dict, drilled_backups: list[str]) -> None:
    """A dump that lost rows on the way (a bug in a dump): the manifest's counts, sealed again, say more rows
    than the archive restores."""
    site = site_by_name(sandbox, STAGING)
    name = backup(drilled_backups, "drill-short")
    folder = str(Path(site["site_dir"], "db_backup", name))
    manifest = db_backups.read_manifest(folder)
    manifest.pop("manifest_sha256", None)
    recorded = manifest["table_rows"]["public.projects"]
    manifest["table_rows"]["public.projects"] = recorded + 1
    db_backups.write_manifest(folder, manifest)
    failed = sec("drill", STAGING, name, check=False)
    assert failed.returncode != 0
    reason = f"public.projects has {recorded} rows, the backup recorded {recorded + 1}"
    assert reason in failed.stderr.strip().splitlines()[-1], failed.stderr  # the last line says why
    assert backup_row(name)["drill"] == f"drill failed: {reason}"
    assert not drill_databases(site), "the scratch database is dropped on failure too"
    drills = [op for op in history.list_operations(site={STAGING}) if op["operation"] == "drill"]
    assert drills[0]["status"] == "failed", drills[0]


def test_a_drill_of_a_damaged_backup_fails_with_its_reason_and_marks_it(
        sandbox: dict, drilled_backups: list[str]) -> None:
    site = site_by_name(sandbox, STAGING)
    name = backup(drilled_backups, "drill-damaged")
    folder = Path(site["site_dir"], "db_backup", name)
    victim = max((p for p in (folder / "dump").iterdir() if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    failed = sec("drill", STAGING, name, check=False)
    assert failed.returncode != 0 and "sha256" in failed.stderr.strip().splitlines()[-1], failed.stderr
    row = backup_row(name)
    assert row["drill"].startswith("drill failed: ") and "sha256" in row["drill"], row
    assert row["state"] == "damaged", row
    assert not drill_databases(site)


def test_a_killed_drill_pins_its_backup_and_leaves_no_scratch_database(
        sandbox: dict, drilled_backups: list[str], tmp_path: Path) -> None:
    site = site_by_name(sandbox, STAGING)
    older = backup(drilled_backups, "drill-old")
    folder = Path(site["site_dir"], "db_backup", older)
    log = (tmp_path / "drill.log").open("w")
    process = subprocess.Popen(["sec", "drill", STAGING, older], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    pins: list[Path] = []

    def restoring() -> bool:
        pins[:] = list(folder.glob(".sec-reader-*"))
        return bool(drill_databases(site)) and bool(pins)

    kill_sec_when(process, restoring, 120, "the drill's restore", poll=0.02)
    reader = int(pins[0].name.rsplit("-", 1)[1])
    # The module goes on on the host, alone: it finishes, drops its scratch database and unpins the backup.
    deadline = time.monotonic() + 120
    while process_alive(reader) or drill_databases(site) or list(folder.glob(".sec-reader-*")):
        assert time.monotonic() < deadline, "the drill's work on the host never ended cleanly"
        time.sleep(0.2)
    assert db_backups.read_drill(str(folder))["state"] == "passed"


def test_retention_spares_a_backup_that_a_drill_reads(sandbox: dict, drilled_backups: list[str]) -> None:
    """A pin of a live reader (what a drill holds while it reads) keeps the backup out of every retention pass
    (db_backup's and upgrade's go through pinned_backups); a pin whose process is gone does not."""
    site = site_by_name(sandbox, STAGING)
    read_now = backup(drilled_backups, "drill-pinned")
    let_go = backup(drilled_backups, "drill-unpinned")
    root = Path(site["site_dir"], "db_backup")
    reader = subprocess.Popen(["sleep", "300"])
    try:
        db_backups.pin_for_reader(str(root / read_now), reader.pid)
        gone = subprocess.Popen(["true"])
        gone.wait()
        db_backups.pin_for_reader(str(root / let_go), gone.pid)
        pinned = db_backups.pinned_backups(site["site_dir"])
        assert read_now in pinned and let_go not in pinned, pinned
        listed = db_backups.list_backups(site["site_dir"])
        doomed = {b["name"] for b in db_backups.plan_retention(listed, 1, pinned=pinned)}
        assert read_now not in doomed and let_go in doomed, doomed
    finally:
        reader.kill()
        reader.wait()
