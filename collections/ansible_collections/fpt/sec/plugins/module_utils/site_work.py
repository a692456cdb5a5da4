# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An operation's work on the App server, owned and recorded there.

A module that changes a site under an operation's site lock (events_trim, db_restore, db_backup...) wraps
its work in :class:`SiteWork`. While it runs:

* the lock carries ``"work": {"module", "pid", "pid_start", "started"}``, the module's own process on this
  host, so that another operation is refused while that process runs even when the controller that took
  the lock was killed (ssh closes the channel, the module goes on): see site_lock.work_alive;
* the operation's outcome file ``<site_dir>/tmp/sec-outcomes/<operation_id>.json`` holds one step per
  module run: ``{"module", "pid", "pid_start", "started", "state", "ended", "msg", "summary"}`` with
  ``state`` running, completed or failed. It is written before the module prints its result, so it is
  true even when nobody is left to read that result; the controller's history reads it back (through
  ``fpt.sec.site_lock state=query``) to say what really happened to a run whose controller was killed.

A step still ``running`` whose process is gone was killed on the host too: :func:`read_outcome` reports it
as ``killed``. The playbook's lock release writes ``"finished": {"state": completed|failed, "at"}``
(:func:`record_finished`): only then did the operation reach its end on the hosts; a file without it belongs
to a run that stopped half-way, whatever its last step did. Nothing here ever fails the module: the work
itself matters more than its bookkeeping, so problems come back as warnings.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import json
import os
import re
import time

from ansible_collections.fpt.sec.plugins.module_utils import site_lock
from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

OUTCOMES_DIR = os.path.join("tmp", "sec-outcomes")
KEEP_OUTCOMES_SECONDS = 90 * 86400
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
KILLED = "killed"


def outcome_path(site_dir: str, operation_id: str) -> str | None:
    """The outcome file of operation_id, None for an id that is not a safe file name."""
    if not isinstance(operation_id, str) or not _ID_RE.match(operation_id):
        return None
    return os.path.join(site_dir, OUTCOMES_DIR, operation_id + ".json")


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("steps"), list) else None


def read_outcome(site_dir: str, operation_id: str) -> dict | None:
    """What the operation's modules did on this host: {"operation_id", "steps": [...], "state", "last"}.

    ``state`` sums it up: running (a step's process still runs), else the last step's state, with a step
    left ``running`` by a dead process read as killed. None when no module of that operation ran here.
    """
    path = outcome_path(site_dir, operation_id)
    record = _read(path) if path else None
    if record is None:
        return None
    steps = []
    for step in record["steps"]:
        step = dict(step)
        if step.get("state") == RUNNING and not site_lock.work_alive({"work": step}):
            step["state"] = KILLED
        steps.append(step)
    last = steps[-1] if steps else None
    state = RUNNING if any(s.get("state") == RUNNING for s in steps) else (last or {}).get("state")
    finished = record.get("finished") if isinstance(record.get("finished"), dict) else None
    return {"operation_id": operation_id, "steps": steps, "state": state, "last": last, "finished": finished}


def record_finished(site_dir: str, operation_id: str, state: str) -> str | None:
    """Records that the operation reached its end here (state completed or failed); a warning on failure.

    A failed operation that did no work here (refused under its lock) leaves no file: a refusal changes
    nothing on the host, and its record is settled as interrupted, never as more."""
    path = outcome_path(site_dir, operation_id)
    if path is None or state not in (COMPLETED, FAILED):
        return None
    record = _read(path)
    if record is None and state != COMPLETED:
        return None
    try:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        record = record or {"operation_id": operation_id, "steps": []}
        record["finished"] = {"state": state, "at": iso_utc()}
        write_atomic(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o644)
    except OSError as exc:
        return f"cannot record the operation's end on the App server ({exc.strerror or exc})"
    return None


