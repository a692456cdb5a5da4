"""A site's state: what the probe module reads on a web head (a site dir on disk) and how sec joins the heads'
answers into one badge that is never "serving" while a head is in maintenance, unhealthy, on another release,
fenced or silent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.modules import site_state as module

from sec_wrapper import site_state, store

pytestmark = pytest.mark.usefixtures("home")


def head(host: str = "app1", **parts: object) -> dict:
    answer = {"host": host, "app": True, "error": None,
              "maintenance": {"on": False, "message": None, "since": None},
              "release": {"name": "8.0.0", "version": "8.0.0", "broken": None},
              "health": {"url": "http://127.0.0.1/status", "status": 200, "problem": None}}
    answer.update(parts)
    return answer


def state(*heads: dict, **parts: object) -> dict:
    found = {"heads": list(heads), "version_on_record": "8.0.0", "lock": None, "fence": None,
             "settings": {"pending": False}, "backups": {"count": 1, "newest": {"age_seconds": 60}},
             "disk": [{"host": "app1", "path": "/var/rails", "free_bytes": 50, "total_bytes": 100}]}
    found.update(parts)
    return found


def test_every_head_serving_is_the_only_green() -> None:
    assert site_state.badge(state(head(), head("api1")))["state"] == "serving"


@pytest.mark.parametrize(("heads", "extra", "expected"), [
    ((head(), head("api1", maintenance={"on": True, "message": "m", "since": "t"})), {}, "maintenance"),
    ((head(health={"status": 503, "problem": "answered 503 (expected 200)"}),), {}, "unhealthy"),
    ((head(), head("api1", release={"name": "8.1.0", "version": "8.1.0", "broken": None})), {}, "mixed releases"),
    ((head(), head("api1", error="127.0.0.12:22: Connection refused")), {}, "unreachable"),
    ((head(release={"name": "9.0.0", "version": None, "broken": "current -> releases/9.0.0 is missing"}),), {},
     "fenced"),
    ((head(),), {"fence": {"reason": "a head was lost", "hosts": ["api1"]}}, "fenced"),
    ((head(),), {"lock": {"description": "operation X (started T)"}}, "busy"),
    ((head(health=None),), {}, "not checked"),
])
def test_a_site_is_never_green_while_a_head_is_not_serving(heads: tuple, extra: dict, expected: str) -> None:
    found = site_state.badge(state(*heads, **extra))
    assert found["state"] == expected and found["attention"], found


def test_attention_names_what_needs_doing() -> None:
    found = site_state.badge(state(head(), settings={"pending": True, "reason": "the settings changed"},
                                   backups={"count": 1, "newest": {"age_seconds": 3 * 86400}},
                                   disk=[{"host": "app1", "path": "/var/rails", "free_bytes": 5, "total_bytes": 100}]))
    text = " | ".join(found["attention"])
    assert found["state"] == "serving"
    assert "redeploy pending" in text and "the newest backup is 3 days old" in text and "has 0 MB free" in text
    assert "no backup yet" in site_state.badge(state(head(), backups={"count": 0, "newest": None}))["attention"]


def _cluster() -> store.Cluster:
    cluster = store.Cluster.from_dict({
        "name": "studio",
        "hosts": [{"name": "app1", "address": "127.0.0.11", "roles": ["app"]},
                  {"name": "app2", "address": "127.0.0.12", "roles": ["app"]}],
        "sites": [{"name": "prod.teststudio.com", "reverse_name": "com_teststudio_prod", "role": "production",
                   "version": "8.0.0", "site_dir": "/var/rails/com_teststudio_prod",
                   "app_hosts": ["app1", "app2"]}]})
    return cluster


def test_a_silent_head_leaves_the_others_answers_readable() -> None:
    cluster = _cluster()
    read = {"name": "prod.teststudio.com", **head(), "settings": {"persisted": {"site_name": "Prod"}},
            "backups": {"count": 0, "newest": None}, "database": {"size_bytes": 5, "events_estimate": 7}}
    joined = site_state._join(cluster, cluster.sites[0], {"app2": {"sites": {"com_teststudio_prod": read}}},
                              {"app1": "127.0.0.11:22: Connection refused", "app2": None}, "2026-12-07T00:00:00Z")
    assert [h["error"] for h in joined["heads"]] == ["127.0.0.11:22: Connection refused", None]
    assert joined["settings"]["persisted"] == {"site_name": "Prod"}  # read from the head that answered
    assert joined["database"]["events_estimate"] == 7
    assert joined["badge"]["state"] == "unreachable"


def test_host_errors_come_from_the_runs_events() -> None:
    events = [
        {"event": "runner_on_ok", "event_data": {"host": "app1", "task": "t", "resolved_action": site_state.MODULE,
                                                 "res": {"sites": {}}}},
        {"event": "runner_on_unreachable", "event_data": {"host": "app2", "task": "t",
                                                          "res": {"msg": "Connection refused", "unreachable": True}}},
    ]
    errors = site_state._host_errors(events, {"app1": {"sites": {}}}, {"app2": "127.0.0.12:22"})
    assert errors["app1"] is None and errors["app2"].startswith("127.0.0.12:22: ") and "refused" in errors["app2"]


# -- the module's reads on a site dir ---------------------------------------------------------------------------
def _site_dir(tmp_path: Path) -> Path:
    site = tmp_path / "com_teststudio_prod"
    for sub in ("releases/8.0.0", "shared/config", "tmp", "db_backup"):
        (site / sub).mkdir(parents=True)
    (site / "releases/8.0.0/VERSION").write_text("8.0.0\n")
    (site / "shared/config/site_settings.json").write_text(json.dumps({"site_name": "Prod"}))
    os.symlink("releases/8.0.0", site / "current")
    return site


def test_the_module_reads_maintenance_and_its_message_as_typed(tmp_path: Path) -> None:
    site = _site_dir(tmp_path)
    assert module.maintenance(str(site)) == {"on": False, "message": None, "since": None}
    (site / "tmp/maintenance.html").write_text(
        "<!DOCTYPE html><html><body><h1>prod is under maintenance</h1>\n<p>Back at 10 {{ soon }} &amp; more</p>")
    found = module.maintenance(str(site))
    assert found["on"] and found["message"] == "Back at 10 {{ soon }} & more" and found["since"]
    (site / "tmp/maintenance.html").write_text("<html>our own page</html>")
    assert module.maintenance(str(site))["message"] == "(a custom maintenance page)"


def test_the_module_reads_a_site_without_touching_it(tmp_path: Path) -> None:
    site = _site_dir(tmp_path)
    before = sorted((p, p.stat().st_mtime_ns) for p in site.rglob("*") if not p.is_symlink())
    found = module.read_site({"name": "prod.teststudio.com", "site_dir": str(site)}, False, 1, 0)
    assert found["release"] == {"name": "8.0.0", "version": "8.0.0", "broken": None}
    assert found["staged_releases"] == ["8.0.0"]
    assert found["lock"] is None and found["fence"] is None and found["health"] is None
    assert found["settings"]["persisted"] == {"site_name": "Prod"} and found["settings"]["pending"] is False
    assert found["backups"] == {"count": 0, "newest": None, "items": [], "total_bytes": 0}
    assert found["disk"][0]["path"] == str(site) and found["disk"][0]["free_bytes"] > 0
    assert "database" not in found
    assert sorted((p, p.stat().st_mtime_ns) for p in site.rglob("*") if not p.is_symlink()) == before
    assert "error" in module.read_site({"name": "x", "site_dir": str(tmp_path / "missing")}, False, 1, 0)
