"""Issue 25: a restore prepares its fresh database while a staging site serves and keeps maintenance to the
swap; the database it replaces is kept and `--undo` puts it back exactly; production keeps maintenance for
the whole restore unless --short-window; a killed `sec` in preparation leaves the site on its old data and no
fresh database behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from sec_wrapper import history
from sec_wrapper.sandbox.watch import VhostWatch
from tests.integration.conftest import ROOT, kill_sec_when, process_alive, sec, site_by_name
from tests.integration.test_backup_restore import change_rows, content, databases

pytestmark = pytest.mark.integration
STAGING = "staging.teststudio.com"
PROD = "prod.teststudio.com"
PREPARE = "Restore the backup into a fresh database while the site serves"
IN_WINDOW = "Restore the backup into a fresh database and swap it in"


def _wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def task_span(op_id: str, task: str) -> tuple[float, float]:
    """(start, end) of a task of a recorded run, wall-clock, from its job events."""
    events = history.load_events(op_id)
    start = next(_wall(e["created"]) for e in events
                 if e["event"] == "playbook_on_task_start" and e["event_data"].get("task") == task)
    end = max(_wall(e["created"]) for e in events
              if e["event"] in ("runner_on_ok", "runner_on_failed") and e["event_data"].get("task") == task)
    return start, end


def codes_between(watch: VhostWatch, offset: float, span: tuple[float, float], margin: float = 0.2) -> list[int]:
    """The statuses the vhost answered strictly inside `span` (wall clock); `offset` maps monotonic to wall."""
    return [code for t, code, _v in watch.samples if span[0] + margin < t + offset < span[1] - margin]


def last_operation(site: str) -> str:
    return history.list_operations(site={site}, limit=1)[0]["id"]


@pytest.fixture(scope="module", autouse=True)
def sites_put_back(sandbox: dict, cluster: str) -> Iterator[None]:
    """The shared sandbox as found: both sites' data (restored from a backup made here if a test left it
    changed) and their backup folders' entries."""
    found = {}
    for name in (STAGING, PROD):
        site = site_by_name(sandbox, name)
        folder = Path(site["site_dir"], "db_backup")
        made = json.loads(sec("backup", name, "--keep", "0", "--label", "window-baseline", "--json").stdout)
        found[name] = (site, folder, set(os.listdir(folder)) - {made["name"]}, content(site), made["name"])
    yield
    for name, (site, folder, entries, data, baseline) in found.items():
        if content(site) != data:
            sec("restore", name, baseline, "--yes")
        for entry in set(os.listdir(folder)) - entries:
            shutil.rmtree(folder / entry, ignore_errors=True)
        assert content(site) == data and site_serving(sandbox, name)


@pytest.fixture
def staging_backup(sandbox: dict, cluster: str) -> str:
    made = json.loads(sec("backup", STAGING, "--keep", "50", "--label", "window-test", "--json").stdout)
    return made["name"]


def test_a_staging_restore_prepares_while_serving_and_undo_brings_back_exactly_what_it_replaced(
        sandbox: dict, staging_backup: str) -> None:
    site = site_by_name(sandbox, STAGING)
    change_rows(site)  # the live data now differs from the backup
    replaced = content(site)
    port = sandbox["state"]["apache"]["port"]
    offset = time.time() - time.monotonic()
    with VhostWatch(port, STAGING) as watch:
        done = json.loads(sec("restore", STAGING, staging_backup, "--json").stdout)
    op_id = done["operation"]
    serving = codes_between(watch, offset, task_span(op_id, PREPARE))
    assert len(serving) >= 3 and set(serving) == {200}, serving  # prepared while the site served
    assert {code for code, _version in watch.runs()} >= {200, 503}
    assert done["window_seconds"] is not None and done["replaced_database"].startswith(
        done["database"] + "_replaced_")
    assert content(site) != replaced and not [d for d in databases(site) if "_restore_" in d]
    (prepared,) = history.task_results(history.load_events(op_id), PREPARE).values()
    room = prepared["room"]  # the DB server runs on the sandbox's App server: its data directory was checked
    assert room["checked"] and room["free_bytes"] > room["needed_bytes"] > 0, room

    listed = json.loads(sec("backups", STAGING, "--json").stdout)
    kept = [row for row in listed if row.get("kind") == "replaced"]
    assert kept and kept[0]["name"] == done["replaced_database"] and kept[0]["operation"] == op_id

    undone = json.loads(sec("restore", STAGING, "--undo", "--json").stdout)
    assert undone["undone"]["name"] == done["replaced_database"]
    assert content(site) == replaced, "undo brings back exactly the replaced data"
    assert site_serving(sandbox, STAGING)
    refused = sec("restore", STAGING, staging_backup, "--undo", check=False)
    assert refused.returncode == 2 and "(not both)" in refused.stderr


