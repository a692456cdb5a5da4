"""Text from people is data, never a template (issue 21).

Each Jinja payload goes through every string input that reaches a playbook, through each front end: the
`sec` CLI, the console's forms, the JSON API and a plain `ansible-playbook -e` run. No payload may run (no
marker file appears, `{{ 7 * 7 }}` never becomes 49) and the text arrives as typed where it is shown: the
maintenance page, the settings file, the operation's record. Inputs that a playbook would refuse (a backup
label, a trim date) are refused with one line before any operation is recorded.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sec_wrapper import history
from tests.integration.conftest import ROOT, Console, ansible_env, http_get, sec, site_by_name
from tests.integration.test_web_api import login, wait_for_end

pytestmark = pytest.mark.integration
STAGING = "staging.teststudio.com"
# The three payloads of the issue; MARKER becomes a file path that must never exist.
PAYLOADS = {
    "expression": "{{ lookup('pipe', 'touch MARKER') }}",
    "statement": "{% for x in [1] %}{{ lookup('pipe','touch MARKER') }}{% endfor %}",
    "arithmetic": "{{ 7 * 7 }}",
}


@pytest.fixture(scope="module")
def marker_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="inj-", dir="/tmp"))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def payloads(marker_dir: Path) -> Iterator[list[str]]:
    """The three payloads, each with its own marker file; after the test, no marker may exist."""
    yield [PAYLOADS[name].replace("MARKER", str(marker_dir / name)) for name in sorted(PAYLOADS)]
    assert not list(marker_dir.iterdir()), f"a payload ran as a template: {list(marker_dir.iterdir())}"


@pytest.fixture
def payload(payloads: list[str]) -> str:
    """The three payloads in one text: each goes through every input in one pass (a layer that templated any
    part would change the text or run a marker), at a third of the time of one pass per payload. The one
    setting that is free text (site_name) holds at most 100 characters: it gets each payload in turn."""
    return " ".join(payloads)


def maintenance_text(sandbox: dict) -> str:
    """The message on the staging site's maintenance page, as a reader sees it."""
    code, body = http_get(sandbox, STAGING, "/")
    assert code == 503, body
    return html.unescape(re.search(r"<p>(.*)</p>", body, re.DOTALL).group(1))


def settings_file(sandbox: dict) -> Path:
    return Path(site_by_name(sandbox, STAGING)["site_dir"]) / "shared" / "config" / "site_settings.json"


@pytest.fixture
def staging_put_back(sandbox: dict, cluster: str) -> Iterator[None]:
    """Whatever a test did, staging ends out of maintenance with its settings file as it was."""
    before = settings_file(sandbox).read_text()
    yield
    sec("maintenance", STAGING, "off", check=False)
    settings_file(sandbox).write_text(before)


def newest_record() -> dict:
    newest = history.list_operations()[0]
    return json.loads((history.operation_dir(newest["id"]) / history.RECORD).read_text())


def operation_ids() -> set[str]:
    return {r["id"] for r in history.list_operations()}


def test_cli_inputs_are_data(payload: str, payloads: list[str], sandbox: dict, cluster: str, staging_put_back: None,
                             sec_home: Path) -> None:
    sec("maintenance", STAGING, "on", "--message", payload)
    assert maintenance_text(sandbox) == payload
    assert newest_record()["arguments"]["message"] == payload
    sec("maintenance", STAGING, "off")

    sec("advanced", "run", "maintenance", STAGING, "state=on", f"notice={payload}")
    assert maintenance_text(sandbox) == payload
    sec("maintenance", STAGING, "off")

    for one in payloads:
        sec("site", "settings", STAGING, "--set", f"site_name={one}")
        assert json.loads(settings_file(sandbox).read_text())["site_name"] == one

    # Inputs a playbook (or the CLI) would refuse: one line, nothing recorded.
    before = operation_ids()
    for argv in (("backup", STAGING, "--label", payload),
                 ("trim-events", STAGING, "--before", payload, "--yes"),
                 ("restore", STAGING, payload),
                 ("upgrade", STAGING, "--to", payload, "--yes"),
                 ("sync-db", "prod.teststudio.com", payload, "--yes"),
                 ("sync-media", "prod.teststudio.com", payload),
                 ("drill", STAGING, payload),
                 ("backups", STAGING, "--pin", payload),
                 ("backups", STAGING, "--unpin", payload)):
        refused = sec(*argv, check=False)
        assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, (argv, refused.stderr)
    assert operation_ids() == before

    # A schedule stores its inputs for later runs: they are checked when it is added, and nothing is stored.
    daily = ("--site", STAGING, "--operation", "backup", "--rrule", "FREQ=DAILY")
    for argv in (("schedule", "add", payload, *daily),
                 ("schedule", "add", "injected", "--site", STAGING, "--operation", "backup", "--rrule", payload),
                 ("schedule", "add", "injected", *daily, "--label", payload),
                 ("schedule", "add", "injected", *daily, "--timezone", payload)):
        refused = sec(*argv, check=False)
        assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, (argv, refused.stderr)
    assert not list((sec_home / "schedules").glob("*.json"))

    # Discovery's own inputs reach the App server's apache2 as data too.
    app = sandbox["app_server"]
    sec("cluster", "create", "injected", "--app-server", app["address"], "--port", str(app["port"]), "--user",
        app["user"], "--key", app["key"], "--apache-env", f"SEC_TEST_ENV={payload}", "--apache-define",
        "SEC_TEST_DEFINE")
    sec("cluster", "remove", "injected")

    # A stored host field: every later operation builds its inventory from it.
    clusters = sec_home / "clusters" / f"{cluster}.json"
    stored = clusters.read_text()
    data = json.loads(stored)
    data["hosts"][0]["user"] = payload
    clusters.write_text(json.dumps(data))
    try:
        sec("maintenance", STAGING, "off", check=False)  # fails: no such SSH user; must not run the payload
    finally:
        clusters.write_text(stored)


