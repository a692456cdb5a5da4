# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replaced databases: the undo of a restore or a sync.

A restore (or a sync-db into a site) swaps a freshly restored database in for the live one by renaming. The
database it replaces is kept, renamed ``<db>_replaced_<UTC time>`` (a name no other tool uses), instead of
being dropped: putting it back is another rename, exact and seconds away (``sec restore SITE --undo``). Its
database comment (JSON) says when and by which operation it was replaced, the backup that replaced it and
the release the site ran on it, so that an undo can switch that release back too.

Each site keeps its newest ``keep`` replaced databases; older ones are dropped only after a swap succeeded.
Fresh databases being prepared are named ``<db>_restore_<UTC time>``: one left behind (its restore was
killed) is dropped by the next restore of the site, which holds the site lock.

Pure standard library, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import json
import time

from ansible_collections.fpt.sec.plugins.module_utils.postgres import (
    PgClient,
    PostgresError,
    derived_name,
    quote_ident,
    quote_literal,
)
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

REPLACED = "_replaced_"
FRESH = "_restore_"
# A restore drill's scratch database (fpt.sec.db_drill): never swapped in, always dropped.
DRILL = "_drill_"
KIND = "replaced"


def stamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() if now is None else now))


def replaced_name(live: str, when: str) -> str:
    return derived_name(live, REPLACED + when)


def fresh_name(live: str, when: str) -> str:
    return derived_name(live, FRESH + when)


def drill_name(live: str, when: str) -> str:
    return derived_name(live, DRILL + when)


def drill_databases(client: PgClient, live: str, admin_db: str) -> list[dict]:
    """The site's drill scratch databases: {name, info} (info: the JSON comment the drill wrote, {} if none)."""
    rows = client.query(
        "SELECT d.datname, coalesce(shobj_description(d.oid, 'pg_database'), '') FROM pg_database d"
        f" WHERE d.datname LIKE {_like(live, DRILL)}", database=admin_db)
    found = []
    for name, comment in ((row + ["", ""])[:2] for row in rows):
        try:
            info = json.loads(comment) if comment else {}
        except ValueError:
            info = {}
        found.append({"name": name, "info": info if isinstance(info, dict) else {}})
    return found


def _like(live: str, infix: str) -> str:
    # derived_name may shorten the live name to fit 63 bytes: match on the prefix it keeps.
    prefix = derived_name(live, infix + "00000000000000")[: -len(infix + "00000000000000")]
    escaped = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return quote_literal(escaped + infix.replace("_", "\\_") + "%")


def note(client: PgClient, name: str, info: dict, admin_db: str) -> None:
    """Record on the replaced database what replaced it (its comment, JSON)."""
    text = json.dumps({"kind": KIND, **info}, sort_keys=True)
    client.execute([f"COMMENT ON DATABASE {quote_ident(name)} IS {quote_literal(text)}"], database=admin_db)


def listed(client: PgClient, live: str, admin_db: str) -> list[dict]:
    """The site's replaced databases, newest first: {name, size_bytes, replaced_at, operation_id, backup,
    release, by}."""
    rows = client.query(
        "SELECT d.datname, pg_database_size(d.oid), coalesce(shobj_description(d.oid, 'pg_database'), '')"
        f" FROM pg_database d WHERE d.datname LIKE {_like(live, REPLACED)} ORDER BY d.datname DESC",
        database=admin_db)
    found = []
    for name, size, comment in ((row + ["", "", ""])[:3] for row in rows):
        try:
            info = json.loads(comment) if comment else {}
        except ValueError:
            info = {}
        info = info if isinstance(info, dict) else {}
        found.append({"name": name, "size_bytes": int(size) if size.isdigit() else None,
                      "replaced_at": info.get("replaced_at") or _stamp_of(name),
                      "operation_id": info.get("operation_id"), "backup": info.get("backup"),
                      "release": info.get("release"), "by": info.get("by")})
    found.sort(key=lambda d: str(d["replaced_at"] or ""), reverse=True)
    return found


def _stamp_of(name: str) -> str | None:
    tail = name.rsplit(REPLACED, 1)[-1]
    if len(tail) != 14 or not tail.isdigit():
        return None
    return f"{tail[0:4]}-{tail[4:6]}-{tail[6:8]}T{tail[8:10]}:{tail[10:12]}:{tail[12:14]}Z"


def leftovers(client: PgClient, live: str, admin_db: str) -> list[str]:
    """Fresh databases of earlier restores that never reached their swap (killed, or a lost controller)."""
    rows = client.query(f"SELECT datname FROM pg_database WHERE datname LIKE {_like(live, FRESH)}",
                        database=admin_db)
    return [row[0] for row in rows if row]


def prune(client: PgClient, live: str, keep: int, admin_db: str, spare: str | None = None) -> list[str]:
    """Drop the replaced databases beyond the newest ``keep`` (``spare`` never); the names dropped."""
    dropped = []
    for entry in listed(client, live, admin_db)[max(0, keep):]:
        if entry["name"] == spare:
            continue
        client.drop_database(entry["name"], maintenance_db=admin_db)
        dropped.append(entry["name"])
    return dropped


def replaced_info(operation_id: str | None, backup: str | None, release: str | None, by: str) -> dict:
    return {"replaced_at": iso_utc(), "operation_id": operation_id, "backup": backup, "release": release, "by": by}


__all__ = ["DRILL", "KIND", "PostgresError", "drill_databases", "drill_name", "fresh_name", "leftovers", "listed",
           "note", "prune", "replaced_info", "replaced_name", "stamp"]
