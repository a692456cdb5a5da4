# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site lock: one operation per site at a time.

The lock is a small JSON file in the site dir, ``<site_dir>/tmp/sec-operation.lock``::

    {"format": 1, "operation_id": "awx-42", "token": "9f0c...",
     "owner_host": "controller.example.com", "owner_pid": 4242, "owner_pid_start": "<boot id>:<ticks>",
     "owner_user": "awx", "started": "2024-05-01T12:00:00Z", "started_epoch": 1714564800.0}

``owner_*`` describe the ansible-playbook process on the controller that holds the lock; ``token`` is
unique per acquisition, so that a takeover or a forced release acts only on the lock it inspected.

While a module of the operation works on the App server, the lock also carries ``"work": {"module",
"pid", "pid_start", "started"}`` (see site_work.py): the remote work's own process on this host. A
killed controller does not kill that work (ssh only closes its channel), so a lock is free for another
operation only once that pid is gone too; this is checked here, on the host, never from the controller.

The file side (acquire, release, read) runs on the App server inside the module; the liveness side
(``holder_state``, ``process_start``) runs on the controller inside the action plugin. Both are here,
written without side effects beyond the lock file, so the unit tests drive them directly.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid

from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

LOCK_RELATIVE_PATH = os.path.join("tmp", "sec-operation.lock")
# fpt.sec.site_lock's own options (besides site_dir), checked by its action plugin and by the module.
ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["present", "absent", "query"], "default": "present"},
    "operation_id": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "finished": {"type": "str", "choices": ["completed", "failed"]},
    "stale_after": {"type": "int"},
    "lock_owner": {"type": "dict"},
    "takeover_token": {"type": "str", "no_log": False},
}
FORMAT = 1

# Outcomes of acquire() and release(), for the module and the action plugin to branch on.
ACQUIRED = "acquired"
ALREADY_HELD = "already_held"
HELD_BY_OTHER = "held_by_other"
TAKEN_OVER = "taken_over"
RELEASED = "released"
NOT_HELD = "not_held"


class LockError(Exception):
    """The lock file cannot be read or written (permissions, missing site dir)."""


def lock_path(site_dir: str) -> str:
    return os.path.join(site_dir, LOCK_RELATIVE_PATH)


