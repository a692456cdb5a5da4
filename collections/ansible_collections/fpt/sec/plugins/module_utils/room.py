# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Room first: what an operation will write, against the free space where it writes, before it starts.

A refusal gives both numbers and the fix in one line (``/var/rails/x/db_backup has 1.2 GB free, this backup
needs about 3.4 GB ...``; sec names the host), and changes nothing. The estimates err on the generous side: running out
half-way costs more than a refusal a user can answer by freeing space.

Pure standard library, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import os

# A compressed directory dump of a site's database is well under half its size; a first backup (no earlier
# one to go by) is estimated at that half. Later ones at the last one's size plus a quarter (data grows).
FIRST_DUMP_RATIO = 0.5
GROWTH = 1.25
MARGIN = 64 * 1024 * 1024


def nearest_existing(path: str) -> str:
    """``path``, or its nearest parent that exists."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    return probe


def free_bytes(path: str) -> int:
    """Bytes free for an unprivileged writer on the file system holding ``path`` (or its nearest parent)."""
    stat = os.statvfs(nearest_existing(path))
    return stat.f_bavail * stat.f_frsize


def human(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def backup_needs(last_dump_bytes: int | None, database_bytes: int | None) -> tuple[int, str]:
    """(bytes, why) a new backup of the site needs in its db_backup folder."""
    if last_dump_bytes:
        return int(last_dump_bytes * GROWTH) + MARGIN, f"the last backup took {human(last_dump_bytes)}"
    if database_bytes:
        return int(database_bytes * FIRST_DUMP_RATIO) + MARGIN, f"the database is {human(database_bytes)}"
    return MARGIN, "no earlier backup nor database size to go by"


# gzip level 1 CSV of event rows, against their heap size: about a third in practice; half errs generous.
TRIM_CSV_RATIO = 0.5
# When the table was never analysed (no row estimate), a generous size for one event's heap tuple.
EVENT_ROW_BYTES = 400


def trim_needs(rows: int, heap_bytes: int | None, heap_rows: float | None) -> tuple[int, str]:
    """(bytes, why) the archive of a trim of ``rows`` events needs, from the table's heap size per row."""
    per_row = heap_bytes / heap_rows if heap_bytes and heap_rows and heap_rows > 0 else EVENT_ROW_BYTES
    return (int(rows * per_row * TRIM_CSV_RATIO) + MARGIN,
            f"{rows} events of about {human(per_row)} each in the table, compressed")


def refusal(path: str, free: int, needed: int, what: str, why: str, fix: str) -> str | None:
    """The one-line refusal when ``free`` is short of ``needed``, else None."""
    if free >= needed:
        return None
    return f"{path} has {human(free)} free, {what} needs about {human(needed)} ({why}): {fix}; nothing was changed"


def postgres_data_dir(port: int | None) -> str | None:
    """The data directory of the PostgreSQL server of this host listening on ``port`` (default 5432), from its
    running postmaster (``-D DIR`` on its command line, confirmed by DIR/postmaster.pid); None when the
    database runs on another host or cannot be told."""
    wanted = str(port or 5432)
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            continue
        if not argv or not os.path.basename(argv[0]).startswith("postgres") or "-D" not in argv[:-1]:
            continue
        data_dir = argv[argv.index("-D") + 1]
        try:
            with open(os.path.join(data_dir, "postmaster.pid"), encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        if len(lines) > 3 and lines[3].strip() == wanted:
            return data_dir
    return None


# The DB server is this host when the site's database.yml names one of these (or nothing: the socket).
LOCAL_DB_HOSTS = ("localhost", "127.0.0.1", "::1", "")


def for_new_database(client, live: str | None, admin_db: str, size: int, what: str, why: str, fix: str) -> dict:
    """Room first for a new database made like ``live`` (a restore's fresh one, a drill's scratch one), of
    about ``size`` bytes: it lands in the live database's tablespace, else the server's data directory.

    Measured here when the DB server runs on this host: {checked, path, free_bytes, needed_bytes} plus
    ``refused`` (the one-line refusal) when short. Otherwise {checked: false, needed_bytes, port, location,
    what, why, fix}, for a playbook to check on the DB server with fpt.sec.room. ``client`` is a
    postgres.PgClient (not imported: this file stays free of the PostgreSQL helpers)."""
    needed = int(size * GROWTH) + MARGIN
    location = client.database_location(live, maintenance_db=admin_db) if live else None
    local = (client.host or "") in LOCAL_DB_HOSTS
    data_dir = (location or postgres_data_dir(client.port)) if local else None
    if data_dir is None:
        return {"checked": False, "needed_bytes": needed, "port": client.port or 5432, "location": location,
                "what": what, "why": why, "fix": fix, "not_checked_because": "the DB server is not on this host"}
    free = free_bytes(data_dir)
    found = {"checked": True, "path": data_dir, "free_bytes": free, "needed_bytes": needed}
    refused = refusal(data_dir, free, needed, what, why, fix)
    if refused:
        found["refused"] = refused
    return found
