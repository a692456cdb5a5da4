"""Alerts: a person is told when something stops, through Apprise's URLs (mailto://, json://, slack://, ...).

Targets are `$SEC_HOME/notify.json` (0600: a URL may carry a password). The conditions are checked by `sec
serve`'s scheduler and by `sec schedule run-due`; each condition is sent once when it starts and once when it
clears (`$SEC_HOME/alerts/state.json` remembers which are on), never at every check. A notification that cannot
be delivered is logged (`$SEC_HOME/alerts/log`) and tried again at the next check; it never fails an operation.
No secret goes into an alert: error lines are masked, and the bodies carry names, ids and times only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso

from sec_wrapper import history, schedules, site_state, store
from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.redact import mask_text

EVENTS = ("failed", "stale-backup", "drill", "disk")
DEFAULT_MAX_BACKUP_AGE = 26 * 3600
DRILL_MAX_AGE = 8 * 86400
# Free space under what the last backup needed, times this, is an alert: room for the next one and slack.
DISK_MARGIN = 1.25
_FAILED = ("failed", "interrupted", "canceled")


def _notify_path() -> Path:
    return sec_home() / "notify.json"


def _state_path() -> Path:
    return sec_home() / "alerts" / "state.json"


def _log_path() -> Path:
    return sec_home() / "alerts" / "log"


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except ValueError:
        raise SecError(f"{path} is damaged (not JSON): fix or remove it") from None


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _config() -> dict[str, Any]:
    data = _read_json(_notify_path(), {})
    return {"targets": list(data.get("targets") or []), "console_url": data.get("console_url")}


def _apprise_for(urls: list[str]) -> Any:
    import apprise  # imported when needed: `sec` starts faster without it

    bundle = apprise.Apprise()
    for url in urls:
        bundle.add(url)
    return bundle


def shown_url(url: str) -> str:
    """The URL with its password hidden, for lists and logs."""
    import apprise

    bundle = apprise.Apprise()
    if bundle.add(url) and len(bundle) == 1:
        return bundle[0].url(privacy=True)
    return mask_text(url)


def add_target(url: str, events: list[str] | None) -> dict[str, Any]:
    events = list(events or EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise SecError(f"--on {unknown[0]!r}: choose among {', '.join(EVENTS)}")
    import apprise

    if not apprise.Apprise().add(url):
        scheme = url.split("://", 1)[0] if "://" in url else url[:20]
        raise SecError(f"apprise does not know the URL {scheme}://...: give one of Apprise's notations, e.g. "
                       "mailto://user:password@example.com or json://host:port/path")
    config = _config()
    if any(t["url"] == url for t in config["targets"]):
        raise SecError("that URL is already a target: see `sec notify list`")
    target = {"url": url, "on": events, "added": history.now_iso()}
    config["targets"].append(target)
    _write_json(_notify_path(), config)
    state = _read_state()
    state.setdefault("watermark", history.now_iso())  # failures before the first target are not news
    _write_state(state)
    return target


def list_targets() -> list[dict[str, Any]]:
    return [{"index": i + 1, "url": shown_url(t["url"]), "on": t["on"], "added": t.get("added")}
            for i, t in enumerate(_config()["targets"])]


def remove_target(which: str) -> None:
    config = _config()
    targets = config["targets"]
    index = int(which) - 1 if which.isdigit() else next((i for i, t in enumerate(targets) if t["url"] == which), -1)
    if not 0 <= index < len(targets):
        raise SecError(f"no notification target {which}: see `sec notify list` for their numbers")
    del targets[index]
    _write_json(_notify_path(), config)


def set_console_url(url: str | None) -> None:
    config = _config()
    if url and not url.startswith(("http://", "https://")):
        raise SecError(f"{url!r}: give the console's address as http(s)://host[:port]/")
    config["console_url"] = url.rstrip("/") + "/" if url else None
    _write_json(_notify_path(), config)


def _log(line: str) -> None:
    path = _log_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{history.now_iso()} {mask_text(line)}\n")


def send(event: str, title: str, body: str, only: list[dict[str, Any]] | None = None) -> list[str]:
    """Sends to every target (of `only`, else all) that takes `event`; returns the URLs that did not take it."""
    targets = [t for t in (only if only is not None else _config()["targets"]) if event in t.get("on", EVENTS)]
    owed = []
    for target in targets:
        try:
            ok = bool(_apprise_for([target["url"]]).notify(title=mask_text(title), body=mask_text(body)))
        except Exception as exc:  # a sender's own failure is logged, never raised into an operation
            ok = False
            _log(f"{shown_url(target['url'])}: {type(exc).__name__}: {history.one_line(exc)}")
        if not ok:
            owed.append(target["url"])
            _log(f"could not deliver {event!r} ({title}) to {shown_url(target['url'])}; tried again next check")
    return owed


def send_test() -> tuple[int, int]:
    """(delivered, targets) of a test message to every target."""
    targets = [{**t, "on": ["failed"]} for t in _config()["targets"]]
    owed = send("failed", "sec: test notification", "A test from `sec notify test`: this target receives sec's "
                "alerts.", only=targets)
    return len(targets) - len(owed), len(targets)


# ---- conditions -------------------------------------------------------------------------------------------

def _read_state() -> dict[str, Any]:
    return _read_json(_state_path(), {})


def _write_state(state: dict[str, Any]) -> None:
    _write_json(_state_path(), state)


def _link(op_id: str) -> str:
    url = _config()["console_url"]
    return f"\n{url}operations/{op_id}" if url else ""


def failed_operations(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Operations that ended failed or interrupted since the watermark and were not yet announced."""
    since = state.get("watermark") or history.now_iso()
    announced = set(state.get("announced") or [])
    found = []
    for record in history.list_operations():
        if (record.get("started") or "") < since:
            break  # newest first: the rest is older
        record = history.effective(record)
        if record.get("status") in _FAILED and record.get("id") not in announced:
            found.append(record)
    return found


