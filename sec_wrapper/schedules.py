"""Schedules: an operation (backup, drill, trim-events) of one site, run at the occurrences of an iCalendar
RRULE (as AWX's schedules), by `sec serve`'s scheduler or by `sec schedule run-due` (a systemd timer, cron).

A schedule is `$SEC_HOME/schedules/<name>.json`. Each occurrence is claimed before it runs by creating
`$SEC_HOME/schedules/<name>.runs/<occurrence>.json` exclusively: whichever process creates it runs it, so an
occurrence runs at most once however many schedulers share SEC_HOME. Occurrences missed while nothing ran are
run once (the newest), and the claim says how late and how many were missed. A scheduled run is an ordinary
operation, started through the operation service with `schedule:<name>` as who ran it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

from sec_wrapper import history, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations.spec import ConfirmationNeeded, OperationRequest
from sec_wrapper.paths import sec_home

OPERATIONS = ("backup", "drill", "trim-events")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# How long a due run waits for another operation on its site to end before it is recorded as skipped.
LOCK_WAIT_SECONDS = float(os.environ.get("SEC_SCHEDULE_LOCK_WAIT", "600"))
_LOCK_POLL = 2.0


@dataclass
class Schedule:
    name: str
    site: str
    cluster: str
    operation: str
    rrule: str
    timezone: str = "UTC"
    options: dict[str, Any] = field(default_factory=dict)
    # A trim's cut-off, as a number of days before each run (its `before` date is computed then).
    before_days: int | None = None
    # A backup schedule's alert: the newest good backup older than this (seconds; None: 26 h).
    max_backup_age: int | None = None
    # Given once when the schedule was added (`--yes`): a production trim needs it at every run.
    confirmed: bool = False
    paused: bool = False
    created: str = ""

    def request(self, today: date | None = None) -> OperationRequest:
        options = dict(self.options)
        if self.before_days is not None:
            options["before"] = ((today or date.today()) - timedelta(days=self.before_days)).isoformat()
        return OperationRequest(self.operation, site=self.site, options=options, cluster=self.cluster,
                                confirmed=self.confirmed)

    @property
    def user(self) -> str:
        return f"schedule:{self.name}"


def schedules_dir() -> Path:
    return sec_home() / "schedules"


def _path(name: str) -> Path:
    return schedules_dir() / f"{name}.json"


def _runs_dir(name: str) -> Path:
    return schedules_dir() / f"{name}.runs"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, flag: str) -> int:
    """'26h', '90m', '45s', '2d' (or plain seconds) as seconds."""
    word = text.strip().lower()
    number, unit = (word[:-1], word[-1]) if word and word[-1] in _UNITS else (word, "s")
    if not number.isdigit() or int(number) == 0:
        raise SecError(f"{flag} {text!r}: give a duration such as 26h, 90m or 2d")
    return int(number) * _UNITS[unit]


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise SecError(f"schedule name {name!r}: use lowercase letters, digits, - and _ (up to 63), e.g. "
                       "nightly-backup")
    return name


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SecError(f"--timezone {name!r} does not exist: give an IANA name such as Europe/Paris or UTC") from None


def rule(schedule: Schedule) -> Any:
    """The schedule's RRULE as dateutil reads it. Without a DTSTART of its own it starts at midnight of the day
    the schedule was made, in its time zone (so BYHOUR and BYMINUTE mean the zone's clock); a DTSTART without
    a zone (floating) is read in the schedule's zone too."""
    tz = zone(schedule.timezone)
    created = datetime.fromisoformat(schedule.created.replace("Z", "+00:00")) if schedule.created else \
        datetime.now(UTC)
    start = created.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    text = schedule.rrule.strip()
    try:
        parsed = rrulestr(text, dtstart=start)
    except (ValueError, TypeError, KeyError) as exc:
        raise SecError(f"--rrule {text!r} does not parse ({history.one_line(exc)}): give an iCalendar RRULE such as "
                       "FREQ=DAILY;BYHOUR=2;BYMINUTE=0") from None
    return parsed


def _aware(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def next_run(schedule: Schedule, after: datetime | None = None) -> datetime | None:
    tz = zone(schedule.timezone)
    parsed = rule(schedule)
    return _aware(parsed.after(_query(parsed, after or datetime.now(UTC), tz)), tz)


def _naive_rule(parsed: Any) -> bool:
    start = getattr(parsed, "_dtstart", None)
    if start is None and hasattr(parsed, "_rrule") and parsed._rrule:
        start = parsed._rrule[0]._dtstart
    return start is not None and start.tzinfo is None


def _query(parsed: Any, moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None) if _naive_rule(parsed) else moment


def last_due(schedule: Schedule, now: datetime, since: datetime) -> tuple[datetime | None, int]:
    """The newest occurrence in (since, now], and how many occurrences fell in that span (1 when on time)."""
    tz = zone(schedule.timezone)
    parsed = rule(schedule)
    newest = _aware(parsed.before(_query(parsed, now, tz), inc=True), tz)
    if newest is None or newest <= since:
        return None, 0
    count = 0
    for moment in parsed.xafter(_query(parsed, since, tz), count=1000, inc=False):
        if _aware(moment, tz) > now:
            break
        count += 1
    return newest, count


def save(schedule: Schedule) -> None:
    folder = schedules_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _path(schedule.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(schedule), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load(name: str) -> Schedule:
    try:
        data = json.loads(_path(check_name(name)).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecError(f"no schedule {name}: see `sec schedule list`") from None
    except ValueError:
        raise SecError(f"schedule {name} is damaged ({_path(name)} is not JSON): remove it and add it again") from None
    return Schedule(**data)


def list_schedules() -> list[Schedule]:
    found = []
    for path in sorted(schedules_dir().glob("*.json")) if schedules_dir().is_dir() else []:
        try:
            found.append(load(path.stem))
        except SecError:
            continue
    return found


def add(schedule: Schedule, prepare: Callable[[OperationRequest], Any]) -> Schedule:
    """Checks everything a run would (site, options, confirmation, the RRULE occurs) and saves it; a refusal is
    one SecError line and nothing is written."""
    check_name(schedule.name)
    if _path(schedule.name).exists():
        raise SecError(f"schedule {schedule.name} exists: remove it first, or choose another name")
    if schedule.operation not in OPERATIONS:
        raise SecError(f"--operation {schedule.operation!r}: a schedule runs one of {', '.join(OPERATIONS)}")
    zone(schedule.timezone)
    if schedule.before_days is not None and schedule.operation != "trim-events":
        raise SecError("--before-days is for --operation trim-events")
    if schedule.operation == "trim-events" and schedule.before_days is None:
        raise SecError("a scheduled trim-events needs --before-days N (events older than N days at each run)")
    if schedule.max_backup_age is not None and schedule.operation != "backup":
        raise SecError("--max-backup-age is for --operation backup")
    if schedule.before_days is not None and schedule.before_days < 1:
        raise SecError("--before-days takes 1 or more")
    cluster, site = store.find_site(schedule.site, schedule.cluster or None)
    schedule.site, schedule.cluster = site.name, cluster.name
    schedule.created = schedule.created or history.now_iso()
    if next_run(schedule) is None:
        raise SecError(f"--rrule {schedule.rrule!r} never occurs after now: give a rule with future occurrences")
    try:
        prepare(schedule.request())
    except ConfirmationNeeded as exc:
        raise SecError(f"{exc.what}: add --yes to schedule it (each run is then confirmed)") from None
    save(schedule)
    return schedule


def remove(name: str) -> None:
    load(name)
    _path(name).unlink()
    runs = _runs_dir(name)
    if runs.is_dir():
        for entry in runs.iterdir():
            entry.unlink(missing_ok=True)
        runs.rmdir()


def set_paused(name: str, paused: bool) -> Schedule:
    schedule = load(name)
    schedule.paused = paused
    save(schedule)
    return schedule


def describe(schedule: Schedule) -> dict[str, Any]:
    """What `sec schedule list --json`, the console and the API show of a schedule."""
    upcoming = None if schedule.paused else next_run(schedule)
    return {"name": schedule.name, "site": schedule.site, "cluster": schedule.cluster,
            "operation": schedule.operation, "rrule": schedule.rrule, "timezone": schedule.timezone,
            "options": schedule.options, "before_days": schedule.before_days,
            "max_backup_age": schedule.max_backup_age, "paused": schedule.paused,
            "next_run": upcoming.isoformat() if upcoming else None, "last_run": last_run(schedule.name)}


# ---- runs -------------------------------------------------------------------------------------------------

def runs(name: str) -> list[dict[str, Any]]:
    """Every claimed occurrence, newest first."""
    folder = _runs_dir(name)
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    found.sort(key=lambda r: r.get("occurrence") or "", reverse=True)
    return found


def last_run(name: str) -> dict[str, Any] | None:
    found = runs(name)
    if not found:
        return None
    run = dict(found[0])
    if run.get("operation_id") and run.get("status") in (None, "claimed", "started", "running"):
        try:
            run["status"] = history.effective(history.read_record(run["operation_id"])).get("status")
        except SecError:
            pass
    return run


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def claim(schedule: Schedule, occurrence: datetime, details: dict[str, Any]) -> Path | None:
    """Creates the occurrence's claim; None when another process claimed it first."""
    folder = _runs_dir(schedule.name)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{_stamp(occurrence)}.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(details, handle, sort_keys=True)
    return path


def _update_claim(path: Path, details: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(details, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _since(schedule: Schedule) -> datetime:
    claimed = runs(schedule.name)
    created = datetime.fromisoformat(schedule.created.replace("Z", "+00:00"))
    if claimed:
        latest = datetime.fromisoformat(claimed[0]["occurrence"].replace("Z", "+00:00"))
        return max(latest, created)
    return created


def _site_busy(schedule: Schedule) -> dict[str, Any] | None:
    cluster = store.load_cluster(schedule.cluster)
    site = cluster.site(schedule.site)
    names = {schedule.site, site.reverse_name} if site else {schedule.site}
    for record in history.list_operations(site=names, status="running", cluster=schedule.cluster):
        if history.still_running(record):
            return record
    return None


def record_skipped(schedule: Schedule, reason: str) -> str:
    """A skipped run in the history, as an operation that never started on the hosts."""
    op_id = history.new_operation_id()
    history.operation_dir(op_id)
    now = history.now_iso()
    history.write_record(op_id, {
        "id": op_id, "operation": schedule.operation, "site": schedule.site, "cluster": schedule.cluster,
        "status": "skipped", "started": now, "ended": now, "user": schedule.user, "via": "schedule",
        "message": reason, "arguments": {"schedule": schedule.name}})
    return op_id


def run_due(start: Callable[[Schedule, OperationRequest], str], now: datetime | None = None,
            say: Callable[[str], None] = lambda _line: None, lock_wait: float | None = None) -> list[dict[str, Any]]:
    """Runs every unpaused schedule whose newest occurrence up to `now` has not run yet, once each; `start`
    runs (or starts) the operation and returns its id. Returns the claims this call made."""
    made = []
    for schedule in list_schedules():
        if schedule.paused:
            continue
        moment = now or datetime.now(UTC)
        try:
            occurrence, count = last_due(schedule, moment, _since(schedule))
        except SecError as exc:
            say(f"schedule {schedule.name}: {exc}")
            continue
        if occurrence is None:
            continue
        late = max(0.0, (moment - occurrence).total_seconds())
        details = {"schedule": schedule.name, "occurrence": occurrence.astimezone(UTC).isoformat().replace(
            "+00:00", "Z"), "claimed_at": history.now_iso(), "pid": os.getpid(), "late_seconds": round(late, 1),
            "missed": max(count - 1, 0), "status": "claimed"}
        path = claim(schedule, occurrence, details)
        if path is None:
            continue  # another scheduler got there first
        if count > 1:
            say(f"schedule {schedule.name}: {count} occurrences were missed while nothing ran; running once, "
                f"{history.format_duration(late)} late")
        waited_until = time.monotonic() + (LOCK_WAIT_SECONDS if lock_wait is None else lock_wait)
        busy = _site_busy(schedule)
        while busy and time.monotonic() < waited_until:
            time.sleep(_LOCK_POLL)
            busy = _site_busy(schedule)
        if busy:
            reason = (f"skipped: {schedule.site} was held by operation {busy.get('id')} ({busy.get('operation')}) "
                      "for longer than the schedule waits")
            details.update(status="skipped", reason=reason, operation_id=record_skipped(schedule, reason))
            _update_claim(path, details)
            say(f"schedule {schedule.name}: {reason}")
            made.append(details)
            continue
        try:
            details["operation_id"] = start(schedule, schedule.request())
            details["status"] = "started"
        except SecError as exc:
            details.update(status="refused", reason=str(exc),
                           operation_id=record_skipped(schedule, f"refused: {exc}"))
            say(f"schedule {schedule.name}: {exc}")
        _update_claim(path, details)
        made.append(details)
    return made

