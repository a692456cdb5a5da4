"""The state of a cluster's sites, read cheaply: one `fpt.sec.site_state` call per web head (no lock, not an
operation), kept in `$SEC_HOME/state/<cluster>.json` with the time it was read.

`sec site status`, the console's dashboard, its settings and backups pages and `sec serve`'s background
refresh all read it through here. Each site's state joins its heads' answers: the status badge is never
"serving" while a head is in maintenance, unhealthy, on another release, fenced or silent.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso, iso_utc

from sec_wrapper import history, runner, store
from sec_wrapper.host_probe import web_heads
from sec_wrapper.inventory import cluster_inventory, endpoints
from sec_wrapper.paths import sec_home

PLAYBOOK = "site_state.yml"
MODULE = "fpt.sec.site_state"
# What a sysadmin expects of a nightly backup: one a day, with a couple of hours' slack.
BACKUP_MAX_AGE = 26 * 3600
LOW_FREE_RATIO = 0.10
# What each head's own line shows; the site-wide parts (settings, backups, database) are kept once.
_HEAD_KEYS = ("maintenance", "release", "health", "fence", "lock", "read_at")

# One probe of a cluster at a time per process: a page's "refresh" and the background loop share it.
_probing: dict[str, threading.Lock] = {}
_probing_guard = threading.Lock()


def cache_path(cluster: str) -> Path:
    return sec_home() / "state" / f"{cluster}.json"


def cached(cluster: str) -> dict[str, Any] | None:
    try:
        data = json.loads(cache_path(cluster).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_cache(cluster: str, data: dict[str, Any]) -> None:
    path = cache_path(cluster)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _cluster_lock(cluster: str) -> threading.Lock:
    with _probing_guard:
        return _probing.setdefault(cluster, threading.Lock())


def probe(cluster_name: str, site: str | None = None) -> dict[str, Any]:
    """Reads the cluster's sites (or one site) on their heads now, updates the cache, returns it."""
    cluster = store.load_cluster(cluster_name)
    wanted = cluster.site(site) if site else None
    inventory = cluster_inventory(cluster)
    with _cluster_lock(cluster.name):
        started = time.monotonic()
        events = runner.run_read(PLAYBOOK, inventory, {"site": wanted.name} if wanted else {})
        answers = history.task_results(events, MODULE)
        hosts = _host_errors(events, answers, endpoints(inventory))
        data = cached(cluster.name) or {"cluster": cluster.name, "sites": {}, "hosts": {}}
        read_at = iso_utc()
        for each in cluster.sites:
            if wanted and each.name != wanted.name:
                continue
            data["sites"][each.reverse_name] = _join(cluster, each, answers, hosts, read_at)
        data["hosts"].update({h: {"error": e, "read_at": read_at} for h, e in hosts.items()})
        data.update(cluster=cluster.name, as_of=read_at, read_seconds=round(time.monotonic() - started, 2))
        _write_cache(cluster.name, data)
    return data


def _host_errors(events: list[dict[str, Any]], answers: dict[str, dict[str, Any]],
                 where: dict[str, str]) -> dict[str, str | None]:
    """{host: None (answered) or why not} for every host the play reached for."""
    errors: dict[str, str | None] = {}
    for row in history.task_rows(events):
        if row["action"] == MODULE or row["status"] == "unreachable":
            if row["status"] in ("failed", "unreachable"):
                errors[row["host"]] = f"{where.get(row['host'], row['host'])}: {row['msg']}"
            else:
                errors.setdefault(row["host"], None)
    for host in answers:
        errors.setdefault(host, None)
    return errors


def _first(values: list[Any]) -> Any:
    return next((v for v in values if v not in (None, {}) and not (isinstance(v, dict) and "error" in v)), None)


def _join(cluster: store.Cluster, site: store.Site, answers: dict[str, dict[str, Any]],
          host_errors: dict[str, str | None], read_at: str) -> dict[str, Any]:
    heads, read, app_read = [], [], []
    for name in web_heads(cluster, site):
        mine = ((answers.get(name) or {}).get("sites") or {}).get(site.reverse_name)
        error = host_errors.get(name) or (mine or {}).get("error")
        if mine is None and error is None:
            error = "not read (the host was not in the last probe)"
        heads.append({"host": name, "app": name in site.app_hosts, "error": error,
                      **{k: v for k, v in (mine or {}).items() if k in _HEAD_KEYS}})
        if not error:
            read.append({**mine, "host": name})
            if name in site.app_hosts:
                app_read.append(read[-1])
    state = {
        "name": site.name, "reverse_name": site.reverse_name, "role": site.role, "cluster": cluster.name,
        "read_at": read_at, "version_on_record": site.version, "heads": heads,
        "lock": _first([h.get("lock") for h in read]),
        "fence": _first([h.get("fence") for h in read]),
        "settings": _first([h.get("settings") for h in read]),
        "backups": _first([h.get("backups") for h in app_read]),
        "database": _first([h.get("database") for h in read]),
        "staged_releases": next((h.get("staged_releases") for h in app_read), []),
        "disk": [{"host": h["host"], **d} for h in read for d in h.get("disk") or []],
    }
    state["badge"] = badge(state)
    return state


