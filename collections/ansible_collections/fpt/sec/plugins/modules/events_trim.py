#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: events_trim
short_description: Archive a site's old events to a CSV file, then delete them, without loading the site
version_added: "0.1.0"
description:
  - Every row of the site's C(event_log_entries) table created before O(before) (midnight UTC) is written
    to C(<site_dir>/events_trim_<before>_<operation_id>.csv.gz) and deleted from the database.
  - The work goes one primary-key range at a time. Each range of about O(batch_size) rows is archived and
    deleted in one short transaction, by a C(COPY) to standard output of a C(DELETE ... RETURNING *), and
    its CSV part is written, flushed and fsynced before that transaction commits. So every deleted event is
    in the file, even when the run is killed at any moment.
  - A pause of O(throttle_ms) between batches and per-statement lock and statement timeouts keep the live
    site responsive. A batch that hits a timeout is rolled back and retried with half as many rows.
  - A run that was killed can be run again, with the same or another O(operation_id), and finishes the
    work with no duplicate and no gap across the files. At the start of every run, the last part of every
    C(events_trim_*.csv.gz) file in the site dir is checked against the database. A part whose
    transaction never committed is cut off (its events are still in the database and go again), and so
    is a part that was only half written.
  - Room first. Once it knows how many events go, and before the first batch, the module estimates the
    archive's size from the table's heap size per row and refuses, with both numbers and the fix, when the
    site dir's file system has less free space. Check mode makes the same refusal.
  - Check mode reports how many events would go and the file's path, and changes nothing.
  - The database and its credentials come from C(<site_dir>/shared/config/database.yml). The password
    reaches C(psql) only through a temporary 0600 passfile, never an argument.
extends_documentation_fragment:
  - fpt.sec.site
options:
  before:
    description:
      - A date as C(YYYY-MM-DD). Events with C(created_at) before midnight UTC of that day go.
      - It may not be in the future, nor later than O(keep_days) days before today (UTC).
    type: str
    required: true
  keep_days:
    description:
      - The floor. The events of this many last days are never trimmed, whatever O(before) says.
    type: int
    default: 30
  operation_id:
    description:
      - "Names the archive file. Letters, digits and C(. _ : @ -), at most 128 characters."
      - Running again with the id of an earlier run appends to that run's file.
      - Defaults to C(manual-) and the current UTC time.
    type: str
  batch_size:
    description:
      - Rows per batch, one transaction each. The default keeps each transaction to a few tens of
        milliseconds on ordinary hardware.
    type: int
    default: 5000
  throttle_ms:
    description:
      - Pause between two batches, in milliseconds, that leaves the database to the live site.
      - With the default batch size, the default keeps the site's p99 latency within twice its usual and
        archives about half as fast as a single COPY and DELETE would (see C(bench/trim.py)).
    type: int
    default: 10
  statement_timeout_ms:
    description:
      - C(statement_timeout) for each statement of a batch. A batch that takes longer is rolled back and
        retried smaller.
      - The single scan that counts the events to go, and the final vacuum, run without it.
    type: int
    default: 10000
  lock_timeout_ms:
    description:
      - C(lock_timeout) for every statement, so that the trim never waits in a lock queue in front of the
        site's own queries. A batch that cannot get its locks in time is rolled back and retried.
    type: int
    default: 500
  vacuum:
    description:
      - Run VACUUM (ANALYZE) on the table at the end when events were deleted, so that their space is
        reused and the planner sees the new size. A vacuum that fails only warns.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Counts the events that would go and reports the file's path. Deletes and writes nothing,
      and repairs no earlier file.
  diff_mode:
    support: none
    description: There is no meaningful diff of a table trim.
