# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade journal: what an upgrade in its maintenance window was doing, for whoever comes next.

``<site_dir>/tmp/sec-upgrade.json`` is written just before the site goes into maintenance and removed once
the site serves the new release (or was rolled back). While it exists, the site may be half-way through
an upgrade: its migrations partly applied, ``current`` on an intermediate release. The journal says how to
put it back::

    {"format": 1, "operation_id": "20240501T120000Z-ab12", "from": "8.0.0", "to": "8.2.0",
     "steps": ["8.1.2", "8.2.0"], "previous_link": "releases/8.0.0", "backup": "20240501T120002Z_8.0.0_...",
     "schema_before": ["20200101000000"], "phase": "window", "started": "...", "updated": "..."}

``phase`` is ``window`` (migrations and switches may be under way) or ``rolling_back`` (a rollback started
and did not finish). Both mean the same to a reader: roll back, from the top. Every rollback step is
idempotent (switch back to ``from``, restore ``backup`` only when the schema moved), so a rollback killed
in turn is simply run again.

The journal lives on the App server that holds the site lock (the first one), beside the lock.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import os

from ansible_collections.fpt.sec.plugins.module_utils import durable
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version

JOURNAL_RELATIVE_PATH = os.path.join("tmp", "sec-upgrade.json")
FORMAT = 1
PHASES = ("window", "rolling_back")
_MAX_BYTES = 1024 * 1024


class JournalError(Exception):
    """The journal cannot be read or written, or is not a journal. ``str()`` is one line."""


def journal_path(site_dir: str) -> str:
    return os.path.join(site_dir, JOURNAL_RELATIVE_PATH)


def validate(record: object) -> dict:
    """A journal record as written by new_record(); JournalError names what is wrong."""
    if not isinstance(record, dict):
        raise JournalError("the upgrade journal is not a JSON object")
    for key in ("from", "to", "steps", "phase"):
        if key not in record:
            raise JournalError(f"the upgrade journal has no {key!r}")
    try:
        Version(record["from"])
        Version(record["to"])
        for step in record["steps"]:
            Version(step)
    except (ValueError, TypeError) as exc:
        raise JournalError(f"the upgrade journal holds a bad version: {exc}") from None
    if record["phase"] not in PHASES:
        raise JournalError(f"the upgrade journal's phase {record['phase']!r} is not one of {', '.join(PHASES)}")
    return record


def new_record(operation_id: str | None, from_version: str, to_version: str, steps: list[str],
               backup: str | None, previous_link: str | None, schema_before: list[str] | None,
               phase: str = "window") -> dict:
    now = iso_utc()
    return validate({
        "format": FORMAT,
        "operation_id": operation_id,
        "from": str(Version(from_version)),
        "to": str(Version(to_version)),
        "steps": [str(Version(s)) for s in steps],
        "previous_link": previous_link,
        "backup": backup,
        "schema_before": sorted(schema_before) if schema_before is not None else None,
        "phase": phase,
        "started": now,
        "updated": now,
    })


def read(site_dir: str) -> dict | None:
    """The journal, None when there is none. An unreadable one raises: it must not be taken for none."""
    path = journal_path(site_dir)
    try:
        data = durable.read_state_json(path, _MAX_BYTES)
    except durable.UnreadableFile as exc:
        hint = ": look at it, then remove it by hand" if "valid JSON" in str(exc) else ""
        raise JournalError(f"{exc}{hint}") from None
    if data is None:
        return None
    try:
        return validate(data)
    except JournalError as exc:
        raise JournalError(f"{path}: {exc}") from None


def write(site_dir: str, record: dict) -> str:
    """Write the journal atomically and durably (it must survive the crash it is there for)."""
    validate(record)
    path = journal_path(site_dir)
    durable.write_state_json(path, record)
    return path


def remove(site_dir: str) -> bool:
    """Remove the journal; True when there was one."""
    return durable.remove_durably(journal_path(site_dir))
