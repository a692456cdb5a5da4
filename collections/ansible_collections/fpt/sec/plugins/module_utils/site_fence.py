# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repair mark: a site whose web heads may not all match its database, until `sec site repair` aligns them.

An operation that loses a web head after the database's schema moved (an upgrade's or a restore's window)
cannot tell what that head serves. It writes ``<site_dir>/tmp/sec-repair.json`` on every server of the site it
still reaches::

    {"format": 1, "operation_id": "...", "operation": "upgrade", "at": "2026-12-06T22:40:00Z",
     "hosts": ["app2"], "reason": "app2 stopped answering over SSH after its switch to 8.2.0"}

While the mark is on any server of the site, every operation that changes the site refuses up front, naming
``sec site repair SITE`` (playbooks/plays/reach_site_hosts.yml reads it), and the lost head keeps its
maintenance page: it was put there before the migrations and only the repair removes it.

A site is *broken* when ``current`` points at a release that is not there. It is refused the same way.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import os

from ansible_collections.fpt.sec.plugins.module_utils.durable import (
    UnreadableFile,
    read_state_json,
    remove_durably,
    write_state_json,
)
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

MARK_RELATIVE_PATH = os.path.join("tmp", "sec-repair.json")
FORMAT = 1
_MAX_BYTES = 256 * 1024


class FenceError(Exception):
    """The mark cannot be read or written. ``str()`` is one line."""


def mark_path(site_dir: str) -> str:
    return os.path.join(site_dir, MARK_RELATIVE_PATH)


def new_mark(operation_id: str | None, operation: str | None, hosts: list[str], reason: str) -> dict:
    return {"format": FORMAT, "operation_id": operation_id, "operation": operation, "at": iso_utc(),
            "hosts": sorted(set(hosts)), "reason": reason}


def read(site_dir: str) -> dict | None:
    """The mark, None when there is none. An unreadable mark still fences: it is returned with its error."""
    path = mark_path(site_dir)
    try:
        data = read_state_json(path, _MAX_BYTES)
    except UnreadableFile as exc:
        return {"format": FORMAT, "hosts": [], "reason": str(exc)}
    if data is None:
        return None
    if not isinstance(data, dict):
        return {"format": FORMAT, "hosts": [], "reason": f"{path} is not a JSON object"}
    data.setdefault("hosts", [])
    data.setdefault("reason", "an earlier operation lost a server of the site")
    return data


def write(site_dir: str, mark: dict) -> str:
    """Write the mark atomically and durably; a mark already there keeps its hosts (they add up)."""
    path = mark_path(site_dir)
    old = read(site_dir)
    if old is not None and isinstance(old.get("hosts"), list):
        mark = dict(mark, hosts=sorted(set(mark["hosts"]) | {str(h) for h in old["hosts"]}))
        if old.get("reason") and old["reason"] not in mark["reason"]:
            mark["reason"] = f"{old['reason']}; then {mark['reason']}"
    try:
        write_state_json(path, mark)
    except OSError as exc:
        raise FenceError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def remove(site_dir: str) -> bool:
    """Remove the mark; True when there was one."""
    try:
        return remove_durably(mark_path(site_dir))
    except OSError as exc:
        raise FenceError(f"cannot remove {mark_path(site_dir)}: {exc.strerror or exc}") from None


def broken_current(site_dir: str) -> str | None:
    """Why the site serves nothing (``current -> releases/X is missing``), None when ``current`` is sound
    or absent (a site dir without ``current`` is not a deployed site, discovery's business)."""
    current = os.path.join(site_dir, "current")
    if not os.path.islink(current):
        return None
    target = os.readlink(current)
    if os.path.isdir(current):
        return None
    return f"current -> {target} is missing"


def refusal(site_name: str, server: str | None, mark: dict | None, broken: str | None,
            allow: list[str] | tuple[str, ...] = ()) -> str | None:
    """The one line refusing a change to the site, None when it may go on."""
    where = f" on {server}" if server else ""
    if mark is not None and "repair_needed" not in allow:
        since = f"; operation {mark['operation_id']}" if mark.get("operation_id") else ""
        return (f"{site_name} needs repair ({mark['reason']}{since}): nothing was changed; "
                f"run sec site repair {site_name} first")
    if broken is not None and "broken" not in allow:
        return (f"{site_name} is broken{where} ({broken}): nothing was changed; "
                f"run sec site repair {site_name} first")
    return None
