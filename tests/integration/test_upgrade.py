"""Releases and upgrades against a sandbox of their own (upgrades change a site's version for good, so the
shared session sandbox is left alone at 8.0.0): `sec releases`, `sec upgrade --plan`, a two-minor upgrade
watched from outside, a failing migration rolled back, and upgrades killed with SIGKILL in their window,
recovered by `sec maintenance off` and by the next `sec upgrade`.

The tests run in file order and build on each other's versions: staging 8.0.0 -> 8.2.0 -> (8.3.0 refused,
rolled back), production 8.0.0 -> (killed, rolled back) -> (killed, recovered) 8.3.0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml

from sec_wrapper.sandbox import Sandbox
from sec_wrapper.sandbox.releases import build_release
from sec_wrapper.sandbox.watch import VhostWatch, status
from tests.integration.conftest import (
    kill_sec_when,
    kill_tree,
    make_world_traversable_dir,
    run_playbook,
    sandbox_inventory,
    sec,
)
from tests.unit.test_releases import HOSTILE, hostile

pytestmark = pytest.mark.integration

PROD = "prod.teststudio.com"
STAGING = "staging.teststudio.com"
EVENTS = 5000
# Migrations by release, as the reference series ships them (sandbox/releases.py).
M812, M820, M830 = "20200601000000", "20201001000000", "20210301000000"


@dataclass
class World:
    home: Path
    env: dict[str, str]
    summary: dict
    state: dict

    @property
    def releases(self) -> Path:
        return self.home / "releases"

    def site(self, name: str) -> dict:
        return next(s for s in self.summary["sites"] if s["name"] == name)

    def site_dir(self, name: str) -> Path:
        return Path(self.site(name)["site_dir"])


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    home = make_world_traversable_dir("sec-test-upgrade-")
    env = {**os.environ, "SEC_HOME": str(home)}
    box = Sandbox(home / "sandbox")
    previous = os.environ.get("SEC_HOME")
    os.environ["SEC_HOME"] = str(home)  # Sandbox.up/down write their pointer into the data folder
    try:
        summary = box.up(events=EVENTS, media_files=4, version="8.0.0", releases_dir=home / "releases")
        world = World(home, env, summary, box.state())
    finally:
        _restore_env(previous)
    try:
        app = summary["app_server"]
        usec(world, "cluster", "create", "upg", "--app-server", app["address"], "--port", str(app["port"]),
             "--user", app["user"], "--key", app["key"])
        yield world
    finally:
        os.environ["SEC_HOME"] = str(home)
        try:
            box.down()
        finally:
            _restore_env(previous)
            shutil.rmtree(home, ignore_errors=True)


def _restore_env(previous: str | None) -> None:
    if previous is None:
        os.environ.pop("SEC_HOME", None)
    else:
        os.environ["SEC_HOME"] = previous


# -- helpers ------------------------------------------------------------------------------------------------
def usec(world: World, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real `sec` command on this module's data folder."""
    return sec(*args, check=check, timeout=timeout, env=world.env)


def get(world: World, site: str) -> tuple[int, str | None]:
    """(status, version) of GET /status through the real Apache vhost."""
    return status(world.state["apache"]["port"], site)


def watch(world: World, site: str) -> VhostWatch:
    """GETs the site's vhost every 50 ms in a thread while entered."""
    return VhostWatch(world.state["apache"]["port"], site)


def connect(world: World, site: str, autocommit: bool = True) -> psycopg.Connection:
    db = yaml.safe_load((world.site_dir(site) / "shared/config/database.yml").read_text())["production"]
    return psycopg.connect(host=db["host"], port=db["port"], user=db["username"], password=str(db["password"]),
                           dbname=db["database"], autocommit=autocommit, connect_timeout=10)