def _site_conditions() -> dict[str, dict[str, Any]]:
    """Every stale-backup, drill and disk condition that holds now, keyed, with its words."""
    now = time.time()
    holding: dict[str, dict[str, Any]] = {}
    by_site: dict[tuple[str, str], list[schedules.Schedule]] = {}
    for schedule in schedules.list_schedules():
        by_site.setdefault((schedule.cluster, schedule.site), []).append(schedule)
    for (cluster_name, site_name), owned in sorted(by_site.items()):
        try:
            cluster = store.load_cluster(cluster_name)
        except SecError:
            continue
        site = cluster.site(site_name)
        if site is None:
            continue
        names = {site.name, site.reverse_name}
        records = history.list_operations(site=names, cluster=cluster_name)
        cached = site_state.site_state(cluster_name, site_name) or {}
        backup_schedules = [s for s in owned if s.operation == "backup"]
        if backup_schedules:
            max_age = min(s.max_backup_age or DEFAULT_MAX_BACKUP_AGE for s in backup_schedules)
            newest = newest_backup_epoch(records, cached)
            age = now - newest if newest else None
            if age is None or age > max_age:
                holding[f"stale-backup:{cluster_name}:{site.name}"] = {
                    "event": "stale-backup", "site": site.name,
                    "words": f"{site.name}: the newest good backup is "
                             f"{'missing' if age is None else history.format_duration(age) + ' old'}, more than "
                             f"the {history.format_duration(max_age)} allowed"}
        if any(s.operation == "drill" for s in owned):
            drills = [history.effective(r) for r in records if r.get("operation") == "drill"]
            ended = [r for r in drills if r.get("status") not in ("running", "skipped")]
            passed = [r for r in ended if r.get("status") == "successful"]
            since_schedule = min(epoch_of_iso(s.created) or now for s in owned if s.operation == "drill")
            last_pass = epoch_of_iso(passed[0].get("ended") or "") if passed else None
            if ended and ended[0].get("status") != "successful":
                holding[f"drill:{cluster_name}:{site.name}"] = {
                    "event": "drill", "site": site.name,
                    "words": f"{site.name}: the last restore drill ({ended[0].get('id')}) {ended[0].get('status')}: "
                             f"{mask_text(history.one_line(ended[0].get('message') or ''))}"}
            elif now - (last_pass or since_schedule) > DRILL_MAX_AGE:
                holding[f"drill:{cluster_name}:{site.name}"] = {
                    "event": "drill", "site": site.name,
                    "words": f"{site.name}: no restore drill has passed for "
                             f"{history.format_duration(now - (last_pass or since_schedule))}"}
        needed = last_backup_bytes(records)
        for disk in cached.get("disk") or []:
            if needed and disk.get("free_bytes") is not None and disk["free_bytes"] < needed * DISK_MARGIN:
                holding[f"disk:{cluster_name}:{disk['host']}:{disk['path']}"] = {
                    "event": "disk", "site": site.name,
                    "words": f"{disk['host']}: {disk['path']} has {disk['free_bytes'] // 2**20} MB free, the last "
                             f"backup of {site.name} needed {needed // 2**20} MB"}
    return holding


