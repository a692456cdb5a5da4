"""Alert conditions from the history and the cached state (real files in a data folder of the test's own):
stale backups, drills, disk; each sent once when it starts and once when it clears, and a target that did not
take a message is the only one tried again (issue 27)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sec_wrapper import alerts, history, schedules, store

pytestmark = pytest.mark.usefixtures("home")

SITE = "staging.example.com"


def _iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _world(home: Path) -> None:
    site = store.Site(name=SITE, reverse_name="com_example_staging", site_dir="/var/rails/x", role="staging",
                      app_hosts=["app1"])
    store.save_cluster(store.Cluster(name="studio", hosts=[store.Host(name="app1", address="10.0.0.1",
                                                                      roles=["app"])], sites=[site]))


def _schedule(name: str, operation: str, created: timedelta = timedelta(), **given: object) -> None:
    schedules.save(schedules.Schedule(name=name, site=SITE, cluster="studio", operation=operation,
                                      rrule="FREQ=DAILY", created=_iso(created), **given))  # type: ignore[arg-type]


def _record(operation: str, status: str, ended: timedelta, **extra: object) -> str:
    op_id = history.new_operation_id()
    history.operation_dir(op_id)
    history.write_record(op_id, {"id": op_id, "operation": operation, "site": SITE, "cluster": "studio",
                                 "status": status, "started": _iso(ended), "ended": _iso(ended), **extra})
    return op_id


def _cache(home: Path, free_bytes: int) -> None:
    path = home / "state" / "studio.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sites": {"com_example_staging": {
        "disk": [{"host": "app1", "path": "/var/rails/x", "free_bytes": free_bytes}]}}}))


def test_a_stale_backup_holds_until_a_newer_backup(home: Path) -> None:
    _world(home)
    _schedule("nightly", "backup", max_backup_age=3600)
    _record("backup", "successful", -timedelta(hours=2), result={"dump_bytes": 10})
    assert set(alerts._site_conditions()) == {"stale-backup:studio:staging.example.com"}
    _record("backup", "successful", -timedelta(minutes=5), result={"dump_bytes": 10})
    assert alerts._site_conditions() == {}


def test_a_failed_drill_or_none_passed_for_eight_days_holds(home: Path) -> None:
    _world(home)
    _schedule("weekly-drill", "drill", created=-timedelta(days=9))
    held = alerts._site_conditions()
    assert "no restore drill has passed for" in held["drill:studio:staging.example.com"]["words"]
    _record("drill", "successful", -timedelta(hours=1))
    assert alerts._site_conditions() == {}
    failed = _record("drill", "failed", -timedelta(minutes=1), message="row counts differ: password=hunter2")
    words = alerts._site_conditions()["drill:studio:staging.example.com"]["words"]
    assert failed in words and "password=***" in words and "hunter2" not in words


def test_low_disk_is_measured_against_the_last_backup(home: Path) -> None:
    _world(home)
    _schedule("nightly", "backup", max_backup_age=86400)
    _record("backup", "successful", -timedelta(minutes=1), result={"dump_bytes": 200 * 2**20})
    _cache(home, 100 * 2**20)
    assert set(alerts._site_conditions()) == {"disk:studio:app1:/var/rails/x"}
    _cache(home, 300 * 2**20)
    assert alerts._site_conditions() == {}


def test_each_condition_is_sent_once_and_an_undelivered_one_only_to_its_target(home: Path,
                                                                               monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    _world(home)
    alerts.add_target("json://127.0.0.1:9/good", ["stale-backup"])
    alerts.add_target("json://127.0.0.1:9/down", ["stale-backup"])
    _schedule("nightly", "backup", max_backup_age=3600)
    _record("backup", "successful", -timedelta(hours=2), result={"dump_bytes": 10})
    sent: list[tuple[str, str]] = []

    def deliver(event: str, title: str, body: str, only: list[dict] | None = None) -> list[str]:
        # The network part is apprise's; here the "down" target never takes anything.
        urls = [t["url"] for t in only or [] if event in t["on"]]
        sent.extend((url.rsplit("/", 1)[1], title) for url in urls)
        return [url for url in urls if url.endswith("/down")]

    monkeypatch.setattr(alerts, "send", deliver)
    alerts.check_and_send()
    assert sent == [("good", "sec: stale-backup on staging.example.com"),
                    ("down", "sec: stale-backup on staging.example.com")]
    sent.clear()
    alerts.check_and_send()  # still stale: not sent again, but owed to the target that did not take it
    assert sent == [("down", "sec: stale-backup on staging.example.com")]
    sent.clear()
    _record("backup", "successful", -timedelta(minutes=1), result={"dump_bytes": 10})
    alerts.check_and_send()
    assert ("good", "sec: cleared: stale-backup on staging.example.com") in sent
    assert [s for s in sent if s[0] == "good"] == [("good", "sec: cleared: stale-backup on staging.example.com")]


def test_a_target_url_can_come_on_stdin_and_is_listed_without_its_password(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from sec_wrapper.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("json://sec:s3cret-token@127.0.0.1:9/hook\n"))
    assert main(["notify", "add", "-", "--on", "failed"]) == 0
    assert main(["notify", "list"]) == 0
    shown = capsys.readouterr().out
    assert "127.0.0.1:9/hook" in shown and "s3cret-token" not in shown
    assert json.loads((home / "notify.json").read_text())["targets"][0]["url"].endswith("@127.0.0.1:9/hook")
    assert oct((home / "notify.json").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["notify", "add", "-"]) == 2
    assert "no URL on stdin" in capsys.readouterr().err