def applied(world: World, site: str) -> set[str]:
    with connect(world, site) as conn:
        return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def checksums(world: World, site: str) -> dict[str, str]:
    """Every table's rows (md5 in text order, and count), every sequence, every index name: computed here,
    independently of the code under test."""
    sums: dict[str, str] = {}
    with connect(world, site) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
        for (table,) in tables:
            row = conn.execute(f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')), count(*)"
                               f" FROM public.{table} t").fetchone()
            sums[table] = f"{row[0]}:{row[1]}"
        for (seq,) in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'S' ORDER BY 1").fetchall():
            sums[f"seq:{seq}"] = str(conn.execute(f"SELECT last_value, is_called FROM public.{seq}").fetchone())
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall()
        sums["indexes"] = ",".join(name for (name,) in indexes)
    return sums


def current_link(world: World, site: str) -> str:
    return os.readlink(world.site_dir(site) / "current")


def leftovers(world: World, site: str) -> list[str]:
    tmp = world.site_dir(site) / "tmp"
    return [n for n in ("maintenance.html", "sec-upgrade.json", "sec-operation.lock") if (tmp / n).exists()]


def stored_version(world: World, site: str) -> str:
    return json.loads(usec(world, "site", "show", site, "--json").stdout)["version"]


def operation_id(output: str) -> str:
    marker = "operation "
    return output.split(marker, 1)[1].split()[0].rstrip(")")