def _age_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def badge(state: dict[str, Any]) -> dict[str, Any]:
    """{state, label, attention}: the worst of the heads' states first; "serving" only when every head was
    read, answers through its vhost, runs the same release and is neither in maintenance nor fenced."""
    heads = state["heads"]
    attention: list[str] = []
    kinds: list[str] = []
    for head in heads:
        host = head["host"]
        if head["error"]:
            kinds.append("unreachable")
            attention.append(f"{host}: {head['error']}")
            continue
        maintenance = head.get("maintenance") or {}
        if maintenance.get("on"):
            kinds.append("maintenance")
            attention.append(f"{host}: in maintenance since {maintenance.get('since')}: {maintenance.get('message')}")
        release = head.get("release") or {}
        if release.get("broken"):
            kinds.append("fenced")
            attention.append(f"{host}: {release['broken']}")
        health = head.get("health")
        if health is None:
            kinds.append("not checked")
            attention.append(f"{host}: no health URL was discovered, so its health is not checked")
        elif health.get("error") or health.get("problem"):
            if not maintenance.get("on"):
                kinds.append("unhealthy")
            attention.append(f"{host}: {health.get('problem') or health.get('error')}")
    if state.get("fence"):
        kinds.append("fenced")
        fenced_hosts = ", ".join(state["fence"].get("hosts") or [])
        attention.append(f"fenced: {state['fence'].get('reason')} (hosts {fenced_hosts})")
    versions = {(h.get("release") or {}).get("version") for h in heads if not h["error"]}
    if len(versions) > 1:
        kinds.append("mixed releases")
        attention.append("the heads run different releases: " + ", ".join(
            f"{h['host']} {(h.get('release') or {}).get('version')}" for h in heads if not h["error"]))
    elif versions and state.get("version_on_record") and state["version_on_record"] not in versions:
        attention.append(f"runs {next(iter(versions))} but the cluster file says {state['version_on_record']}: "
                         "refresh it with Connect (sec cluster connect)")
    if state.get("lock"):
        kinds.append("busy")
        attention.append(f"held by {state['lock'].get('description')}")
    settings = state.get("settings") or {}
    if settings.get("pending"):
        attention.append(f"redeploy pending: {settings.get('reason')}")
    backups = state.get("backups") or {}
    newest = backups.get("newest")
    if backups and not newest:
        attention.append("no backup yet")
    elif newest and (newest.get("age_seconds") or 0) > BACKUP_MAX_AGE:
        attention.append(f"the newest backup is {_age_text(newest['age_seconds'])} old")
    for disk in state.get("disk") or []:
        if disk.get("total_bytes") and disk["free_bytes"] < LOW_FREE_RATIO * disk["total_bytes"]:
            attention.append(f"{disk['host']}: {disk['path']} has {disk['free_bytes'] // 2**20} MB free")
    order = ["unreachable", "fenced", "unhealthy", "mixed releases", "maintenance", "busy", "not checked"]
    worst = next((k for k in order if k in kinds), "serving")
    return {"state": worst, "label": worst, "attention": attention}


def site_state(cluster_name: str, site_name: str) -> dict[str, Any] | None:
    """The cached state of one site, None when it was never read."""
    data = cached(cluster_name) or {}
    cluster = store.load_cluster(cluster_name)
    site = cluster.site(site_name)
    return (data.get("sites") or {}).get(site.reverse_name)


def age_seconds(state: dict[str, Any] | None) -> float | None:
    when = epoch_of_iso(state.get("read_at") or "") if state else None
    return None if when is None else max(0.0, time.time() - when)


class Refresher:
    """`sec serve`'s background refresh: every cluster's sites every `every` seconds (None: only when woken),
    and at once when a page asks (`wake`). One probe at a time, so the console's process never loads the hosts
    with parallel reads."""

    def __init__(self, every: float | None = 60.0) -> None:
        self.every = every
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sec-state-refresh", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        # Without a period the first read waits for a page to ask; with one it starts at once.
        if self.every is None:
            self._wait()
        while not self._stop.is_set():
            self._read_all()
            self._wait()

    def _wait(self) -> None:
        self._wake.wait(self.every)
        self._wake.clear()

    def _read_all(self) -> None:
        for cluster in store.list_clusters():
            if self._stop.is_set():
                return
            try:
                probe(cluster.name)
                self.last_error = None
            except Exception as exc:  # a refresh that fails must not end the loop; the page says so
                self.last_error = f"{cluster.name}: {type(exc).__name__}: {history.one_line(exc)}"