def site_serving(sandbox: dict, name: str) -> bool:
    from tests.integration.conftest import http_get

    return http_get(sandbox, name)[0] == 200


def test_a_production_restore_keeps_maintenance_for_the_whole_restore(sandbox: dict, cluster: str) -> None:
    site = site_by_name(sandbox, PROD)
    made = json.loads(sec("backup", PROD, "--keep", "50", "--label", "window-test", "--json").stdout)
    plan = sec("restore", PROD, made["name"], "--plan").stdout
    assert "in maintenance  restore the backup into a fresh database" in plan
    short = sec("restore", PROD, made["name"], "--short-window", "--plan").stdout
    assert "serving         restore the backup into a fresh database" in short and "is lost" in short
    refused = sec("restore", PROD, made["name"], "--short-window", check=False)
    assert refused.returncode == 2 and "what users write while the restore is prepared is lost" in refused.stderr
    before = content(site)
    port = sandbox["state"]["apache"]["port"]
    offset = time.time() - time.monotonic()
    with VhostWatch(port, PROD) as watch:
        done = json.loads(sec("restore", PROD, made["name"], "--yes", "--json").stdout)
    during = codes_between(watch, offset, task_span(done["operation"], IN_WINDOW))
    assert during and set(during) == {503}, during  # in maintenance while the restore itself ran
    assert not [e for e in history.load_events(done["operation"])
                if e["event"] == "runner_on_ok" and e["event_data"].get("task") == PREPARE]
    assert content(site) == before  # the backup was of this very data
    assert site_serving(sandbox, PROD)


def test_a_killed_sec_in_preparation_leaves_the_old_data_serving_and_no_fresh_database(
        sandbox: dict, staging_backup: str, tmp_path: Path) -> None:
    site = site_by_name(sandbox, STAGING)
    change_rows(site)
    live = content(site)
    log = (tmp_path / "restore.log").open("w")
    process = subprocess.Popen(["sec", "restore", STAGING, staging_backup], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)

    def preparing() -> bool:  # the module has created the fresh database and restores into it
        return any("_restore_" in d for d in databases(site))

    kill_sec_when(process, preparing, 120, "the preparation", poll=0.02)
    lock = Path(site["site_dir"], "tmp/sec-operation.lock")

    def work_ended() -> bool:
        record = json.loads(lock.read_text()) if lock.exists() else {}
        pid = (record.get("work") or {}).get("pid")
        return not pid or not process_alive(pid)

    deadline = time.monotonic() + 120
    while not work_ended():
        assert time.monotonic() < deadline, "the work on the host never ended"
        time.sleep(0.2)
    assert content(site) == live, "the site serves its old data"
    assert site_serving(sandbox, STAGING)
    assert not [d for d in databases(site) if "_restore_" in d], "no fresh database behind"
    # The next operation takes the dead run's lock over and goes on.
    sec("restore", STAGING, staging_backup)
    assert site_serving(sandbox, STAGING)


def test_a_backup_that_would_not_fit_is_refused_up_front_on_a_small_file_system(sandbox: dict, cluster: str) -> None:
    """Room first: db_backup on a 2 MB tmpfs of its own cannot hold a dump of the staging database."""
    site = site_by_name(sandbox, STAGING)
    folder = Path(site["site_dir"], "db_backup")
    before = history.all_ids()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], check=True)
    try:
        refused = sec("backup", STAGING, check=False)
        assert refused.returncode != 0
        said = refused.stderr
        assert "db_backup has" in said and "free, this backup needs about" in said, said
        assert "nothing was changed" in said and "keep fewer backups" in said, said
        assert os.listdir(folder) == [], "nothing was written"
        assert site_serving(sandbox, STAGING)
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    assert len(history.all_ids()) == len(before) + 1  # recorded as a failed operation: it reached the host


def run_room(tmp_path: Path, args: dict, check: bool = False) -> dict:
    """fpt.sec.room run here as Ansible runs a module on a host."""
    module = ROOT / "collections/ansible_collections/fpt/sec/plugins/modules/room.py"
    args_file = tmp_path / "room-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    done = subprocess.run([sys.executable, str(module), str(args_file)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "collections")}, timeout=60)
    return json.loads(done.stdout)


