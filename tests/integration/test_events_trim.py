"""fpt.sec.events_trim and playbooks/trim_events.yml on the sandbox's staging site.

Every test starts from the staging site's 20k events and puts them back afterwards (from a byte-exact copy
taken before), so that other tests see the sandbox as it was. Rows are compared as the raw CSV records
PostgreSQL's COPY writes with the module's session settings, so NULL and '' and every digit of a timestamp
count.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psycopg
import pytest
from ansible_collections.fpt.sec.plugins.module_utils.site_model import read_database_config, read_database_password
from ansible_collections.fpt.sec.plugins.modules import events_trim

from tests.integration.conftest import (
    Console,
    kill_sec_when,
    process_alive,
    run_playbook,
    sandbox_inventory,
    sec,
    site_by_name,
    site_status,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "collections/ansible_collections/fpt/sec/plugins/modules/events_trim.py"
STAGING = "staging.teststudio.com"
HEADER = (b"id,created_at,event_type,entity_type,entity_id,project_id,user_id,attribute_name,description,"
          b"meta\n")


# -- reading the database and the archives, independently of the module -----------------------------------
def connect(site: dict) -> psycopg.Connection:
    db = read_database_config(site["site_dir"])
    conn = psycopg.connect(host=db["host"], port=db["port"], dbname=db["name"], user=db["user"],
                           password=read_database_password(site["site_dir"]), autocommit=True)
    # The module's session settings: COPY then writes the same bytes for the same rows.
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET DateStyle = 'ISO, YMD'")
    conn.execute("SET extra_float_digits = 3")
    return conn


def copy_out(conn: psycopg.Connection, query: str) -> bytes:
    out = bytearray()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)


def split_records(data: bytes) -> dict[int, bytes]:
    """{id: raw CSV record} from COPY's CSV output; a record spans lines while a quote is open."""
    records: dict[int, bytes] = {}
    pending = b""
    for line in data.splitlines(keepends=True):
        pending += line
        if pending.count(b'"') % 2 == 0:
            record_id = int(pending.split(b",", 1)[0])
            assert record_id not in records, f"id {record_id} twice"
            records[record_id] = pending
            pending = b""
    assert pending == b"", "CSV ends inside a quoted field"
    return records


def created_at(record: bytes) -> datetime.datetime:
    return datetime.datetime.fromisoformat(record.split(b",", 2)[1].decode())


def archives(site: dict) -> list[Path]:
    return sorted(Path(site["site_dir"]).glob("events_trim_*.csv.gz"))


def archived_records(site: dict) -> dict[int, bytes]:
    """Every record of every archive of the site, failing on a duplicate id across or within files."""
    merged: dict[int, bytes] = {}
    for path in archives(site):
        data = gzip.decompress(path.read_bytes())  # any gzip reader must see one plain CSV
        assert data.startswith(HEADER), f"{path.name} does not start with the header"
        for record_id, record in split_records(data[len(HEADER):]).items():
            assert record_id not in merged, f"id {record_id} archived twice ({path.name})"
            merged[record_id] = record
    return merged


def batch_members(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for m in events_trim.scan_archive(str(path)).members if m.meta.get("kind") == "batch")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def trim_sessions(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT pid, state, backend_xid::text FROM pg_stat_activity"
                        " WHERE application_name = 'sec events_trim' AND datname = current_database()").fetchall()


# -- running the module as Ansible would, in a process that can be killed -------------------------------------
def module_argv(tmp_path: Path, args: dict, check: bool = False) -> list[str]:
    args_file = tmp_path / f"args-{uuid.uuid4().hex}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    return [sys.executable, str(MODULE), str(args_file)]


def module_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "collections")}