def newest_backup_epoch(records: list[dict[str, Any]], cached: dict[str, Any]) -> float | None:
    """When the newest good backup was made: the last successful backup in the history, or the newest the
    hosts listed at the last state read (a backup made from AWX or by hand counts too)."""
    found = []
    for record in records:
        if record.get("operation") == "backup" and record.get("status") == "successful":
            found.append(epoch_of_iso(record.get("ended") or record.get("started") or ""))
            break
    newest = ((cached.get("backups") or {}).get("newest") or {})
    if newest.get("state") != "damaged":
        found.append(epoch_of_iso(newest.get("started") or ""))
    found = [f for f in found if f]
    return max(found) if found else None


def last_backup_bytes(records: list[dict[str, Any]]) -> int | None:
    for record in records:
        if record.get("operation") == "backup" and record.get("status") == "successful":
            result = record.get("result") or {}
            size = result.get("dump_bytes") or result.get("size")
            return int(size) if isinstance(size, (int, float)) else None
    return None


def check_and_send(say: Callable[[str], None] = lambda _line: None) -> list[dict[str, Any]]:
    """Sends what started or cleared since the last check, and what could not be delivered before. Returns
    what was tried: key, event (started/cleared/failed), delivered, targets."""
    if not _config()["targets"]:
        return []
    state = _read_state()
    state.setdefault("watermark", history.now_iso())
    state.setdefault("announced", [])
    state.setdefault("active", {})
    outbox: list[dict[str, Any]] = list(state.get("pending") or [])
    for record in failed_operations(state):
        error = mask_text(history.one_line(record.get("message") or "no message was recorded"))
        who = record.get("user") or "?"
        outbox.append({"key": f"operation:{record['id']}", "event": "failed", "change": "failed",
                       "title": f"sec: {record.get('operation')} of {record.get('site') or record.get('cluster')} "
                                f"{record.get('status')}",
                       "body": f"Operation {record['id']}: {record.get('operation')} of "
                               f"{record.get('site') or '-'} (cluster {record.get('cluster') or '-'}), started by "
                               f"{who}, {record.get('status')}.\nLast error: {error}{_link(record['id'])}"})
        state["announced"].append(record["id"])
    holding = _site_conditions()
    active = state["active"]
    for key, condition in holding.items():
        if key not in active:
            active[key] = {"since": history.now_iso(), **condition}
            outbox.append({"key": key, "event": condition["event"], "change": "started",
                           "title": f"sec: {condition['event']} on {condition['site']}",
                           "body": condition["words"]})
    for key in [k for k in active if k not in holding]:
        condition = active.pop(key)
        outbox.append({"key": key, "event": condition["event"], "change": "cleared",
                       "title": f"sec: cleared: {condition['event']} on {condition['site']}",
                       "body": f"Cleared: {condition['words']} (since {condition.get('since')})"})
    sent, pending = [], []
    targets = _config()["targets"]
    for message in outbox:
        # A message still owed from an earlier check goes only to the targets that did not take it.
        only = [t for t in targets if t["url"] in message["owed"]] if "owed" in message else targets
        owed = send(message["event"], message["title"], message["body"], only=only)
        tried = [t for t in only if message["event"] in t.get("on", EVENTS)]
        sent.append({"key": message["key"], "event": message["change"], "delivered": len(tried) - len(owed),
                     "targets": len(tried)})
        if owed:
            pending.append({**message, "owed": owed})
            say(f"alert {message['key']}: {len(owed)} of {len(tried)} targets did not take it; tried again next "
                "check")
    state["pending"] = pending[-100:]
    state["announced"] = state["announced"][-2000:]
    _write_state(state)
    return sent
