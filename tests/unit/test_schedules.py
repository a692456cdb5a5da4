"""Schedules' pure logic: the RRULE's occurrences in a zone, a missed span run once, one claim per occurrence
across processes, and one line naming the fix for each bad input (issue 27)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sec_wrapper import schedules, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations.spec import OperationRequest

pytestmark = pytest.mark.usefixtures("home")


def _cluster() -> None:
    site = store.Site(name="staging.example.com", reverse_name="com_example_staging", site_dir="/var/rails/x",
                      role="staging", app_hosts=["app1"])
    store.save_cluster(store.Cluster(name="studio", hosts=[store.Host(name="app1", address="10.0.0.1",
                                                                      roles=["app"])], sites=[site]))


def _schedule(**given: object) -> schedules.Schedule:
    fields = {"name": "nightly", "site": "staging.example.com", "cluster": "", "operation": "backup",
              "rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0;BYSECOND=0", "timezone": "UTC"}
    fields.update(given)
    return schedules.Schedule(**fields)  # type: ignore[arg-type]


def _accept(_request: OperationRequest) -> None:
    return None


def test_occurrences_follow_the_zone_of_the_schedule() -> None:
    paris = _schedule(timezone="Europe/Paris", created="2026-12-01T10:00:00Z")
    upcoming = schedules.next_run(paris, datetime(2026, 12, 7, 12, tzinfo=UTC))
    assert upcoming is not None and upcoming.astimezone(UTC) == datetime(2026, 12, 8, 1, tzinfo=UTC)
    new_york = _schedule(rrule="DTSTART;TZID=America/New_York:20261207T020000\nRRULE:FREQ=DAILY",
                         created="2026-12-01T10:00:00Z")
    upcoming = schedules.next_run(new_york, datetime(2026, 12, 7, 1, tzinfo=UTC))
    assert upcoming is not None and upcoming.astimezone(UTC) == datetime(2026, 12, 7, 7, tzinfo=UTC)


def test_a_missed_span_is_one_run_that_says_how_many_were_missed() -> None:
    daily = _schedule(created="2026-12-01T10:00:00Z")
    newest, count = schedules.last_due(daily, datetime(2026, 12, 7, 12, tzinfo=UTC),
                                       datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert newest is not None and newest.astimezone(UTC) == datetime(2026, 12, 7, 2, tzinfo=UTC)
    assert count == 6
    # Nothing due once the newest occurrence has run.
    assert schedules.last_due(daily, datetime(2026, 12, 7, 12, tzinfo=UTC), newest) == (None, 0)


def _claim_in_child(home: str, occurrence: str, queue: multiprocessing.Queue) -> None:
    import os

    os.environ["SEC_HOME"] = home
    got = schedules.claim(_schedule(), datetime.fromisoformat(occurrence), {"pid": os.getpid()})
    queue.put(got is not None)


def test_an_occurrence_is_claimed_once_across_processes(home: Path) -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    occurrence = "2026-12-07T02:00:00+00:00"
    children = [context.Process(target=_claim_in_child, args=(str(home), occurrence, queue)) for _ in range(6)]
    for child in children:
        child.start()
    for child in children:
        child.join(10)
    wins = [queue.get(timeout=5) for _ in children]
    assert wins.count(True) == 1, wins


def test_run_due_runs_each_due_schedule_once_and_skips_paused_ones(home: Path) -> None:
    _cluster()
    schedules.add(_schedule(rrule="DTSTART:20261207T020000Z\nRRULE:FREQ=DAILY"), _accept)
    schedules.add(_schedule(name="paused", rrule="DTSTART:20261207T020000Z\nRRULE:FREQ=DAILY"), _accept)
    schedules.set_paused("paused", True)
    for name in ("nightly", "paused"):  # made "yesterday", so this morning's occurrence is due
        schedule = schedules.load(name)
        schedule.created = "2026-12-06T12:00:00Z"
        schedules.save(schedule)
    started: list[tuple[str, str]] = []

    def start(schedule: schedules.Schedule, request: OperationRequest) -> str:
        started.append((schedule.user, request.operation))
        return f"op-{len(started)}"

    now = datetime(2026, 12, 7, 3, tzinfo=UTC)
    made = schedules.run_due(start, now=now, lock_wait=0)
    assert started == [("schedule:nightly", "backup")]
    assert made[0]["occurrence"] == "2026-12-07T02:00:00Z" and made[0]["late_seconds"] == 3600.0
    assert schedules.run_due(start, now=now, lock_wait=0) == [] and len(started) == 1
    assert schedules.last_run("nightly")["operation_id"] == "op-1"


def test_a_trim_schedule_computes_its_date_at_each_run() -> None:
    trim = _schedule(operation="trim-events", before_days=180)
    request = trim.request(today=datetime(2026, 12, 7).date())
    assert request.options["before"] == "2026-06-10" and request.operation == "trim-events"


@pytest.mark.parametrize("given, words", [
    ({"rrule": "FREQ=SOMETIMES"}, "--rrule 'FREQ=SOMETIMES' does not parse"),
    ({"rrule": "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=2"}, "never occurs after now"),
    ({"operation": "restore"}, "a schedule runs one of backup, drill, trim-events"),
    ({"site": "nowhere.example.com"}, "no site nowhere.example.com"),
    ({"timezone": "Mars/Olympus"}, "--timezone 'Mars/Olympus' does not exist"),
    ({"name": "Nightly Backup"}, "use lowercase letters"),
    ({"operation": "trim-events"}, "needs --before-days"),
    ({"before_days": 30}, "--before-days is for --operation trim-events"),
])
def test_bad_input_is_one_line_naming_the_fix_and_saves_nothing(given: dict, words: str) -> None:
    _cluster()
    with pytest.raises(SecError) as refused:
        schedules.add(_schedule(**given), _accept)
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert schedules.list_schedules() == []


def test_durations() -> None:
    assert schedules.parse_duration("26h", "--max-backup-age") == 26 * 3600
    assert schedules.parse_duration("90m", "--max-backup-age") == 5400
    with pytest.raises(SecError, match="give a duration such as 26h"):
        schedules.parse_duration("soon", "--max-backup-age")