def kill_in_window(world: World, site: str, target: str, extra: tuple[str, ...] = ()) -> None:
    """Start `sec upgrade` and SIGKILL it (and ansible-playbook, its workers, ssh) while a migration runs.

    A transaction of ours holds a row lock on event_log_entries, so 8.3.0's CREATE INDEX waits for it in the
    middle of the window, after 8.1.2's and 8.2.0's migrations committed: the kill lands where it hurts.
    """
    blocker = connect(world, site, autocommit=False)
    blocker.execute("UPDATE event_log_entries SET description = description WHERE id = 1")
    def count(sql: str) -> int:
        # A new session each time: the window ends the site role's recently idle ones (db_migrate's
        # writes_since), as it would a monitoring script's.
        with connect(world, site) as monitor:
            return monitor.execute(sql).fetchone()[0]

    process = subprocess.Popen(["sec", "upgrade", site, "--to", target, *extra], env=world.env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            waiting = count("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                            " 'sec db_migrate' AND wait_event_type = 'Lock'")
            if waiting:
                break
            assert process.poll() is None, "the upgrade ended before its migration blocked"
            assert time.monotonic() < deadline, "the migration never started"
            time.sleep(0.1)
        assert get(world, site)[0] == 503
        # The lock names the migrating module's own process on the App server: no other operation takes the
        # site over while it runs, whatever happens to the controller.
        lock = json.loads((world.site_dir(site) / "tmp/sec-operation.lock").read_text())
        assert lock["work"]["module"] == "db_migrate" and Path(f"/proc/{lock['work']['pid']}").exists(), lock
        kill_tree(process.pid)
        process.wait(timeout=30)
        # The orphaned module notices that nobody reads its result any more and cancels its migration.
        deadline = time.monotonic() + 15
        while count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sec db_migrate'"):
            assert time.monotonic() < deadline, "the killed upgrade's migration kept running"
            time.sleep(0.1)
        # And it recorded there how it ended, for the history of a run whose controller was killed. The module
        # writes that record as it exits, a moment after its database session closed: wait for it.
        outcome_file = world.site_dir(site) / f"tmp/sec-outcomes/{lock['operation_id']}.json"
        deadline = time.monotonic() + 15
        while (step := json.loads(outcome_file.read_text())["steps"][-1])["state"] == "running":
            assert time.monotonic() < deadline, "the killed upgrade's migration never recorded how it ended"
            time.sleep(0.1)
        assert (step["module"], step["state"]) == ("db_migrate", "failed") and "controller" in step["msg"], step
    finally:
        if process.poll() is None:
            process.kill()
        blocker.rollback()
        blocker.close()


# -- releases -----------------------------------------------------------------------------------------------
def test_releases_list_and_add(world: World, tmp_path: Path) -> None:
    listed = json.loads(usec(world, "releases", "list", "--json").stdout)
    assert [r["version"] for r in listed][:3] == ["8.0.0", "8.0.1", "8.1.0"]
    assert {r["state"] for r in listed} == {"verified"}
    by_version = {r["version"]: r for r in listed}
    assert f"{PROD}@upg" in by_version["8.1.2"]["sites"] and by_version["8.0.0"]["sites"] == []
    assert f"{PROD}@upg" not in by_version["9.0.0"]["sites"] or "8.3.0" in by_version

    before = sorted(os.listdir(world.releases))
    for kind, words in HOSTILE:
        refused = usec(world, "releases", "add", str(hostile(tmp_path, "9.5.0", kind)), check=False)
        assert refused.returncode == 2 and "refused, nothing was added" in refused.stderr, refused.stderr
        assert words in refused.stderr
        (tmp_path / "shotgun-9.5.0.tar.gz").unlink()
    other = build_release(tmp_path / "other", "8.1.2", broken=True)
    refused = usec(world, "releases", "add", str(other), check=False)
    assert refused.returncode == 2 and "different content" in refused.stderr
    assert sorted(os.listdir(world.releases)) == before

    # A release dropped in by hand is listed as unverified until `releases add` has checked it.
    dropped = build_release(tmp_path / "new", "9.2.0")
    shutil.copy(dropped, world.releases / dropped.name)
    listed = {r["version"]: r for r in json.loads(usec(world, "releases", "list", "--json").stdout)}
    assert listed["9.2.0"]["state"] == "unverified"
    text = usec(world, "releases", "list").stdout
    assert "9.2.0" in text and "unverified" in text
    assert "already present" in usec(world, "releases", "add", str(dropped)).stdout
    listed = {r["version"]: r for r in json.loads(usec(world, "releases", "list", "--verify", "--json").stdout)}
    assert listed["9.2.0"]["state"] == "verified"


# -- the plan -----------------------------------------------------------------------------------------------
def test_plan_shows_the_path_and_changes_nothing(world: World, tmp_path: Path) -> None:
    out = usec(world, "upgrade", PROD, "--to", "8.2.0", "--plan").stdout
    for text in ("8.1.2", "20200601000000_add_shot_status.sql", "20201001000000_create_playlists.sql",
                 "outside maintenance", "inside maintenance", "pre-upgrade-8.2.0", "rolled back",
                 "warning: no staging site of cluster upg has reached 8.2.0"):
        assert text in out, out
    plan = json.loads(usec(world, "upgrade", PROD, "--to", "8.2.0", "--plan", "--json").stdout)
    assert [s["version"] for s in plan["steps"]] == ["8.1.2", "8.2.0"]

    away = tmp_path / "away"
    away.mkdir()
    for name in ("shotgun-8.2.0.tar.gz", "shotgun-8.2.0.tar.gz.sha256"):
        shutil.move(world.releases / name, away / name)
    try:
        missing = usec(world, "upgrade", PROD, "--to", "8.3.0", "--plan", check=False)
        assert missing.returncode == 2 and "add release 8.2.x (any patch)" in missing.stderr, missing.stderr
        # The playbook refuses the same path on its own, before it touches any host.
        inventory = sandbox_inventory(world.summary, tmp_path / "inventory.json")
        run = run_playbook("upgrade.yml", inventory, {"site": PROD, "to": "8.3.0", "releases_dir": str(world.releases)})
        assert run.returncode != 0 and "8.2.x" in run.stdout and "PLAY [Upgrade the site]" not in run.stdout
    finally:
        for name in os.listdir(away):
            shutil.move(away / name, world.releases / name)
    for target, words in (("8.2.5", "add release 8.2.5 to releases/"), ("8.0.0", "already at 8.0.0")):
        refused = usec(world, "upgrade", PROD, "--to", target, "--plan", check=False)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
    needs_yes = usec(world, "upgrade", PROD, "--to", "8.2.0", check=False)
    assert needs_yes.returncode == 2 and "--yes" in needs_yes.stderr
    assert get(world, PROD) == (200, "8.0.0") and stored_version(world, PROD) == "8.0.0"
    assert current_link(world, PROD) == "releases/8.0.0"


# -- the upgrade --------------------------------------------------------------------------------------------
def test_two_minor_upgrade_passes_each_minor_and_503s_only_in_its_window(world: World) -> None:
    before = applied(world, STAGING)
    with watch(world, STAGING) as poll:
        out = usec(world, "upgrade", STAGING, "--to", "8.2.0")
    # 200 on the old version, 503 during the window only, then 200 on the new one: nothing else, ever.
    assert poll.runs() == [(200, "8.0.0"), (503, None), (200, "8.2.0")], poll.runs()
    assert applied(world, STAGING) == before | {M812, M820}
    assert f"8.1.2: {M812}_add_shot_status.sql" in out.stdout and f"8.2.0: {M820}_create_playlists.sql" in out.stdout
    log = usec(world, "ops", "log", operation_id(out.stdout)).stdout
    assert f"8.1.2: {M812}_add_shot_status.sql; 8.2.0: {M820}_create_playlists.sql" in " ".join(log.split())
    assert stored_version(world, STAGING) == "8.2.0"
    assert current_link(world, STAGING) == "releases/8.2.0"
    assert sorted(os.listdir(world.site_dir(STAGING) / "releases")) == ["8.0.0", "8.1.2", "8.2.0"]
    assert leftovers(world, STAGING) == []
    window = json.loads(usec(world, "ops", "show", operation_id(out.stdout), "--json").stdout)
    assert window["status"] == "successful"
    print(f"\nwindow seen from outside: {poll.window()['seconds']} s")

    # Production can now follow, with an estimate from the staging rehearsal and no warning.
    plan = json.loads(usec(world, "upgrade", PROD, "--to", "8.2.0", "--plan", "--json").stdout)
    assert plan["estimate"]["site"] == STAGING and plan["estimate"]["source"] == "staging"
    assert plan["estimate"]["window"] > 0 and plan["warning"] is None


def test_a_failing_migration_ends_rolled_back_with_the_database_identical(world: World, tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    for name in ("shotgun-8.3.0.tar.gz", "shotgun-8.3.0.tar.gz.sha256"):
        shutil.copy(world.releases / name, good / name)
    build_release(world.releases, "8.3.0", broken=True)  # its last migration fails half-way
    try:
        before = checksums(world, STAGING)
        with watch(world, STAGING) as poll:
            failed = usec(world, "upgrade", STAGING, "--to", "8.3.0", check=False)
        message = " ".join(failed.stderr.split())
        assert failed.returncode == 2 and "failed and was rolled back" in message, message
        assert "division by zero" in message and "database restored from" in message
        assert poll.runs() == [(200, "8.2.0"), (503, None), (200, "8.2.0")], poll.runs()
        assert get(world, STAGING) == (200, "8.2.0")
        assert checksums(world, STAGING) == before
        assert current_link(world, STAGING) == "releases/8.2.0"
        assert leftovers(world, STAGING) == []
        assert stored_version(world, STAGING) == "8.2.0"
    finally:
        for name in os.listdir(good):
            shutil.copy(good / name, world.releases / name)


def test_killed_as_the_maintenance_page_appears_is_never_recorded_as_successful(world: World) -> None:
    """Issue 22 #3: sec SIGKILLed as the maintenance page appeared. The last module that ended on the App server
    was the backup; the record once settled on `successful` from it, for good."""
    page = world.site_dir(PROD) / "tmp" / "maintenance.html"
    process = subprocess.Popen(["sec", "upgrade", PROD, "--to", "8.3.0", "--yes", "--tested"], env=world.env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    kill_sec_when(process, page.exists, 300, "the window", poll=0.02)
    killed = next(op for op in json.loads(usec(world, "ops", "list", "--site", PROD, "--json").stdout)
                  if op["operation"] == "upgrade")
    deadline = time.monotonic() + 60
    while True:  # until the App server's remote work (if the migration had begun) has ended
        shown = json.loads(usec(world, "ops", "show", killed["id"], "--json").stdout)
        if shown["status"] != "running":
            break
        assert time.monotonic() < deadline, shown
        time.sleep(1)
    assert shown["status"] in ("interrupted", "failed"), shown
    assert "never reached its end" in shown["message"] or "killed on the App server too" in shown["message"], shown
    if shown["host_outcome"]["module"] == "db_backup":  # the kill landed before the migration: the case itself
        assert shown["status"] == "interrupted" and "db_backup completed" in shown["message"]
    listed = {op["id"]: op for op in json.loads(usec(world, "ops", "list", "--site", PROD, "--json").stdout)}
    assert listed[killed["id"]]["status"] == shown["status"], "settled for good, as the host said"

    out = usec(world, "maintenance", PROD, "off")
    assert "rolled back first" in " ".join(out.stdout.split())
    assert get(world, PROD) == (200, "8.0.0") and current_link(world, PROD) == "releases/8.0.0"
    assert leftovers(world, PROD) == []


def test_killed_in_the_window_then_maintenance_off_rolls_back(world: World) -> None:
    before = checksums(world, PROD)
    kill_in_window(world, PROD, "8.3.0", ("--yes", "--tested"))
    # Killed half-way: in maintenance, two minors' migrations committed, `current` never switched.
    assert get(world, PROD)[0] == 503
    assert {M812, M820} <= applied(world, PROD) and M830 not in applied(world, PROD)
    assert current_link(world, PROD) == "releases/8.0.0"
    assert "sec-upgrade.json" in leftovers(world, PROD)

    out = usec(world, "maintenance", PROD, "off")
    said = " ".join(out.stdout.split())
    assert "the upgrade 8.0.0 -> 8.3.0 interrupted in its maintenance window was rolled back first" in said
    assert "its database restored from the backup taken before it: the site runs 8.0.0" in said
    assert get(world, PROD) == (200, "8.0.0")
    assert checksums(world, PROD) == before
    assert current_link(world, PROD) == "releases/8.0.0"
    assert leftovers(world, PROD) == []


def test_killed_in_the_window_then_the_next_upgrade_recovers_and_goes_on(world: World) -> None:
    kill_in_window(world, PROD, "8.3.0", ("--yes", "--tested"))
    assert get(world, PROD)[0] == 503 and current_link(world, PROD) == "releases/8.0.0"

    with watch(world, PROD) as poll:
        out = usec(world, "upgrade", PROD, "--to", "8.3.0", "--yes", "--tested")
    assert "no staging site of cluster upg has reached 8.3.0" in out.stderr  # staging stayed on 8.2.0
    log = usec(world, "ops", "log", operation_id(out.stdout)).stdout
    assert "Switch every server back to 8.0.0" in log
    assert "Upgraded prod.teststudio.com from 8.0.0 to 8.3.0" in " ".join(log.split())
    assert poll.runs()[0][0] == 503 and poll.runs()[-1] == (200, "8.3.0")
    assert (200, "8.0.0") in poll.runs()  # the rollback served the old version again before the new window
    assert get(world, PROD) == (200, "8.3.0")
    assert {M812, M820, M830} <= applied(world, PROD)
    assert current_link(world, PROD) == "releases/8.3.0" and stored_version(world, PROD) == "8.3.0"
    assert leftovers(world, PROD) == []