notes:
  - The CSV is what PostgreSQL's C(COPY) writes in CSV format, with a header line and the table's
    columns in table order, timestamps in UTC (C(2021-03-04 12:34:56.123456+00)). PostgreSQL's C(COPY ...
    FROM) with the options C(FORMAT csv) and C(HEADER) reads it back into the same rows.
  - Batches follow the primary key upwards; within a batch, rows come in the order the server returns
    them (id order in practice). Sort by C(id) if order matters.
  - The file is a multi-member gzip stream, one member per batch, compressed at gzip level 1 (the
    compression runs while the batch's transaction is open). C(zcat), C(gzip -t) and any gzip library
    read it as one CSV. The gzip header of each member carries a small extra field (C(SC)) with the
    batch's transaction id and primary-key range, which the next run uses to check the file's tail.
  - Two trims of one site never run at the same time (an advisory lock on the site dir refuses the second).
    Use M(fpt.sec.site_lock) around it in playbooks, as C(playbooks/trim_events.yml) does.
  - Needs C(psql) on the App server and PostgreSQL 10 or newer (C(txid_status)).
seealso:
  - module: fpt.sec.site_lock
"""

EXAMPLES = r"""
- name: Trim the events older than 2023, with the site lock held
  fpt.sec.events_trim:
    site_dir: /var/rails/com_teststudio_prod
    before: "2023-01-01"
    operation_id: awx-1234
  register: trim

- name: How many events would go?
  fpt.sec.events_trim:
    site_dir: /var/rails/com_teststudio_prod
    before: "2022-06-01"
  check_mode: true
  register: preview

- name: A gentler trim at night, then vacuum
  fpt.sec.events_trim:
    site_dir: /var/rails/com_teststudio_prod
    before: "2023-01-01"
    batch_size: 2000
    throttle_ms: 100
    vacuum: true
"""

RETURN = r"""
csv_path:
  description: The archive file of this run (in check mode, the file it would write).
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/events_trim_2023-01-01_awx-1234.csv.gz
csv_size:
  description: Size of that file in bytes (compressed), 0 when there is none.
  returned: always
  type: int
  sample: 10485760
room:
  description: The free space check made before the first batch (when there were events to trim).
  returned: when events were to be trimmed
  type: dict
  sample: {"path": "/var/rails/com_teststudio_prod", "free_bytes": 52613349376, "needed_bytes": 71303168}
rows_to_trim:
  description: How many events were older than the date when the run started (in check mode, how many
    would go).
  returned: always
  type: int
  sample: 2500000
rows_archived:
  description: Events written to the file by this run. Always equal to RV(rows_deleted).
  returned: always
  type: int
  sample: 2500000
rows_deleted:
  description: Events deleted by this run.
  returned: always
  type: int
  sample: 2500000
batches:
  description: Batch transactions that archived and deleted events.
  returned: always
  type: int
  sample: 500
duration:
  description: Seconds the run took, from the first query to the end (vacuum included).
  returned: always
  type: float
  sample: 84.2
max_batch_ms:
  description: The longest batch transaction, from BEGIN to the end of COMMIT, in milliseconds.
  returned: always
  type: float
  sample: 41.7
avg_batch_ms:
  description: The mean batch transaction time in milliseconds.
  returned: always
  type: float
  sample: 23.5
retries:
  description: Batches rolled back after a lock or statement timeout and retried smaller.
  returned: always
  type: int
  sample: 0
cutoff:
  description: The instant events must be older than, UTC.
  returned: always
  type: str
  sample: "2023-01-01 00:00:00+00"
operation_id:
  description: The operation id used in the file name.
  returned: always
  type: str
  sample: awx-1234
vacuumed:
  description: Whether VACUUM (ANALYZE) ran.
  returned: always
  type: bool
  sample: false
repaired:
  description:
    - Earlier archive files whose tail was cut off. C(reason) is V(uncommitted) (the batch was archived
      but its transaction did not commit), V(torn) (the file ended in the middle of a batch) or V(empty)
      (the file held only its header); C(removed) is true when no event was left in the file, which was
      then removed. C(rows) counts the events cut off, which were still in the table.
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/rails/com_teststudio_prod/events_trim_2023-01-01_awx-1233.csv.gz, reason: uncommitted,
            rows: 5000, removed: false}]