def run_module(tmp_path: Path, args: dict, check: bool = False) -> dict:
    done = subprocess.run(module_argv(tmp_path, args, check), capture_output=True, text=True, env=module_env(),
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def start_module(tmp_path: Path, args: dict) -> subprocess.Popen:
    return subprocess.Popen(module_argv(tmp_path, args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=module_env())


# -- the staging site, put back after each test -----------------------------------------------------------
@dataclass
class Staging:
    site: dict
    original: bytes  # every event, COPY's CSV in id order
    before: str  # a date about two years back: about half the events are older
    conn: psycopg.Connection

    @property
    def cutoff(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.before + " 00:00:00+00:00")

    def expected_gone(self) -> dict[int, bytes]:
        return {i: r for i, r in split_records(self.original).items() if created_at(r) < self.cutoff}

    def expected_kept(self) -> dict[int, bytes]:
        return {i: r for i, r in split_records(self.original).items() if created_at(r) >= self.cutoff}

    def table(self) -> dict[int, bytes]:
        return split_records(copy_out(self.conn, "SELECT * FROM event_log_entries ORDER BY id"))

    def args(self, **extra: object) -> dict:
        return {"site_dir": self.site["site_dir"], "before": self.before, **extra}

    def archive(self, operation_id: str) -> Path:
        return Path(self.site["site_dir"]) / f"events_trim_{self.before}_{operation_id}.csv.gz"

    def assert_trimmed_exactly(self) -> None:
        """All archives together hold exactly the events older than the date, byte for byte, each once, and
        the table holds exactly the others, untouched."""
        gone = self.expected_gone()
        assert gone, "the test date must select some events"
        archived = archived_records(self.site)
        assert sorted(archived) == sorted(gone)
        assert archived == gone
        assert self.table() == self.expected_kept()


@pytest.fixture
def staging(sandbox: dict) -> Iterator[Staging]:
    site = site_by_name(sandbox, STAGING)
    today = datetime.datetime.now(datetime.timezone.utc).date()  # noqa: UP017 (same spelling as the module)
    with connect(site) as conn:
        original = copy_out(conn, "SELECT * FROM event_log_entries ORDER BY id")
        for path in archives(site):
            path.unlink()
        yield Staging(site, original, (today - datetime.timedelta(days=730)).isoformat(), conn)
        for path in archives(site):
            path.unlink()
        with conn.transaction():
            conn.execute("DELETE FROM event_log_entries")
            with conn.cursor().copy("COPY event_log_entries FROM STDIN (FORMAT csv)") as copy:
                copy.write(original)
        assert copy_out(conn, "SELECT * FROM event_log_entries ORDER BY id") == original
        conn.execute("VACUUM (ANALYZE) event_log_entries")
    lock = Path(site["site_dir"], "tmp/sec-operation.lock")
    assert not lock.exists(), "the site lock was left behind"


# -- the tests ----------------------------------------------------------------------------------------------
def test_playbook_archives_exactly_the_deleted_events(staging: Staging, sandbox: dict, tmp_path: Path) -> None:
    inventory = sandbox_inventory(sandbox, tmp_path / "inventory.json")
    done = run_playbook("trim_events.yml", inventory, {"site": STAGING, "before": staging.before,
                                                        "batch_size": 700, "throttle_ms": 0,
                                                        "operation_id": "test-playbook", "vacuum": True})
    assert done.returncode == 0, done.stdout + done.stderr
    gone = staging.expected_gone()
    assert f"{len(gone)} events before {staging.before} archived to {staging.archive('test-playbook')}" in done.stdout
    assert archives(staging.site) == [staging.archive("test-playbook")]
    staging.assert_trimmed_exactly()
    # The site itself sees the smaller table.
    assert site_status(sandbox, STAGING)["events"] == 20_000 - len(gone)

    # The values round-trip: PostgreSQL reads the archive back into the very same rows.
    staging.conn.execute("CREATE TEMP TABLE restored (LIKE event_log_entries)")
    with staging.conn.cursor().copy("COPY restored FROM STDIN (FORMAT csv, HEADER)") as copy:
        copy.write(gzip.decompress(staging.archive("test-playbook").read_bytes()))
    assert split_records(copy_out(staging.conn, "SELECT * FROM restored ORDER BY id")) == gone
    staging.conn.execute("DROP TABLE restored")


def test_module_reports_and_a_second_run_has_nothing_to_do(staging: Staging, tmp_path: Path) -> None:
    first = run_module(tmp_path, staging.args(operation_id="first", batch_size=1000, throttle_ms=5))
    gone = len(staging.expected_gone())
    assert first["changed"] is True, first
    assert first["rows_to_trim"] == first["rows_archived"] == first["rows_deleted"] == gone
    assert first["batches"] == -(-gone // 1000)
    assert first["csv_path"] == str(staging.archive("first"))
    assert first["csv_size"] == staging.archive("first").stat().st_size > 0
    assert 0 < first["max_batch_ms"] < 10_000 and first["duration"] > 0
    assert first["repaired"] == []
    staging.assert_trimmed_exactly()

    again = run_module(tmp_path, staging.args(operation_id="second"))
    assert again["changed"] is False, again
    assert again["rows_to_trim"] == again["rows_deleted"] == 0
    assert not staging.archive("second").exists(), "no empty archive may be left"
    staging.assert_trimmed_exactly()


def test_check_mode_deletes_nothing(staging: Staging, tmp_path: Path) -> None:
    result = run_module(tmp_path, staging.args(operation_id="preview"), check=True)
    assert result["changed"] is False, result
    assert result["rows_to_trim"] == len(staging.expected_gone())
    assert result["rows_deleted"] == result["rows_archived"] == 0
    assert result["csv_path"] == str(staging.archive("preview"))
    assert archives(staging.site) == []
    assert staging.table() == split_records(staging.original)


def test_an_archive_that_would_not_fit_is_refused_before_a_row_goes(staging: Staging, tmp_path: Path) -> None:
    """Room first (issue 25): the same site's database, seen from a site dir on a 1 MB tmpfs of its own."""
    small = tmp_path / "small-site"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        shutil.copytree(Path(staging.site["site_dir"], "shared", "config"), small / "shared" / "config")
        for check in (True, False):  # check mode predicts the refusal the real run makes
            result = run_module(tmp_path, staging.args(site_dir=str(small), operation_id="room"), check=check)
            assert result.get("failed") and "\n" not in result["msg"], result
            assert result["msg"].startswith(f"{small} has ") and "this trim's archive needs about" in result["msg"]
            assert "nothing was changed" in result["msg"] and "an earlier --before" in result["msg"]
            assert result["rows_to_trim"] == len(staging.expected_gone()) and result["rows_deleted"] == 0
        assert sorted(p.name for p in small.iterdir()) == ["shared"], "no archive was started"
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert staging.table() == split_records(staging.original)


def test_sigkill_mid_trim_then_runs_again_to_the_same_result(staging: Staging, tmp_path: Path) -> None:
    # Two runs killed part-way at whatever point they are, each finished by a run with another id.
    for operation_id, batches in (("killed-1", 4), ("killed-2", 9)):
        proc = start_module(tmp_path, staging.args(operation_id=operation_id, batch_size=150, throttle_ms=25))
        try:
            wait_until(lambda op=operation_id, n=batches: batch_members(staging.archive(op)) >= n, 60,
                       f"{batches} batches of {operation_id}")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert len(staging.table()) > len(staging.expected_kept()), "the kill came too late to test anything"
    wait_until(lambda: not trim_sessions(staging.conn), 30, "the killed trims' sessions to end")

    result = run_module(tmp_path, staging.args(operation_id="finish"))
    assert not result.get("failed"), result
    assert result["changed"] is True
    staging.assert_trimmed_exactly()
    assert len(archives(staging.site)) == 3


def test_batch_fsynced_but_never_committed_is_cut_off_on_the_next_run(staging: Staging, tmp_path: Path) -> None:
    """Stop the module at random points until it is caught inside a batch transaction whose CSV part is
    already in the file, then SIGKILL it there. The next run must cut that part off: its rows are still in
    the table and go again."""
    rng = random.Random(5)
    caught: dict | None = None
    for attempt in range(8):
        operation_id = f"window-{attempt}"
        path = staging.archive(operation_id)
        proc = start_module(tmp_path, staging.args(operation_id=operation_id, batch_size=100, throttle_ms=0))
        try:
            while proc.poll() is None and caught is None:
                os.kill(proc.pid, signal.SIGSTOP)
                sessions = trim_sessions(staging.conn)
                if sessions and sessions[0][1] == "idle in transaction" and sessions[0][2] and path.exists():
                    scan = events_trim.scan_archive(str(path))
                    last = scan.members[-1].meta if scan.members else {}
                    if scan.torn_at is None and last.get("kind") == "batch" \
                            and last["xid"] % 2**32 == int(sessions[0][2]):
                        caught = last
                        proc.send_signal(signal.SIGKILL)
                        break
                os.kill(proc.pid, signal.SIGCONT)
                time.sleep(rng.uniform(0, 0.004))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        wait_until(lambda: not trim_sessions(staging.conn), 30, "the killed trim's session to end")
        if caught is None:
            continue
        left = staging.conn.execute(
            "SELECT count(*) FROM event_log_entries WHERE id > %s AND id <= %s AND created_at < %s",
            (caught["lo"], caught["hi"], staging.cutoff)).fetchone()[0]
        if left == caught["rows"]:
            break  # the state we want: archived and fsynced, not committed
        caught = None  # COMMIT was already on its way: that batch committed, try again further on
    assert caught is not None, "never caught a batch between its fsync and its COMMIT"
    assert len(staging.table()) + len(archived_records(staging.site)) > 20_000, "the file must hold a duplicate now"

    result = run_module(tmp_path, staging.args(operation_id="after-window"))
    repaired = {r["path"]: r for r in result["repaired"]}
    assert repaired[str(path)]["reason"] == "uncommitted", result
    assert repaired[str(path)]["rows"] == caught["rows"]
    staging.assert_trimmed_exactly()


def kill_once_last_batch_committed(proc: subprocess.Popen, staging: Staging, path: Path, batches: int) -> None:
    """SIGKILL the module once ``path`` holds ``batches`` parts and, checked while the module is stopped, the
    last whole part's transaction has committed: the state a crash while writing the next part leaves (the
    module starts a part only after the previous batch committed). A kill between a part's fsync and its
    COMMIT would leave an uncommitted last part instead, which another test covers."""
    try:
        wait_until(lambda: batch_members(path) >= batches, 60, f"{batches} batches")
        deadline = time.monotonic() + 60
        while proc.poll() is None:
            os.kill(proc.pid, signal.SIGSTOP)
            last = [m.meta for m in events_trim.scan_archive(str(path)).members if m.meta.get("kind") == "batch"][-1]
            status = staging.conn.execute("SELECT txid_status(%s)", (last["xid"],)).fetchone()[0]
            if status == "committed":
                break
            os.kill(proc.pid, signal.SIGCONT)
            assert time.monotonic() < deadline, "never saw the last batch committed"
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(staging.table()) > len(staging.expected_kept()), "the kill came too late to test anything"


def test_torn_tail_and_header_only_file_are_repaired(staging: Staging, tmp_path: Path) -> None:
    proc = start_module(tmp_path, staging.args(operation_id="torn", batch_size=200, throttle_ms=25))
    kill_once_last_batch_committed(proc, staging, staging.archive("torn"), 3)
    wait_until(lambda: not trim_sessions(staging.conn), 30, "the killed trim's session to end")
    # A half-written part, as a crash (power loss) in the middle of write() leaves it...
    part = events_trim.gzip_member(b"999999,2000-01-01 00:00:00+00,x,,,,,,,\n",
                                   {"kind": "batch", "xid": 1, "lo": 1, "hi": 2, "rows": 1, "cutoff": "x"})
    with open(staging.archive("torn"), "ab") as handle:
        handle.write(part[: len(part) // 2])
    # ...and a file killed right after its creation, with only its header.
    header_only = staging.archive("header-only")
    header_only.write_bytes(events_trim.gzip_member(HEADER, {"kind": "header", "before": staging.before}))

    result = run_module(tmp_path, staging.args(operation_id="after-torn"))
    reasons = {Path(r["path"]).name: (r["reason"], r["removed"]) for r in result["repaired"]}
    assert reasons[staging.archive("torn").name][0] == "torn"
    assert reasons[header_only.name] == ("empty", True)
    assert not header_only.exists()
    subprocess.run(["gzip", "-t", str(staging.archive("torn"))], check=True)
    staging.assert_trimmed_exactly()


def test_uncommitted_batch_behind_a_torn_tail_is_cut_off_too(staging: Staging, tmp_path: Path) -> None:
    """The repair checks the last whole part against the database even when a torn part follows it: a part
    whose transaction aborted goes with the torn bytes, else its events would be archived twice."""
    staging.conn.execute("BEGIN")
    xid = int(staging.conn.execute("SELECT txid_current()").fetchone()[0])
    staging.conn.execute("ROLLBACK")
    low, high = 400, 600
    cutoff = events_trim.cutoff_literal(datetime.date.fromisoformat(staging.before))
    rows = copy_out(staging.conn, f"SELECT * FROM event_log_entries WHERE id > {low} AND id <= {high}"
                                  f" AND created_at < '{cutoff}' ORDER BY id")
    count = len(split_records(rows))
    assert count > 0, "the range must hold events to trim"
    path = staging.archive("aborted")
    torn = events_trim.gzip_member(b"999999,2000-01-01 00:00:00+00,x,,,,,,,\n",
                                   {"kind": "batch", "xid": xid + 1, "lo": high, "hi": high + 1, "rows": 1,
                                    "cutoff": cutoff})
    path.write_bytes(
        events_trim.gzip_member(HEADER, {"kind": "header", "before": staging.before})
        + events_trim.gzip_member(rows, {"kind": "batch", "xid": xid, "lo": low, "hi": high, "rows": count,
                                         "cutoff": cutoff})
        + torn[: len(torn) // 2])
    assert staging.conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0] == "aborted"

    result = run_module(tmp_path, staging.args(operation_id="after-aborted"))
    assert not result.get("failed"), result
    assert result["repaired"] == [{"path": str(path), "reason": "uncommitted", "rows": count, "removed": True}]
    assert not path.exists(), "a file left with no batch goes"
    staging.assert_trimmed_exactly()


@pytest.mark.parametrize(("before", "extra", "message"), [
    ("2023-13-01", {}, "must be a date as YYYY-MM-DD"),
    ("last year", {}, "must be a date as YYYY-MM-DD"),
    ("2023-02-29", {}, "is not a calendar date"),
    ("future", {}, "is in the future"),
    ("recent", {}, "would trim events of the last 30 days"),
    ("two-years", {"keep_days": 800}, "would trim events of the last 800 days"),
])
def test_playbook_refuses_bad_dates_before_touching_any_host(staging: Staging, sandbox: dict, tmp_path: Path,
                                                              before: str, extra: dict, message: str) -> None:
    today = datetime.datetime.now(datetime.timezone.utc).date()  # noqa: UP017
    before = {"future": (today + datetime.timedelta(days=3)).isoformat(),
              "recent": (today - datetime.timedelta(days=10)).isoformat(),
              "two-years": staging.before}.get(before, before)
    inventory = sandbox_inventory(sandbox, tmp_path / "inventory.json")
    done = run_playbook("trim_events.yml", inventory, {"site": STAGING, "before": before, **extra})
    assert done.returncode != 0
    assert message in done.stdout, done.stdout
    assert "PLAY [Trim the site's events]" not in done.stdout
    assert "app1" not in done.stdout.split("PLAY RECAP")[-1]
    assert archives(staging.site) == []
    assert staging.table() == split_records(staging.original)


@pytest.mark.parametrize(("before", "extra", "message"), [
    ("2023/01/01", {}, "before must be a date as YYYY-MM-DD, got '2023/01/01'"),
    ("2099-01-01", {}, "before 2099-01-01 is in the future"),
    ("recent", {}, "would trim events of the last 30 days (keep_days)"),
    ("2020-01-01", {"batch_size": 0}, "batch_size must be 1 or more"),
    ("2020-01-01", {"operation_id": "../escape"}, "operation_id must be letters"),
])
def test_module_refuses_bad_input_in_one_line(staging: Staging, tmp_path: Path, before: str, extra: dict,
                                              message: str) -> None:
    today = datetime.datetime.now(datetime.timezone.utc).date()  # noqa: UP017
    if before == "recent":
        before = (today - datetime.timedelta(days=29)).isoformat()
    result = run_module(tmp_path, {"site_dir": staging.site["site_dir"], "before": before, **extra})
    assert result.get("failed") is True, result
    assert message in result["msg"] and "\n" not in result["msg"]
    assert result["changed"] is False
    assert archives(staging.site) == []
    assert staging.table() == split_records(staging.original)


# -- a killed sec: the remote work keeps the lock, the history says what the host did -------------------------
def test_a_killed_sec_leaves_its_trim_owned_and_the_history_says_what_the_host_did(staging: Staging,
                                                                                   cluster: str,
                                                                                   console: Console) -> None:
    """Issue 16: SIGKILL `sec trim-events` and its ansible-playbook mid-trim. The trim goes on on the App
    server: a second operation must be refused while it runs (the lock is judged by the remote work's pid on
    the host, not by the dead controller's), and the killed operation's history must say what the host did."""
    site_dir = Path(staging.site["site_dir"])
    lock = site_dir / "tmp/sec-operation.lock"
    first = subprocess.Popen(["sec", "trim-events", STAGING, "--before", staging.before, "--batch-size", "500",
                              "--throttle-ms", "700"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    kill_sec_when(first, lambda: bool(archives(staging.site)) and batch_members(archives(staging.site)[0]) >= 1,
                  120, "the trim's first batch")
    work = json.loads(lock.read_text()).get("work") or {}
    assert work.get("module") == "events_trim", lock.read_text()
    assert process_alive(work["pid"]), "the remote trim should outlive its killed controller (it is waited for)"
    killed = next(op for op in json.loads(sec("ops", "list", "--site", STAGING, "--json").stdout)
                  if op["operation"] == "trim-events")
    listed = sec("ops", "list", "--site", STAGING).stdout  # not settled yet: marked, with how to settle it
    assert "interrupted*" in listed and f"* its sec was killed; `sec ops show {killed['id']}` asks" in listed
    api = httpx2.Client(base_url=console.url, headers={"Authorization": f"Bearer {console.token}"}, timeout=120)
    assert "host not asked yet" in api.get("/operations", params={"site": STAGING}).text

    second = sec("trim-events", STAGING, "--before", staging.before, check=False, timeout=120)
    assert second.returncode != 0
    said = second.stderr.strip().splitlines()[-1]
    assert "still running" in said and "events_trim" in said and f"pid {work['pid']}" in said, second.stderr
    shown = json.loads(sec("ops", "show", killed["id"], "--json").stdout)
    assert shown["status"] == "running", shown
    assert "events_trim" in shown["message"] and "still running on the App server" in shown["message"]

    wait_until(lambda: not process_alive(work["pid"]), 120, "the remote trim to finish")
    # The console asks the App server too, as `sec ops show` does, and the answer is kept in the history.
    answered = api.get(f"/api/operations/{killed['id']}").json()
    # Issue 22: the trim's own step completed there, but the operation never reached its end (the lock's
    # release): interrupted, saying what did happen, never more.
    assert answered["status"] == "interrupted" and answered["host_outcome"]["module"] == "events_trim", answered
    shown = json.loads(sec("ops", "show", killed["id"], "--json").stdout)
    assert shown["status"] == "interrupted", shown
    assert shown["host_outcome"]["state"] == "completed" and shown["host_outcome"]["module"] == "events_trim"
    assert "killed" in shown["message"] and "events_trim completed on the App server" in shown["message"]
    listed = {op["id"]: op for op in json.loads(sec("ops", "list", "--site", STAGING, "--json").stdout)}
    assert listed[killed["id"]]["status"] == "interrupted", "the answer is kept in the history"
    staging.assert_trimmed_exactly()

    # Now the dead lock is taken over by the next operation, which has nothing left to do.
    third = json.loads(sec("trim-events", STAGING, "--before", staging.before, "--json").stdout)
    assert third["rows_deleted"] == 0
    assert not lock.exists()