class SiteWork:
    """Registers this process as the remote work of the operation holding the site lock, and records how
    the work ended. ``begin()`` before the work, ``end()`` before the module prints its result."""

    def __init__(self, site_dir: str, module_name: str, check_mode: bool = False) -> None:
        self.site_dir = site_dir
        self.module_name = module_name
        self.check_mode = check_mode
        self.operation_id: str | None = None
        self.token: str | None = None
        self.step: dict | None = None
        self.warnings: list[str] = []

    def begin(self) -> None:
        if self.check_mode:
            return
        lock_file = site_lock.lock_path(self.site_dir)
        try:
            lock = site_lock.read_lock(lock_file)
        except site_lock.LockError as exc:
            self.warnings.append(f"the site lock cannot be read, this work is not registered in it: {exc}")
            return
        if lock is None or lock.get("unreadable") or not outcome_path(self.site_dir, lock.get("operation_id")):
            return  # run outside an operation (ad hoc): nothing to own
        pid = os.getpid()
        self.operation_id, self.token = lock["operation_id"], lock["token"]
        self.step = {"module": self.module_name, "pid": pid, "pid_start": site_lock.process_start(pid),
                     "started": iso_utc(), "state": RUNNING, "ended": None, "msg": None,
                     "summary": None}
        try:
            work = {k: self.step[k] for k in ("module", "pid", "pid_start", "started")}
            site_lock.set_work(lock_file, self.token, work)
            self._save()
            self._prune()
        except OSError as exc:
            self.warnings.append(f"cannot record this work on the App server ({exc.strerror or exc}): a killed "
                                 "controller's history will not know how it ended")

    def end(self, state: str, msg: str | None = None, summary: dict | None = None) -> None:
        """Records how the work ended (COMPLETED or FAILED) and clears it from the lock."""
        if self.step is None or self.step.get("state") != RUNNING:
            return
        self.step.update(state=state, ended=iso_utc(), msg=msg, summary=summary)
        try:
            self._save()
            site_lock.set_work(site_lock.lock_path(self.site_dir), self.token or "", None)
        except (OSError, site_lock.LockError) as exc:
            self.warnings.append(f"cannot record how this work ended on the App server: {exc}")

    def attach(self, module, summary=()) -> None:
        """Records the end from the module's own ``exit_json``/``fail_json`` (its msg, and its summary: the
        ``summary`` keys of its result, or ``summary(result)``) just before the result is printed, for a
        module with many ways out."""
        exit_json, fail_json = module.exit_json, module.fail_json

        def finish(state: str, kwargs: dict) -> None:
            said = summary(kwargs) if callable(summary) else {k: kwargs.get(k) for k in summary}
            self.end(state, kwargs.get("msg"), said)
            for warning in self.warnings:
                module.warn(warning)
            self.warnings = []

        def exit_with_record(**kwargs: object) -> None:
            finish(COMPLETED, kwargs)
            exit_json(**kwargs)

        def fail_with_record(**kwargs: object) -> None:
            finish(FAILED, kwargs)
            fail_json(**kwargs)

        module.exit_json, module.fail_json = exit_with_record, fail_with_record

    def _save(self) -> None:
        path = outcome_path(self.site_dir, self.operation_id or "")
        if path is None or self.step is None:
            return
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        record = _read(path) or {"operation_id": self.operation_id, "steps": []}
        this = (self.step["pid"], self.step["started"])
        steps = [s for s in record["steps"] if (s.get("pid"), s.get("started")) != this]
        record["steps"] = steps + [self.step]
        write_atomic(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o644)

    def _prune(self) -> None:
        """Outcome files of long finished operations go (the controller's history keeps its own record)."""
        folder = os.path.join(self.site_dir, OUTCOMES_DIR)
        limit = time.time() - KEEP_OUTCOMES_SECONDS
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            try:
                if name.endswith(".json") and os.stat(path).st_mtime < limit:
                    os.unlink(path)
            except OSError:
                continue