"""

import datetime
import errno
import fcntl
import json
import os
import re
import struct
import subprocess
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from subprocess import PIPE, Popen

from ansible_collections.fpt.sec.plugins.module_utils import room, site_work
from ansible_collections.fpt.sec.plugins.module_utils.durable import fsync_dir
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PgClient, PostgresError, find_binary
from ansible_collections.fpt.sec.plugins.module_utils.site_model import DatabaseConfigError
from ansible_collections.fpt.sec.plugins.module_utils.site_module import recorded_work, site_module

TABLE = "event_log_entries"
ARCHIVE_PREFIX = "events_trim_"
ARCHIVE_SUFFIX = ".csv.gz"
OPERATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Lock, statement-timeout, serialization and deadlock errors: the batch is rolled back and tried again.
RETRYABLE_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01"})
MAX_RETRIES = 6
# How long a previous run's last transaction may stay "in progress" (its psql still finishing) before we
# give up deciding whether it committed.
IN_PROGRESS_WAIT = 60.0
# Level 1: the compression runs inside the batch transaction; higher levels cost far more time than space.
GZIP_LEVEL = 1
GZIP_SUBFIELD = b"SC"
FORMAT_VERSION = 1


class TrimError(Exception):
    """Stops the run; ``str()`` is the one-line message the task fails with."""


# -- inputs ---------------------------------------------------------------------------------------------------
def check_before(before: str, keep_days: int, today: datetime.date) -> datetime.date:
    """The cutoff date, or TrimError saying in one line why ``before`` is refused."""
    text = (before or "").strip()
    if not DATE_RE.match(text):
        raise TrimError(f"before must be a date as YYYY-MM-DD, got {before!r}")
    try:
        day = datetime.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise TrimError(f"before {text} is not a calendar date") from None
    if keep_days < 0:
        raise TrimError(f"keep_days must be 0 or more, got {keep_days}")
    if day > today:
        raise TrimError(f"before {text} is in the future (today is {today.isoformat()} UTC)")
    latest = today - datetime.timedelta(days=keep_days)
    if day > latest:
        raise TrimError(f"before {text} would trim events of the last {keep_days} days (keep_days); the latest "
                        f"date allowed today is {latest.isoformat()}")
    return day


def archive_path(site_dir: str, before: datetime.date, operation_id: str) -> str:
    return os.path.join(site_dir, f"{ARCHIVE_PREFIX}{before.isoformat()}_{operation_id}{ARCHIVE_SUFFIX}")


def cutoff_literal(before: datetime.date) -> str:
    return f"{before.isoformat()} 00:00:00+00"


# -- the archive file: one gzip member per batch --------------------------------------------------------------
class MemberBuilder:
    """One gzip member built as its data arrives: compressing while the server still streams rows keeps
    the batch transaction short."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
        self._raw: list[bytes] = []
        self._body: list[bytes] = []
        self._crc = 0
        self._size = 0

    def add(self, data: bytes) -> None:
        self._raw.append(data)
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._body.append(self._deflate.compress(data))

    def data(self) -> bytes:
        return b"".join(self._raw)

    def finish(self, meta: dict) -> bytes:
        """The complete member, with ``meta`` (JSON) in an FEXTRA subfield. The compressed length is in the
        metadata so that a reader can walk the members from header to header without inflating them."""
        body = b"".join(self._body) + self._deflate.flush()
        payload = json.dumps(dict(meta, v=FORMAT_VERSION, clen=len(body)), separators=(",", ":"),
                             sort_keys=True).encode("ascii")
        extra = GZIP_SUBFIELD + struct.pack("<H", len(payload)) + payload
        # ID1 ID2 CM=deflate FLG=FEXTRA MTIME XFL OS=unix, then XLEN and the extra field.
        header = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 4, int(time.time()), 0, 3) + struct.pack("<H", len(extra))
        trailer = struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)
        return header + extra + body + trailer


def gzip_member(data: bytes, meta: dict) -> bytes:
    """One complete gzip member holding ``data``, with ``meta`` in its header."""
    builder = MemberBuilder()
    builder.add(data)
    return builder.finish(meta)


class Member:
    __slots__ = ("data_offset", "end", "meta", "offset")

    def __init__(self, offset: int, data_offset: int, end: int, meta: dict) -> None:
        self.offset = offset
        self.data_offset = data_offset
        self.end = end
        self.meta = meta


class ArchiveScan:
    """The members of an archive file, and where a torn tail starts (None when the file ends cleanly)."""

    def __init__(self, members: list[Member], torn_at: int | None, foreign: bool) -> None:
        self.members = members
        self.torn_at = torn_at
        self.foreign = foreign


def _member_meta(extra: bytes) -> dict | None:
    pos = 0
    while pos + 4 <= len(extra):
        length = struct.unpack("<H", extra[pos + 2:pos + 4])[0]
        if extra[pos:pos + 2] == GZIP_SUBFIELD:
            try:
                meta = json.loads(extra[pos + 4:pos + 4 + length].decode("ascii"))
            except ValueError:
                return None
            clen = meta.get("clen") if isinstance(meta, dict) else None
            return meta if isinstance(clen, int) and clen >= 0 else None
        pos += 4 + length
    return None


def scan_archive(path: str) -> ArchiveScan:
    """Walk the members of ``path`` by their headers, without inflating them.

    A file that does not start with one of our header members is ``foreign`` (left alone). Anything after
    the last member that fits in the file, down to a lone byte, is a torn tail: it can only be a batch whose
    write never finished, so it was never committed (COMMIT is sent only after the part is fsynced).
    """
    members: list[Member] = []
    size = os.path.getsize(path)
    offset = 0
    with open(path, "rb") as handle:
        while offset < size:
            handle.seek(offset)
            head = handle.read(12)
            ours = len(head) == 12 and head[:4] == b"\x1f\x8b\x08\x04"
            xlen = struct.unpack("<H", head[10:12])[0] if ours else 0
            extra = handle.read(xlen) if ours else b""
            meta = _member_meta(extra) if ours and len(extra) == xlen else None
            if meta is None or offset + 12 + xlen + meta["clen"] + 8 > size:
                break
            if not members and meta.get("kind") != "header":
                return ArchiveScan([], None, True)
            data_offset = offset + 12 + xlen
            members.append(Member(offset, data_offset, data_offset + meta["clen"] + 8, meta))
            offset = members[-1].end
    if not members and size:
        with open(path, "rb") as handle:
            start = handle.read(4)
        if start != b"\x1f\x8b\x08\x04"[:len(start)]:
            return ArchiveScan([], None, True)  # not a gzip file of ours at all
    # An empty file, or one cut inside its header member, was created by a run killed before it archived
    # anything: torn at 0, it is removed.
    return ArchiveScan(members, offset if offset < size or size == 0 else None, False)