def test_the_room_check_a_db_server_of_its_own_runs_measures_and_refuses_in_one_line(
        sandbox: dict, tmp_path: Path) -> None:
    """fpt.sec.room, which restore and sync-db run on a DB server that is not the App server: it finds the
    PostgreSQL data directory from the postmaster listening on the port, and refuses with both numbers."""
    postgres = json.loads((Path(sandbox["dir"]) / "state.json").read_text())["postgres"]
    found = run_room(tmp_path, {"postgres_port": postgres["port"], "needed_bytes": 1})
    assert found["checked"] and not found.get("failed"), found
    assert Path(found["path"]).resolve() == Path(postgres["data"]).resolve(), (found, postgres["data"])
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        for check in (True, False):
            refused = run_room(tmp_path, {"path": str(small), "needed_bytes": 64 * 1024 * 1024, "what": "this restore",
                                          "why": "a fresh database", "fix": "free space there"}, check=check)
            assert refused.get("failed") and "\n" not in refused["msg"], refused
            assert refused["msg"] == (f"{small} has 1.0 MB free, this restore needs about 64.0 MB (a fresh database):"
                                      " free space there; nothing was changed"), refused["msg"]
        assert os.listdir(small) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
    unknown = run_room(tmp_path, {"postgres_port": 1, "needed_bytes": 1})
    assert unknown["checked"] is False and not unknown.get("failed") and unknown["warnings"], unknown


def test_a_restore_that_runs_out_of_space_anyway_stops_cleanly(sandbox: dict, cluster: str) -> None:
    """Room first can still be wrong (another writer fills the disk meanwhile). Staging's database lives on a
    tablespace of its own, on a small tmpfs; the restore checks the room there, then a filler takes the free
    space as soon as the fresh database exists. The restore stops: the partial database dropped, the live
    one untouched and serving, and one line says what happened."""
    import pwd

    from sec_wrapper.sandbox.postgres import superuser
    from tests.integration.conftest import make_world_traversable_dir
    from tests.integration.test_backup_restore import _connect, _db

    site = site_by_name(sandbox, STAGING)
    live = _db(site)["database"]
    role = _db(site)["username"]
    postgres = json.loads((Path(sandbox["dir"]) / "state.json").read_text())["postgres"]
    with _connect(site) as conn:  # a bulk that makes pg_restore last seconds, so the filler lands mid-way
        conn.execute("CREATE TABLE sec_test_bulk AS SELECT g AS id, md5(g::text) || md5(random()::text) AS a,"
                     " md5(random()::text) AS b FROM generate_series(1, 400000) g")
    backup = json.loads(sec("backup", STAGING, "--keep", "50", "--label", "bulk", "--json").stdout)["name"]
    with _connect(site) as conn:
        before = content(site)
        live_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    mount = make_world_traversable_dir("sec-test-small-")
    size = int(live_bytes * 2.5) + 128 * 1024 * 1024  # the live database, and room for the estimate
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=755", "tmpfs", str(mount)], check=True)
    spc = mount / "ts"
    spc.mkdir()
    server_user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    if server_user:
        os.chown(spc, server_user.pw_uid, server_user.pw_gid)

    def move_to(tablespace: str) -> None:
        with superuser(postgres) as dba:
            for _ in range(50):
                dba.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (live,))
                try:
                    dba.execute(f'ALTER DATABASE "{live}" SET TABLESPACE {tablespace}')
                    return
                except psycopg.errors.ObjectInUse:
                    time.sleep(0.1)
            raise AssertionError(f"{live} stayed in use")

    filler = mount / "filler"
    with superuser(postgres) as dba:
        dba.execute(f"CREATE TABLESPACE sec_test_small LOCATION '{spc}'")
        dba.execute(f'GRANT CREATE ON TABLESPACE sec_test_small TO "{role}"')
    try:
        move_to("sec_test_small")
        process = subprocess.Popen(["sec", "restore", STAGING, backup], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline = time.monotonic() + 120
        while not any("_restore_" in d for d in databases(site)):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the restore never made its fresh database"
            time.sleep(0.01)
        for _ in range(20):  # whatever pg_restore takes meanwhile, the rest goes to the filler
            stat = os.statvfs(mount)
            if stat.f_bavail * stat.f_frsize < 1024 * 1024 or subprocess.run(
                    ["fallocate", "-l", str(stat.f_bavail * stat.f_frsize), str(filler)]).returncode == 0:
                break
        said = process.communicate(timeout=300)[0]
        assert process.returncode != 0, said
        # Where the space ran out decides PostgreSQL's words: a table's file, or the new database's relcache
        # file when the filler won the race before pg_restore's first connection.
        assert any(words in said for words in ("No space left on device", "could not extend file",
                                               "could not write init file")), said[-3000:]
        filler.unlink()
        assert not [d for d in databases(site) if "_restore_" in d], "the partial database was dropped"
        assert content(site) == before, "the live database is untouched"
        assert site_serving(sandbox, STAGING)
        record = history.list_operations(site={STAGING}, limit=1)[0]
        assert record["status"] == "failed", record
    finally:
        filler.unlink(missing_ok=True)
        move_to("pg_default")
        with superuser(postgres) as dba:
            dba.execute("DROP TABLESPACE IF EXISTS sec_test_small")
        subprocess.run(["umount", str(mount)], check=True)
        shutil.rmtree(mount, ignore_errors=True)
        with _connect(site) as conn:
            conn.execute("DROP TABLE IF EXISTS sec_test_bulk")
