"""Issue 27, unattended: schedules run through `sec schedule run-due` and a running `sec serve` (never both for one
occurrence), alerts reach a real SMTP server (aiosmtpd) and a real webhook receiver on loopback, and `/metrics`
answers in Prometheus' format behind the API's token."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from sec_wrapper import history
from tests.integration.conftest import Console, sec, site_by_name

pytestmark = pytest.mark.integration

STAGING = "staging.teststudio.com"


def _soon(seconds: float) -> tuple[str, datetime]:
    """An RRULE whose only occurrence today is `seconds` from now (then daily), and that moment."""
    moment = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    return f"DTSTART:{moment.strftime('%Y%m%dT%H%M%SZ')}\nRRULE:FREQ=DAILY", moment


def _scheduled(name: str) -> list[dict]:
    return [r for r in history.list_operations(site={STAGING, "com_teststudio_staging"})
            if r.get("user") == f"schedule:{name}"]


def _wait_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_backups(sandbox: dict) -> Iterator[None]:
    """The backups this test makes are removed after it (the others' stay as they were)."""
    folder = Path(site_by_name(sandbox, STAGING)["site_dir"]) / "db_backup"
    before = {p.name for p in folder.iterdir()}
    yield
    for entry in folder.iterdir():
        if entry.name not in before and entry.is_dir():
            subprocess.run(["rm", "-rf", str(entry)], check=False)


def _serve_with_scheduler(log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        server = subprocess.Popen(["sec", "serve", "--port", "0", "--refresh", "0", "--schedule-every", "1"],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while "sec console:" not in log.read_text():
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return server


def test_a_due_schedule_runs_once_through_run_due_and_once_through_serve(
        sandbox: dict, cluster: str, tmp_path: Path, own_backups: None) -> None:
    rule, moment = _soon(4)
    added = sec("schedule", "add", "by-timer", "--site", STAGING, "--operation", "backup", "--rrule", rule,
                "--keep", "50", "--label", "scheduled")
    assert "next run" in added.stdout
    sec("schedule", "add", "paused-one", "--site", STAGING, "--operation", "backup", "--rrule", rule, "--keep", "50")
    sec("schedule", "pause", "paused-one")
    try:
        # Before its time: nothing runs.
        early = json.loads(sec("schedule", "run-due", "--json").stdout)
        assert early["runs"] == [] and _scheduled("by-timer") == []
        _wait_until(moment)
        due = json.loads(sec("schedule", "run-due", "--json").stdout)
        assert [(r["schedule"], r["status"]) for r in due["runs"]] == [("by-timer", "successful")], due
        again = json.loads(sec("schedule", "run-due", "--json").stdout)
        assert again["runs"] == []
        runs = _scheduled("by-timer")
        assert len(runs) == 1 and runs[0]["status"] == "successful" and runs[0]["operation"] == "backup"
        assert runs[0]["via"] == "schedule" and runs[0]["arguments"].get("label") == "scheduled", runs[0]
        assert _scheduled("paused-one") == []
        listed = {s["name"]: s for s in json.loads(sec("schedule", "list", "--json").stdout)}
        assert listed["by-timer"]["last_run"]["status"] == "successful"
        assert listed["by-timer"]["next_run"].startswith((moment + timedelta(days=1)).strftime("%Y-%m-%d"))
        assert listed["paused-one"]["paused"] is True and listed["paused-one"]["next_run"] is None

        # A running `sec serve` and run-due in a loop race for the next schedule's occurrence: one run.
        rule, moment = _soon(5)
        sec("schedule", "add", "by-console", "--site", STAGING, "--operation", "backup", "--rrule", rule,
            "--keep", "50", "--label", "scheduled")
        server = _serve_with_scheduler(tmp_path / "serve.log")
        try:
            _wait_until(moment)
            racers = [subprocess.Popen(["sec", "schedule", "run-due", "--json"], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True) for _ in range(2)]
            outputs = [json.loads(p.communicate(timeout=300)[0]) for p in racers]
            deadline = time.monotonic() + 120
            while not (runs := _scheduled("by-console")) or any(history.still_running(r) for r in runs):
                assert time.monotonic() < deadline, "the scheduled backup did not end"
                time.sleep(0.5)
            time.sleep(2.5)  # two more turns of the console's scheduler: still one run
            runs = _scheduled("by-console")
            assert len(runs) == 1 and runs[0]["status"] == "successful", runs
            claimed_here = [r for out in outputs for r in out["runs"]]
            assert len(claimed_here) <= 1, claimed_here
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        assert _scheduled("paused-one") == []
    finally:
        for name in ("by-timer", "paused-one", "by-console"):
            sec("schedule", "remove", name, check=False)


class _Inbox:
    """A real SMTP server and a real webhook receiver on loopback, keeping what they receive."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[str] = []
        self.hooks: list[dict] = []
        self.hook_headers: list[str] = []
        inbox = self

        class Mailbox:
            async def handle_DATA(self, _server, _session, envelope):  # noqa: N802 (aiosmtpd's name)
                # The subject and the decoded text part (quoted-printable would cut long lines).
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                part = message.get_body(preferencelist=("plain",))
                inbox.mails.append(f"{message['subject']}\n{part.get_content() if part else ''}")
                return "250 OK"

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.hooks.append(json.loads(body))
                inbox.hook_headers.append(str(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.smtp_port = _free_port()
        self.smtp = Controller(Mailbox(), hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()
        self.http = HTTPServer(("127.0.0.1", 0), Hook)
        self.hook_port = self.http.server_port
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.smtp.stop()
        self.http.shutdown()

    def everything(self) -> str:
        return "\n".join(self.mails) + "\n" + json.dumps(self.hooks)


@pytest.fixture
def inbox() -> Iterator[_Inbox]:
    box = _Inbox()
    try:
        yield box
    finally:
        box.close()


def _messages_about(inbox: _Inbox, words: str) -> tuple[int, int]:
    """How many mails and webhook posts carry `words`."""
    return (sum(words in m for m in inbox.mails), sum(words in json.dumps(h) for h in inbox.hooks))


def test_alerts_reach_a_real_smtp_server_and_webhook_once_each_without_secrets(
        sandbox: dict, cluster: str, inbox: _Inbox, own_backups: None) -> None:
    site_dir = Path(site_by_name(sandbox, STAGING)["site_dir"])
    database_yml = site_dir / "shared" / "config" / "database.yml"
    db_password = str(yaml.safe_load(database_yml.read_text())["production"]["password"])
    hook_secret = "hook-pass-" + os.urandom(4).hex()
    mail_url = f"mailto://127.0.0.1:{inbox.smtp_port}?to=ops@example.com&from=sec@example.com"
    hook_url = f"json://sec:{hook_secret}@127.0.0.1:{inbox.hook_port}/hook"
    refused = sec("notify", "add", "nosuchscheme://example.com", check=False)
    assert refused.returncode != 0 and "apprise does not know the URL" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    sec("notify", "add", mail_url, "--on", "failed,stale-backup")
    sec("notify", "add", hook_url)
    try:
        listed = sec("notify", "list").stdout
        assert hook_secret not in listed and f"127.0.0.1:{inbox.hook_port}" in listed, listed

        # A failed operation: pinning a backup that is nowhere (it looked on the hosts, so it is recorded).
        failed = sec("backups", STAGING, "--pin", "20000101T000000Z_1.0.0", check=False)
        assert failed.returncode != 0
        op_id = history.list_operations(site={STAGING})[0]["id"]
        sec("schedule", "run-due")
        assert _messages_about(inbox, op_id) == (1, 1), inbox.everything()
        mail = next(m for m in inbox.mails if op_id in m)
        assert STAGING in mail and "backups" in mail and "There is no backup" in mail, mail
        hook = next(h for h in inbox.hooks if op_id in json.dumps(h))
        assert STAGING in hook["title"] + hook["message"] and "backups" in hook["title"], hook
        sec("schedule", "run-due")
        assert _messages_about(inbox, op_id) == (1, 1), "sent again at the next check"

        # A stale backup: starts once, is not repeated, clears once after a backup.
        sec("schedule", "add", "stale-watch", "--site", STAGING, "--operation", "backup", "--rrule",
            "FREQ=DAILY;BYHOUR=3", "--max-backup-age", "10s")
        sec("schedule", "pause", "stale-watch")  # watched, never run here
        newest = max(history.effective(r).get("ended") or "" for r in history.list_operations(
            site={STAGING, "com_teststudio_staging"}) if r.get("operation") == "backup"
            and history.effective(r).get("status") == "successful")
        _wait_until(datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(seconds=11))
        sec("schedule", "run-due")
        assert _messages_about(inbox, "stale-backup on staging") == (1, 1), inbox.everything()
        sec("schedule", "run-due")
        assert _messages_about(inbox, "stale-backup on staging") == (1, 1)
        sec("backup", STAGING, "--keep", "50")
        sec("schedule", "run-due")
        assert _messages_about(inbox, "cleared: stale-backup on staging") == (1, 1), inbox.everything()
        sec("schedule", "run-due")
        assert _messages_about(inbox, "cleared: stale-backup on staging") == (1, 1)

        everything = inbox.everything()
        assert db_password not in everything and hook_secret not in everything
        assert not re.search(r"(?i)password\s*[=:]\s*[^*\s]", everything), everything
    finally:
        sec("schedule", "remove", "stale-watch", check=False)
        for _ in range(2):
            sec("notify", "remove", "1", check=False)


def test_metrics_parse_and_need_the_token(sandbox: dict, cluster: str, console: Console, own_backups: None) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(console.url + "metrics", timeout=30)
    assert refused.value.code == 401
    sec("backup", STAGING, "--keep", "50")  # the newest backup anywhere: later than any the cache lists
    request = urllib.request.Request(console.url + "metrics", headers={"Authorization": f"Bearer {console.token}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read().decode()
        assert answer.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    backups = [s for s in families["sec_backup_last_success_timestamp_seconds"].samples
               if s.labels == {"cluster": cluster, "site": STAGING}]
    newest = next(history.effective(r) for r in history.list_operations(site={STAGING, "com_teststudio_staging"})
                  if r.get("operation") == "backup" and history.effective(r).get("status") == "successful")
    ended = datetime.fromisoformat(newest["ended"].replace("Z", "+00:00")).timestamp()
    assert len(backups) == 1 and abs(backups[0].value - ended) < 0.01, (backups, newest["ended"])
    sizes = [s for s in families["sec_backup_last_size_bytes"].samples if s.labels["site"] == STAGING]
    assert sizes and sizes[0].value == newest["result"]["dump_bytes"]
    statuses = {(s.labels["site"], s.labels["operation"]): s.value
                for s in families["sec_operation_last_status"].samples}
    assert statuses[(STAGING, "backup")] == 1
    totals = {(s.labels["operation"], s.labels["status"]): s.value for s in families["sec_operations"].samples
              if s.name == "sec_operations_total"}
    assert totals[("backup", "successful")] >= 1
    assert "sec_site_up" in families and "sec_host_free_bytes" in families