def test_api_and_console_form_inputs_are_data(payload: str, payloads: list[str], sandbox: dict, cluster: str,
                                              console: Console, staging_put_back: None) -> None:
    client, csrf = login(console)
    headers = {"X-CSRF-Token": csrf}

    answer = client.post(f"/api/sites/{STAGING}/maintenance", json={"state": "on", "message": payload},
                         headers=headers)
    assert answer.status_code == 202, answer.text
    record = wait_for_end(client, answer.json()["id"])
    assert record["status"] == "successful" and record["arguments"]["message"] == payload, record
    assert maintenance_text(sandbox) == payload

    answer = client.post(f"/sites/{STAGING}/run/maintenance", data={"state": "off", "csrf": csrf})
    assert answer.status_code == 200, answer.text
    wait_for_end(client, str(answer.url).rstrip("/").rsplit("/", 1)[1])
    answer = client.post(f"/sites/{STAGING}/run/maintenance", data={"state": "on", "message": payload,
                                                                    "csrf": csrf})
    assert answer.status_code == 200, answer.text
    op_id = str(answer.url).rstrip("/").rsplit("/", 1)[1]
    assert wait_for_end(client, op_id)["status"] == "successful"
    assert maintenance_text(sandbox) == payload

    answer = client.post("/advanced", data={"module": "maintenance", "site": STAGING, "opt_state": "on",
                                            "opt_notice": payload, "csrf": csrf})
    assert answer.status_code == 200, answer.text
    op_id = str(answer.url).rstrip("/").rsplit("/", 1)[1]
    assert wait_for_end(client, op_id)["status"] == "successful"
    assert maintenance_text(sandbox) == payload

    for one in payloads:
        answer = client.post(f"/api/sites/{STAGING}/settings", json={"settings": {"site_name": one}},
                             headers=headers)
        assert answer.status_code in (200, 202), answer.text
        if answer.status_code == 202:
            wait_for_end(client, answer.json()["id"])
        assert json.loads(settings_file(sandbox).read_text())["site_name"] == one
    typed = payloads[-1]  # the settings file holds it now

    # The settings form: one field per key, the changes previewed (nothing written), then saved.
    form_text = typed + " (form)"  # a change to preview
    client.post(f"/sites/{STAGING}/refresh", data={"csrf": csrf})  # the form shows the settings as read now
    answer = client.post(f"/sites/{STAGING}/settings", data={"step": "preview", "csrf": csrf,
                                                            "setting.site_name": form_text})
    assert answer.status_code == 200 and 'id="preview"' in answer.text, answer.text
    assert json.loads(settings_file(sandbox).read_text())["site_name"] == typed
    updates = html.unescape(re.search(r'name="updates" value="([^"]*)"', answer.text).group(1))
    assert json.loads(updates) == {"site_name": form_text}
    answer = client.post(f"/sites/{STAGING}/settings", data={"step": "save", "updates": updates, "csrf": csrf})
    assert answer.status_code == 200, answer.text
    assert json.loads(settings_file(sandbox).read_text())["site_name"] == form_text

    # Refused inputs through the API: 400 with one line, no operation recorded.
    before = operation_ids()
    for operation, body in (("backup", {"label": payload}), ("trim-events", {"before": payload})):
        answer = client.post(f"/api/sites/{STAGING}/{operation}", json=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert "\n" not in answer.json()["error"]
    assert operation_ids() == before


def test_plain_ansible_playbook_extra_vars_are_data(payload: str, payloads: list[str], sandbox: dict, inventory: Path,
                                                    staging_put_back: None) -> None:
    def playbook(name: str, extra: dict) -> None:
        done = subprocess.run(["ansible-playbook", "-i", str(inventory), f"playbooks/{name}", "-e",
                               json.dumps(extra)], capture_output=True, text=True, env=ansible_env(), cwd=ROOT,
                              stdin=subprocess.DEVNULL, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    playbook("maintenance.yml", {"site": STAGING, "state": "on", "message": payload})
    assert maintenance_text(sandbox) == payload
    playbook("advanced/run_module.yml", {"site": STAGING, "module": "maintenance",
                                         "module_args": {"state": "on", "notice": payload + " (advanced)"}})
    assert maintenance_text(sandbox) == payload + " (advanced)"
    for one in payloads:
        playbook("site_settings.yml", {"site": STAGING, "settings": {"site_name": one}})
        assert json.loads(settings_file(sandbox).read_text())["site_name"] == one
    # key=value extra vars, as typed on a command line
    done = subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/maintenance.yml", "-e",
                           f"site={STAGING} state=on", "-e", f'message="{payload}"'], capture_output=True,
                          text=True, env=ansible_env(), cwd=ROOT, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert maintenance_text(sandbox) == payload


def test_a_playbook_run_without_the_callback_stops_before_using_any_extra_var(inventory: Path, tmp_path: Path,
                                                                              marker_dir: Path) -> None:
    """Another ansible.cfg (an AWX execution environment's, say) that does not enable the callback."""
    text = PAYLOADS["expression"].replace("MARKER", str(marker_dir / "no-callback"))
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {ROOT / 'collections'}\n")
    env = {**ansible_env(), "ANSIBLE_CONFIG": str(config)}
    done = subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/maintenance.yml", "-e",
                           json.dumps({"site": text, "state": "on"})], capture_output=True, text=True, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode != 0
    assert "fpt.sec.untemplated_extra_vars is not enabled" in done.stdout
    assert not list(marker_dir.iterdir())