def read_member(path: str, member: Member) -> bytes | None:
    """The uncompressed data of ``member``, or None when it does not inflate to its own CRC and size."""
    with open(path, "rb") as handle:
        handle.seek(member.data_offset)
        body = handle.read(member.end - 8 - member.data_offset)
        trailer = handle.read(8)
    if len(trailer) != 8:
        return None
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(body)
    except zlib.error:
        return None
    crc, isize = struct.unpack("<II", trailer)
    if not inflater.eof or inflater.unused_data or zlib.crc32(data) & 0xFFFFFFFF != crc \
            or len(data) & 0xFFFFFFFF != isize:
        return None
    return data


def count_csv_records(data: bytes) -> int:
    """Records in COPY's CSV output. A quoted field may hold newlines, so a record ends at a newline only
    where the quotes seen so far are balanced (an escaped ``""`` counts twice, so it never unbalances)."""
    if b'"' not in data:
        return data.count(b"\n")
    records = 0
    in_quotes = False
    for line in data.split(b"\n")[:-1]:
        if line.count(b'"') & 1:
            in_quotes = not in_quotes
        if not in_quotes:
            records += 1
    return records


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def truncate_file(path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


# -- a long-lived psql session ----------------------------------------------------------------------------
class StepResult:
    __slots__ = ("data", "error", "sqlstate")

    def __init__(self, data: bytes, error: str | None, sqlstate: str) -> None:
        self.data = data
        self.error = error
        self.sqlstate = sqlstate


def _line_start_find(buffer: bytearray, marker: bytes, at_line_start: bool) -> int:
    """Where ``marker`` starts a line in ``buffer`` (position 0 counts when ``at_line_start``), or -1."""
    found = buffer.find(marker)
    while found > 0 and buffer[found - 1] != 0x0A:
        found = buffer.find(marker, found + 1)
    if found == 0 and not at_line_start:
        found = buffer.find(b"\n" + marker)
        found = found + 1 if found >= 0 else -1
    return found


class PsqlSession:
    """One psql process fed on stdin, so that a transaction stays open while the module writes and fsyncs
    the CSV part of a batch before sending COMMIT (postgres.PgClient runs one-shot commands only).

    Each step is followed by ``\\echo <token> :ERROR :SQLSTATE``: the output before that line is the step's
    data, and psql's own variables say whether the step failed. Errors go to a temporary file that is read
    only when a step fails. psql does not stop on errors: the caller decides (ROLLBACK and retry, or stop).
    """

    def __init__(self, client: PgClient, application_name: str) -> None:
        argv = [find_binary("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0", *client.connection_args(),
                "-d", client.dbname_arg(client.database)]
        env = client.environment()
        env.update(PGAPPNAME=application_name, PGCLIENTENCODING="UTF8")
        self._stderr = tempfile.TemporaryFile()
        self._stderr_seen = 0
        self._token = f"@@sec-{uuid.uuid4().hex}"
        self._steps = 0
        try:
            # Not module.run_command: it runs a command to completion, and this one must stay open between
            # the statements of a transaction.
            self._proc = Popen(argv, stdin=PIPE, stdout=PIPE, stderr=self._stderr, env=env, close_fds=True,
                               bufsize=0)
        except OSError as exc:
            self._stderr.close()
            raise TrimError(f"cannot run psql: {exc.strerror or exc}") from None
        self._stdin = self._proc.stdin.fileno()
        self._stdout = self._proc.stdout.fileno()

    def step(self, sql: str, sink: Callable[[bytes], None] | None = None) -> StepResult:
        """Send ``sql`` (one statement, or several of which only the last can fail) and wait for it.

        With ``sink``, the step's output goes to it in chunks as it arrives (so that the caller compresses
        while the server still produces rows) and the result's data is empty.
        """
        self._steps += 1
        marker = f"{self._token}-{self._steps}".encode("ascii")
        # Without its semicolon a statement would wait in psql's buffer while the \echo runs.
        statement = sql.rstrip().rstrip(";") + ";"
        try:
            write_all(self._stdin, statement.encode("utf-8") + b"\n\\echo " + marker + b" :ERROR :SQLSTATE\n")
        except OSError:
            raise TrimError(f"psql ended: {self._new_errors()}") from None
        collected: list[bytes] = []
        emit = sink or collected.append
        pending = bytearray()
        at_line_start = True  # whether the byte before ``pending`` ends a line
        while True:
            chunk = os.read(self._stdout, 1 << 20)
            if not chunk:
                raise TrimError(f"psql ended: {self._new_errors()}")
            pending += chunk
            found = _line_start_find(pending, marker, at_line_start)
            if found >= 0:
                eol = pending.find(b"\n", found)
                if eol < 0:
                    continue  # the marker line is not complete yet
                if found:
                    emit(bytes(pending[:found]))
                fields = pending[found:eol].decode("ascii", "replace").split()
                failed = len(fields) < 2 or fields[1] != "false"
                sqlstate = fields[2] if len(fields) > 2 else ""
                return StepResult(b"".join(collected), self._new_errors() if failed else None, sqlstate)
            # Everything but a marker's length at the end cannot hold the start of the marker line.
            safe = len(pending) - len(marker) - 1
            if safe > 0:
                emit(bytes(pending[:safe]))
                at_line_start = pending[safe - 1] == 0x0A
                del pending[:safe]

    def query(self, sql: str) -> list[list[str]]:
        """Rows of a query that must succeed, fields split on psql's unaligned separator."""
        result = self.step(sql)
        if result.error is not None:
            raise TrimError(result.error)
        return [line.split("|") for line in result.data.decode("utf-8").splitlines() if line]

    def _new_errors(self) -> str:
        self._stderr.seek(self._stderr_seen)
        raw = self._stderr.read()
        self._stderr_seen += len(raw)
        text = raw.decode("utf-8", "replace")
        lines = [re.sub(r"^psql:<stdin>:\d+:\s*", "", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        picked = [line for line in lines if line.startswith(("ERROR", "FATAL", "psql: error"))] or lines
        return " | ".join(picked[:2]) if picked else f"psql exited with status {self._proc.poll()}"

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()


def open_session(client: PgClient, statement_timeout_ms: int, lock_timeout_ms: int) -> PsqlSession:
    session = PsqlSession(client, "sec events_trim")
    try:
        # UTC and ISO dates make the CSV the same whoever runs it; the server ends the session (rolling back
        # its batch) if this process stalls inside a transaction.
        idle_ms = max(60000, 3 * statement_timeout_ms)
        session.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';"
                      f" SET extra_float_digits = 3; SET statement_timeout = {int(statement_timeout_ms)};"
                      f" SET lock_timeout = {int(lock_timeout_ms)};"
                      f" SET idle_in_transaction_session_timeout = {idle_ms}")
    except TrimError:
        session.close()
        raise
    return session


# -- repairing what an earlier, killed run left -------------------------------------------------------------
def transaction_status(session: PsqlSession, xid: int) -> str | None:
    """'committed', 'aborted' or None (too old to know, or not from this cluster's history, as after a
    restore from another server), waiting while it is still in progress."""
    deadline = time.monotonic() + IN_PROGRESS_WAIT
    while True:
        result = session.step(f"SELECT coalesce(txid_status({int(xid)}), 'unknown')")
        if result.error is not None:
            if "in the future" in result.error:
                return None
            raise TrimError(result.error)
        status = result.data.decode("ascii").strip()
        if status != "in progress":
            return None if status == "unknown" else status
        if time.monotonic() > deadline:
            raise TrimError(f"transaction {xid} of an earlier trim is still in progress after"
                            f" {IN_PROGRESS_WAIT:.0f} s: stop that trim (see pg_stat_activity, application_name"
                            " 'sec events_trim') and run again")
        time.sleep(0.5)


def repair_archive(session: PsqlSession, path: str, check_mode: bool) -> dict | None:
    """Cut off the tail of ``path`` that is not in the database's history: a torn member, or a last batch
    whose transaction did not commit (its rows are still in the table and will be archived again).

    Only the last batch can be uncommitted: a batch's part is written only after the previous batch
    committed. A file left with no batch at all is removed. Returns what was done, or None when the file
    is fine.
    """
    scan = scan_archive(path)
    if scan.foreign:
        return None
    cut_at = scan.torn_at
    reason = "torn" if cut_at is not None else None
    rows = 0
    batches = [m for m in scan.members if m.meta.get("kind") == "batch"]
    if batches:
        # The last whole batch is checked even behind a torn tail: the writer starts a part only after the
        # previous batch committed, but the repair must not take that on trust (the file is not ours alone).
        last = batches[-1]
        meta = last.meta
        if read_member(path, last) is None:
            cut_at, reason = last.offset, "torn"
        else:
            try:
                xid, low, high, count = (int(meta[k]) for k in ("xid", "lo", "hi", "rows"))
                cutoff = cutoff_literal(_meta_date(meta["cutoff"]))
            except (KeyError, TypeError, ValueError):
                raise TrimError(f"{path}: the last batch's metadata is unreadable; move the file aside") from None
            status = transaction_status(session, xid)
            left = int(session.query(
                f"SELECT count(*) FROM {TABLE} WHERE id > {low} AND id <= {high} AND created_at < '{cutoff}'")[0][0])
            if status in (None, "committed") and left == 0:
                pass  # deleted, as the file says
            elif status in (None, "aborted") and left == count:
                cut_at, reason, rows = last.offset, "uncommitted", left
            else:
                raise TrimError(
                    f"cannot tell whether the last batch of {path} (ids {meta['lo']} to {meta['hi']}, {meta['rows']}"
                    f" rows) was deleted: its transaction {meta['xid']} is {status or 'unknown'} and {left} of its"
                    " rows are in the table; move the file aside after checking it")
    if cut_at is None and not batches:
        # Only the header: a run killed before its first batch committed. It holds no event.
        cut_at, reason = 0, "empty"
    if cut_at is None:
        return None
    remaining = [m for m in scan.members if m.end <= cut_at]
    removed = not any(m.meta.get("kind") == "batch" for m in remaining)
    if not check_mode:
        if removed:
            os.unlink(path)
            fsync_dir(os.path.dirname(path))
        else:
            truncate_file(path, cut_at)
    return {"path": path, "reason": reason, "rows": rows, "removed": removed}


def _meta_date(cutoff: str) -> datetime.date:
    # The cutoff recorded in a member, checked before it goes back into SQL: the file is not trusted.
    return datetime.datetime.strptime(str(cutoff)[:10], "%Y-%m-%d").date()


def archive_files(site_dir: str) -> list[str]:
    return sorted(os.path.join(site_dir, name) for name in os.listdir(site_dir)
                  if name.startswith(ARCHIVE_PREFIX) and name.endswith(ARCHIVE_SUFFIX)
                  and os.path.isfile(os.path.join(site_dir, name)))


# -- the trim ----------------------------------------------------------------------------------------------------
class Trim:
    def __init__(self, params: dict, check_mode: bool, warn) -> None:
        self.params = params
        self.check_mode = check_mode
        self.warn = warn
        self.site_dir = params["site_dir"]
        self.result = {"changed": False, "rows_to_trim": 0, "rows_archived": 0, "rows_deleted": 0, "batches": 0,
                       "max_batch_ms": 0.0, "avg_batch_ms": 0.0, "retries": 0, "vacuumed": False, "repaired": [],
                       "csv_size": 0}
        self._batch_ms_total = 0.0

    def run(self, today: datetime.date) -> dict:
        params = self.params
        started = time.monotonic()
        before = check_before(params["before"], params["keep_days"], today)
        operation_id = params["operation_id"] or "manual-" + datetime.datetime.now(
            datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")  # noqa: UP017 (runs on 3.8 hosts)
        if not OPERATION_ID_RE.match(operation_id):
            raise TrimError("operation_id must be letters, digits and . _ : @ - (at most 128 characters), "
                            f"got {operation_id!r}")
        for name, low in (("batch_size", 1), ("throttle_ms", 0), ("statement_timeout_ms", 1),
                          ("lock_timeout_ms", 1)):
            if params[name] < low:
                raise TrimError(f"{name} must be {low} or more, got {params[name]}")
        if not os.path.isdir(self.site_dir):
            raise TrimError(f"site dir {self.site_dir} does not exist")
        path = archive_path(self.site_dir, before, operation_id)
        self.result.update(csv_path=path, cutoff=cutoff_literal(before), operation_id=operation_id,
                           before=before.isoformat())

        # One trim per site at a time, even outside the playbook's site lock: the archive repair must not
        # cut the tail another live run is about to commit.
        guard = os.open(self.site_dir, os.O_RDONLY)
        try:
            try:
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise TrimError(f"another events trim is running on {self.site_dir}") from None
                # Some network file systems have no flock: the playbook's site lock still holds.
                self.warn(f"no advisory lock on {self.site_dir} ({exc.strerror or exc}): relying on the site lock")
            try:
                client = PgClient.for_site(self.site_dir)
            except (PostgresError, DatabaseConfigError) as exc:
                raise TrimError(str(exc)) from None
            with client:
                session = open_session(client, params["statement_timeout_ms"], params["lock_timeout_ms"])
                try:
                    self._trim(session, client, path, before)
                finally:
                    session.close()
        finally:
            os.close(guard)
        if os.path.exists(path):
            self.result["csv_size"] = os.path.getsize(path)
        self.result["duration"] = round(time.monotonic() - started, 3)
        if self.result["batches"]:
            self.result["avg_batch_ms"] = round(self._batch_ms_total / self.result["batches"], 1)
        self.result["changed"] = bool(self.result["rows_deleted"] or self.result["repaired"])
        return self.result

    def _room_first(self, session: PsqlSession, count: int) -> None:
        """Refuses (in check mode too: that is what the run would do) when the site dir cannot hold the
        archive, before a row is deleted."""
        heap_bytes, heap_rows = session.query(
            f"SELECT pg_relation_size('{TABLE}'::regclass), reltuples FROM pg_class"
            f" WHERE oid = '{TABLE}'::regclass")[0]
        needed, why = room.trim_needs(count, int(heap_bytes), float(heap_rows))
        free = room.free_bytes(self.site_dir)
        self.result["room"] = {"path": self.site_dir, "free_bytes": free, "needed_bytes": needed}
        refused = room.refusal(self.site_dir, free, needed, "this trim's archive", why,
                               "free space there or trim fewer days at a time (an earlier --before)")
        if refused:
            raise TrimError(refused)

    def _trim(self, session: PsqlSession, client: PgClient, path: str, before: datetime.date) -> None:
        params = self.params
        for existing in archive_files(self.site_dir):
            done = repair_archive(session, existing, self.check_mode)
            if done:
                self.result["repaired"].append(done)
                if not self.check_mode and done["reason"] != "empty":
                    what = "an uncommitted batch" if done["reason"] == "uncommitted" else "a half-written batch"
                    self.warn(f"{existing} ended with {what}; cut it off ({done['rows']} rows that are still in the"
                              " table go again)")
        cutoff = cutoff_literal(before)
        # One read-only scan fixes the work: the ids to walk and how many events go. It can be long on a big
        # table and blocks nobody, so it runs without the per-batch statement timeout.
        session.query("SET statement_timeout = 0")
        count, low, high = session.query(
            f"SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM {TABLE}"
            f" WHERE created_at < '{cutoff}'")[0]
        session.query(f"SET statement_timeout = {int(params['statement_timeout_ms'])}")
        self.result["rows_to_trim"] = int(count)
        if int(count):
            self._room_first(session, int(count))
        if self.check_mode or int(count) == 0:
            if self.check_mode:
                self.result["msg"] = (f"{count} events before {before.isoformat()} would be archived to {path}"
                                      " and deleted")
            else:
                self.result["msg"] = f"no event before {before.isoformat()}: nothing to trim"
            return
        header = self._header(session)
        fd, created = self._open_archive(path, header, before)
        try:
            self._batches(session, fd, path, int(low) - 1, int(high), cutoff)
        finally:
            os.close(fd)
        if created and self.result["batches"] == 0:
            # The events went meanwhile (another tool): leave no archive that holds none.
            os.unlink(path)
            fsync_dir(self.site_dir)
        batches = self.result["batches"]
        self.result["msg"] = (f"{self.result['rows_deleted']} events before {before.isoformat()} archived to {path}"
                              f" and deleted in {batches} batch{'' if batches == 1 else 'es'}")
        if params["vacuum"] and self.result["rows_deleted"]:
            self._vacuum(session)

    @staticmethod
    def _header(session: PsqlSession) -> bytes:
        result = session.step(f"COPY (SELECT * FROM {TABLE} LIMIT 0) TO STDOUT (FORMAT csv, HEADER)")
        if result.error is not None:
            raise TrimError(result.error)
        if not result.data.startswith(b"id,"):
            # Batches read each row's id from its first field.
            columns = result.data.decode("utf-8", "replace").strip()
            raise TrimError(f"{TABLE} does not start with an id column ({columns}): not a Flow Production Tracking"
                            " events table")
        return result.data

    def _open_archive(self, path: str, header: bytes, before: datetime.date) -> tuple[int, bool]:
        """The archive open for appending. A new one starts with the CSV header as its first member and is
        made durable (file and folder) before any batch; an existing one must have the same header."""
        if os.path.exists(path):
            scan = scan_archive(path)
            if scan.foreign or not scan.members:
                raise TrimError(f"{path} exists and is not an events trim archive: move it aside")
            if read_member(path, scan.members[0]) != header:
                raise TrimError(f"{path} was written for other columns than {TABLE} has now: use another operation_id")
            fd = os.open(path, os.O_WRONLY)
            os.lseek(fd, 0, os.SEEK_END)
            return fd, False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            write_all(fd, gzip_member(header, {"kind": "header", "table": TABLE, "before": before.isoformat(),
                                               "cutoff": cutoff_literal(before), "format": "csv"}))
            os.fsync(fd)
            fsync_dir(self.site_dir)
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        return fd, True

    def _batches(self, session: PsqlSession, fd: int, path: str, last: int, high: int, cutoff: str) -> None:
        """Walk the primary key from ``last`` (exclusive) to ``high``, one range of ``batch_size`` ids per
        transaction: each range's rows older than the cutoff are deleted and archived in one statement."""
        batch_size = self.params["batch_size"]
        throttle = self.params["throttle_ms"] / 1000.0
        attempts = 0
        size = os.lseek(fd, 0, os.SEEK_END)
        while last < high:
            started = time.monotonic()
            begun = session.step(
                f"BEGIN; SELECT txid_current(), coalesce((SELECT id FROM {TABLE} WHERE id > {last} AND id <= {high}"
                f" ORDER BY id OFFSET {batch_size - 1} LIMIT 1), {high})")
            copied = None
            builder = MemberBuilder()
            if begun.error is None:
                try:
                    xid, upper = (int(v) for v in begun.data.decode("ascii").split("|"))
                except ValueError:
                    raise TrimError(f"unexpected answer from psql: {begun.data[:200]!r}") from None
                copied = session.step(
                    f"COPY (DELETE FROM {TABLE} WHERE id > {last} AND id <= {upper} AND created_at < '{cutoff}'"
                    " RETURNING *) TO STDOUT (FORMAT csv)", sink=builder.add)
            failed = begun if begun.error is not None else copied
            if failed.error is not None:
                session.step("ROLLBACK")
                attempts, batch_size = self._retry_or_stop(failed, attempts, batch_size)
                continue
            rows = count_csv_records(builder.data())
            if rows:
                member = builder.finish({"kind": "batch", "xid": xid, "lo": last, "hi": upper, "rows": rows,
                                         "cutoff": cutoff})
                try:
                    write_all(fd, member)
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                    session.step("ROLLBACK")
                    raise TrimError(f"cannot write {path}: {exc.strerror or exc}; nothing of that batch was"
                                    " deleted") from None
            committed = self._commit(session, fd, path, size)
            if not committed:
                # COMMIT failed and the transaction is gone: the part just written must go too.
                os.ftruncate(fd, size)
                os.fsync(fd)
                attempts, batch_size = self._retry_or_stop(committed.step, attempts, batch_size)
                continue
            elapsed_ms = (time.monotonic() - started) * 1000.0
            attempts = 0
            last = upper
            if rows:
                size += len(member)
                self.result["rows_archived"] += rows
                self.result["rows_deleted"] += rows
                self.result["batches"] += 1
                self._batch_ms_total += elapsed_ms
                self.result["max_batch_ms"] = max(self.result["max_batch_ms"], round(elapsed_ms, 1))
                if throttle and last < high:
                    time.sleep(throttle)

    def _commit(self, session: PsqlSession, fd: int, path: str, size: int) -> _Committed:
        try:
            result = session.step("COMMIT")
        except TrimError as exc:
            # The session died around COMMIT: whether it committed is for the transaction's status to say.
            try:
                with PgClient.for_site(self.site_dir) as client:
                    fresh = open_session(client, self.params["statement_timeout_ms"], self.params["lock_timeout_ms"])
                    try:
                        done = repair_archive(fresh, path, False)
                    finally:
                        fresh.close()
            except (TrimError, PostgresError) as again:
                raise TrimError(f"{exc} during COMMIT, and the archive's last batch could not be checked ({again}):"
                                " run the trim again to finish and repair it") from None
            outcome = "did not commit and was cut off the archive" if done else "committed and is archived"
            raise TrimError(f"{exc} during COMMIT; the last batch {outcome}; run the trim again to finish") from None
        return _Committed(result)

    def _retry_or_stop(self, failed: StepResult, attempts: int, batch_size: int) -> tuple[int, int]:
        if failed.sqlstate not in RETRYABLE_SQLSTATES or attempts >= MAX_RETRIES:
            retried = f" after {attempts} retries" if attempts else ""
            raise TrimError(f"batch failed{retried}: {failed.error}")
        self.result["retries"] += 1
        time.sleep(min(0.5 * (attempts + 1), 5.0))
        return attempts + 1, max(1, batch_size // 2)

    def _vacuum(self, session: PsqlSession) -> None:
        # VACUUM takes a lock that does not block reads or writes; it may take long, hence no statement timeout.
        session.query("SET statement_timeout = 0")
        result = session.step(f"VACUUM (ANALYZE) {TABLE}")
        if result.error is None:
            self.result["vacuumed"] = True
        else:
            self.warn(f"VACUUM (ANALYZE) {TABLE} failed, the trim itself is complete: {result.error}")


class _Committed:
    """COMMIT's outcome: truthy when the transaction committed."""

    __slots__ = ("step",)

    def __init__(self, step: StepResult) -> None:
        self.step = step

    def __bool__(self) -> bool:
        return self.step.error is None


def main() -> None:
    module = site_module(
        argument_spec={
            "before": {"type": "str", "required": True},
            "keep_days": {"type": "int", "default": 30},
            "operation_id": {"type": "str"},
            "batch_size": {"type": "int", "default": 5000},
            "throttle_ms": {"type": "int", "default": 10},
            "statement_timeout_ms": {"type": "int", "default": 10000},
            "lock_timeout_ms": {"type": "int", "default": 500},
            "vacuum": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    trim = Trim(module.params, module.check_mode, module.warn)
    today = datetime.datetime.now(datetime.timezone.utc).date()  # noqa: UP017 (runs on 3.8 hosts)
    work = recorded_work(module, "events_trim", _summary)
    try:
        result = trim.run(today)
    except (TrimError, OSError) as exc:
        if isinstance(exc, OSError):
            message = f"{exc.filename or 'I/O error'}: {exc.strerror or exc}"
        else:
            message = str(exc)
        # What was done before the failure is real (and archived): report it with the error.
        partial = {k: v for k, v in trim.result.items() if k != "msg"}
        partial["changed"] = bool(partial["rows_deleted"] or partial["repaired"])
        module.fail_json(msg=message, **partial)
    except BaseException as exc:
        work.end(site_work.FAILED, f"stopped: {type(exc).__name__}: {exc}", _summary(trim.result))
        raise
    module.exit_json(**result)


def _summary(result: dict) -> dict:
    return {k: result.get(k) for k in ("rows_deleted", "rows_archived", "batches", "csv_path", "repaired")}


if __name__ == "__main__":
    main()