def new_record(operation_id: str, owner: dict, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    owner = owner or {}
    return {
        "format": FORMAT,
        "operation_id": operation_id,
        "token": uuid.uuid4().hex,
        "owner_host": owner.get("host"),
        "owner_pid": owner.get("pid"),
        "owner_pid_start": owner.get("pid_start"),
        "owner_user": owner.get("user"),
        "started": iso_utc(now),
        "started_epoch": round(now, 3),
    }


def read_lock(path: str) -> dict | None:
    """The holder recorded in the lock file, None when there is no lock.

    A lock file that is not valid JSON (written by hand, a full disk) still means "locked": it comes back
    with ``unreadable`` set, no owner, and the file's mtime as its start, so that only ``stale_after`` or
    ``force`` can clear it.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(f"cannot read the lock {path}: {exc.strerror or exc}") from exc
    try:
        record = json.loads(raw.decode("utf-8"))
        if not isinstance(record, dict) or not record.get("operation_id"):
            raise ValueError("not a lock record")
    except ValueError:
        return {"format": None, "operation_id": None, "token": f"unreadable-{int(mtime * 1000)}",
                "owner_host": None, "owner_pid": None, "owner_pid_start": None, "owner_user": None,
                "started": iso_utc(mtime), "started_epoch": mtime, "unreadable": True}
    return record


def with_age(record: dict | None, now: float | None = None) -> dict | None:
    """The record plus its age in seconds, measured with the clock that wrote it (the App server's)."""
    if record is None:
        return None
    now = time.time() if now is None else now
    started = record.get("started_epoch")
    age = max(0.0, now - float(started)) if isinstance(started, (int, float)) else None
    return dict(record, age_seconds=None if age is None else round(age, 1))


def _write_new(path: str, record: dict) -> bool:
    """Creates the lock file with its whole content, or returns False when a lock already exists.

    The content goes to a private temporary file first and is then hard-linked to the lock name: link()
    fails with EEXIST exactly like open(O_CREAT | O_EXCL), but other readers never see a half-written lock.
    Where the filesystem has no hard links, O_EXCL itself is used.
    """
    folder = os.path.dirname(path)
    data = (json.dumps(record, sort_keys=True, indent=1) + "\n").encode("utf-8")
    temp = os.path.join(folder, f".{os.path.basename(path)}.{record['token']}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    finally:
        os.unlink(temp)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _remove_if_token(path: str, token: str) -> bool:
    """Removes the lock only if it still carries token; True when removed.

    The lock is first renamed aside (rename is atomic, only one caller wins it), then checked: if another
    operation replaced it between our read and the rename, it is put back with link(), which cannot
    overwrite a lock created in the meantime.
    """
    aside = f"{path}.removing.{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    moved = read_lock(aside)
    if moved is not None and moved.get("token") == token:
        os.unlink(aside)
        return True
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    os.unlink(aside)
    return False


def _ensure_folder(path: str, check_mode: bool) -> None:
    folder = os.path.dirname(path)
    site_dir = os.path.dirname(folder)
    if not os.path.isdir(site_dir):
        raise LockError(f"site dir {site_dir} does not exist")
    if not os.path.isdir(folder) and not check_mode:
        try:
            os.mkdir(folder, 0o755)
        except FileExistsError:
            pass
        except OSError as exc:
            raise LockError(f"cannot create {folder}: {exc.strerror or exc}") from exc


def work_alive(record: dict | None) -> bool:
    """Whether the lock's remote work (its ``work`` entry) still runs on this host: its pid alive and, where
    it can be told, the same process that registered (not a later one given the same pid)."""
    work = (record or {}).get("work")
    if not isinstance(work, dict) or not isinstance(work.get("pid"), int) or work["pid"] <= 0:
        return False
    if not pid_alive(work["pid"]):
        return False
    recorded, actual = work.get("pid_start"), process_start(work["pid"])
    return not (recorded and actual and recorded != actual)


def with_work_state(record: dict | None) -> dict | None:
    """The record plus ``work_running``, judged on this host (the App server)."""
    if record is None:
        return None
    return dict(record, work_running=work_alive(record))


def set_work(path: str, token: str, work: dict | None) -> bool:
    """Records (or with None clears) the remote work in the lock that carries ``token``; False when the lock
    is gone or is another one. The file is replaced atomically: readers see the old or the new record."""
    current = read_lock(path)
    if current is None or current.get("unreadable") or current.get("token") != token:
        return False
    record = {k: v for k, v in current.items() if k != "work"}
    if work is not None:
        record["work"] = work
    folder = os.path.dirname(path)
    temp = os.path.join(folder, f".{os.path.basename(path)}.work.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True, indent=1) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(temp, path)
    except OSError:
        os.unlink(temp)
        raise
    return True


def acquire(path: str, operation_id: str, owner: dict, check_mode: bool = False,
            takeover_token: str | None = None, now: float | None = None) -> dict:
    """Takes the lock for operation_id.

    Returns {"outcome", "lock", "holder"}: ``lock`` is the record now in force (or that would be, in
    check mode), ``holder`` the previous holder for HELD_BY_OTHER and TAKEN_OVER. Another operation's lock
    is replaced only when takeover_token names exactly the lock found (the caller judged it dead) and its
    remote work no longer runs on this host.
    """
    if not operation_id:
        raise LockError("operation_id is required to take the lock")
    _ensure_folder(path, check_mode)
    # A lock released or taken over between our read and our write is read again, a bounded number of times.
    for _attempt in range(3):
        current = read_lock(path)
        if current is not None and current.get("operation_id") == operation_id:
            return {"outcome": ALREADY_HELD, "lock": with_age(current, now), "holder": None}
        if current is not None and (takeover_token is None or current.get("token") != takeover_token
                                    or work_alive(current)):
            return {"outcome": HELD_BY_OTHER, "lock": None, "holder": with_work_state(with_age(current, now))}
        record = new_record(operation_id, owner, now)
        outcome = ACQUIRED if current is None else TAKEN_OVER
        if check_mode:
            return {"outcome": outcome, "lock": record, "holder": with_age(current, now)}
        try:
            if current is not None and not _remove_if_token(path, current["token"]):
                continue
            if _write_new(path, record):
                return {"outcome": outcome, "lock": record, "holder": with_age(current, now)}
        except OSError as exc:
            raise LockError(f"cannot write the lock {path}: {exc.strerror or exc}") from exc
    current = read_lock(path)
    return {"outcome": HELD_BY_OTHER, "lock": None, "holder": with_work_state(with_age(current, now))}


def release(path: str, operation_id: str | None, force: bool = False, check_mode: bool = False,
            now: float | None = None) -> dict:
    """Releases the lock if operation_id holds it (any holder with force).

    Returns {"outcome", "holder"}: RELEASED with the record removed, NOT_HELD when there was no lock or
    (without force) another operation holds it; ``holder`` is the lock found, if any.
    """
    current = read_lock(path)
    if current is None:
        return {"outcome": NOT_HELD, "holder": None}
    if current.get("operation_id") != operation_id and not force:
        return {"outcome": NOT_HELD, "holder": with_age(current, now)}
    if check_mode:
        return {"outcome": RELEASED, "holder": with_age(current, now)}
    try:
        removed = _remove_if_token(path, current["token"])
    except OSError as exc:
        raise LockError(f"cannot remove the lock {path}: {exc.strerror or exc}") from exc
    if not removed:
        # Someone else released or replaced it at the same moment: report what is there now.
        return {"outcome": NOT_HELD, "holder": with_age(read_lock(path), now)}
    return {"outcome": RELEASED, "holder": with_age(current, now)}


def describe(holder: dict) -> str:
    """One line naming a holder: its operation id, when it started, and which process holds it."""
    if holder.get("unreadable"):
        return f"an unreadable lock file (modified {holder.get('started')})"
    where = []
    if holder.get("owner_pid") is not None:
        where.append(f"pid {holder['owner_pid']}")
    if holder.get("owner_host"):
        where.append(f"on {holder['owner_host']}")
    if holder.get("owner_user"):
        where.append(f"as {holder['owner_user']}")
    text = f"operation {holder.get('operation_id')} (started {holder.get('started')}"
    return text + (", " + " ".join(where) if where else "") + ")"


# -- controller side: is the holder still running? -----------------------------------------------------

def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """An identity for the start of process pid that differs when the pid is reused: the boot id plus the
    start time in clock ticks (Linux /proc). None where that is unavailable, and then only liveness counts.
    """
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None
    return f"{_boot_id()}:{fields[19]}"


RUNNING = "running"
DEAD = "dead"
UNKNOWN = "unknown"


def holder_state(holder: dict, me_host: str, stale_after: float | None = None,
                 alive=pid_alive, start_of=process_start) -> tuple[str, str]:
    """(RUNNING | DEAD | UNKNOWN, why) for a lock held by another operation, judged from this controller.

    Remote work still running on the App server (``work_running``, set by the module there) means running,
    whatever the controller's process says.

    On the same controller the process table decides: the owner pid gone, or running with another start
    time (the pid was reused), means dead; a live owner is never stale, however long it runs. A lock of
    another controller, or one without an owner, cannot be checked from here: it is dead only when it is
    older than stale_after seconds, else unknown.
    """
    work = holder.get("work") if isinstance(holder.get("work"), dict) else {}
    if holder.get("work_running"):
        # Judged on the App server by the module: whatever became of the controller, the work goes on.
        return RUNNING, (f"its remote work {work.get('module')} (pid {work.get('pid')}, started "
                         f"{work.get('started')}) is still running on the App server")
    age = holder.get("age_seconds")
    pid = holder.get("owner_pid")
    if holder.get("owner_host") and holder.get("owner_host") == me_host and isinstance(pid, int) and pid > 0:
        if not alive(pid):
            return DEAD, f"its process {pid} on {me_host} is gone"
        recorded = holder.get("owner_pid_start")
        actual = start_of(pid)
        if recorded and actual and recorded != actual:
            return DEAD, f"its process {pid} on {me_host} has ended (the pid now belongs to another process)"
        return RUNNING, f"its process {pid} on {me_host} is running"
    if stale_after is not None and stale_after > 0 and age is not None and age > stale_after:
        return DEAD, (f"it is {age:.0f}s old, past stale_after={stale_after}s, "
                      f"and its owner cannot be checked from {me_host}")
    if holder.get("owner_host") and holder.get("owner_host") != me_host:
        return UNKNOWN, (f"its owner runs on another controller ({holder['owner_host']}) "
                         f"and cannot be checked from {me_host}")
    return UNKNOWN, "its owner cannot be checked"
