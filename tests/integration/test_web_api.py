"""The console's JSON API against the sandbox, through a real `sec serve`: an operation started over HTTP is
the CLI's operation, recorded the same way, with the logged-in user as its "who"; no secret leaks."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import httpx2
import pytest

from sec_wrapper import history
from tests.integration.conftest import Console, sec

pytestmark = pytest.mark.integration
PROD = "prod.teststudio.com"
STAGING = "staging.teststudio.com"


def login(console: Console) -> tuple[httpx2.Client, str]:
    client = httpx2.Client(base_url=console.url, timeout=60, follow_redirects=True)
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"username": console.user, "password": console.password, "csrf": csrf})
    assert answer.status_code == 200 and f'id="user">{console.user}<' in answer.text  # followed to Clusters
    csrf = re.search(r'name="csrf" value="([^"]+)"', answer.text).group(1)
    return client, csrf


def wait_for_end(client: httpx2.Client, op_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = client.get(f"/api/operations/{op_id}").json()
        if record["status"] != "running":
            return record
        assert time.monotonic() < deadline, record
        time.sleep(0.5)


def test_backup_over_the_api_is_the_clis_operation_run_by_the_logged_in_user(
        cluster: str, console: Console, sec_home: Path) -> None:
    client, csrf = login(console)
    answer = client.post(f"/api/sites/{PROD}/backup", json={"label": "web"}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202, answer.text
    op_id = answer.json()["id"]
    assert history.ID_RE.match(op_id)
    record = wait_for_end(client, op_id)
    assert record["status"] == "successful", record
    assert record["user"] == "alice" and record["operation"] == "backup" and record["site"] == PROD
    assert record["arguments"]["label"] == "web"
    assert record["result"]["name"] and "web" in record["result"]["name"]  # the CLI's --json document
    log = client.get(f"/api/operations/{op_id}/log").json()
    assert log["status"] == "successful" and "PLAY RECAP" in log["stdout"]

    # The same operation from the CLI: the same kind of record, field for field; only the who differs.
    cli_id = json.loads(sec("backup", STAGING, "--json").stdout)["operation"]
    cli_record = json.loads((history.operation_dir(cli_id) / history.RECORD).read_text())
    web_record = json.loads((history.operation_dir(op_id) / history.RECORD).read_text())
    assert set(cli_record) == set(web_record)
    for key in ("operation", "playbook", "cluster", "host", "status"):
        assert cli_record[key] == web_record[key], key
    assert cli_record["user"] != "alice"
    both = {r["id"] for r in client.get("/api/operations", params={"operation": "backup"}).json()}
    assert {op_id, cli_id} <= both

    # A bearer token reads the same documents.
    bearer = httpx2.Client(base_url=console.url, headers={"Authorization": f"Bearer {console.token}"})
    assert bearer.get(f"/api/operations/{op_id}").json()["user"] == "alice"
    assert {s["name"] for s in bearer.get("/api/sites").json()} >= {PROD, STAGING}
    assert any(c["name"] == cluster for c in bearer.get("/api/clusters").json())

    # No password or token in the server's log, the history, the data folder or any page's source.
    pages = [client.get(p).text for p in ("/", f"/clusters/{cluster}", f"/sites/{PROD}", "/operations",
                                          f"/operations/{op_id}", "/hosts", "/releases")]
    for secret in (console.password, console.token):
        assert secret not in console.log.read_text()
        for page in pages:
            assert secret not in page
        for path in sec_home.rglob("*"):
            if path.is_file() and "sandbox" not in path.relative_to(sec_home).parts[:1]:
                assert secret.encode() not in path.read_bytes(), path


def test_api_refuses_a_production_trim_until_the_name_is_typed(cluster: str, console: Console) -> None:
    client, csrf = login(console)
    before = set(history.all_ids())
    answer = client.post(f"/api/sites/{PROD}/trim-events", json={"before": "2000-01-01", "confirm": "prod"},
                         headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 400 and "type the site's name (prod.teststudio.com)" in answer.json()["error"]
    assert set(history.all_ids()) == before
    answer = client.post(f"/api/sites/{PROD}/trim-events", json={"before": "2000-01-01", "confirm": PROD},
                         headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202, answer.text
    record = wait_for_end(client, answer.json()["id"])
    assert record["status"] == "successful" and record["result"]["rows_deleted"] == 0


def test_maintenance_over_the_api_takes_its_state_by_name(cluster: str, console: Console, sandbox: dict) -> None:
    from tests.integration.conftest import http_get

    client = httpx2.Client(base_url=console.url, headers={"Authorization": f"Bearer {console.token}"}, timeout=60)
    try:
        answer = client.post(f"/api/sites/{STAGING}/maintenance", json={"state": "on", "message": "web test"})
        assert answer.status_code == 202, answer.text
        assert wait_for_end(client, answer.json()["id"])["status"] == "successful"
        code, body = http_get(sandbox, STAGING)
        assert code == 503 and "web test" in body
    finally:
        answer = client.post(f"/api/sites/{STAGING}/maintenance", json={"state": "off"})
        assert wait_for_end(client, answer.json()["id"])["status"] == "successful"
    assert http_get(sandbox, STAGING)[0] == 200
    answer = client.post(f"/api/sites/{STAGING}/maintenance", json={"state": "sideways"})
    assert answer.status_code == 400 and "invalid choice: 'sideways'" in answer.json()["error"]


def test_a_cluster_is_removed_and_created_again_over_the_api(cluster: str, console: Console, sandbox: dict) -> None:
    from sec_wrapper import store

    app = sandbox["app_server"]
    keys = store.keys_dir()
    shutil.copyfile(app["key"], keys / "sandbox_app")
    (keys / "sandbox_app").chmod(0o600)
    client = httpx2.Client(base_url=console.url, headers={"Authorization": f"Bearer {console.token}"}, timeout=60)
    try:
        assert client.delete(f"/api/clusters/{cluster}").json() == {"removed": cluster}
        assert not store.cluster_exists(cluster)
        answer = client.post("/api/clusters", json={"name": cluster, "app_server": app["address"],
                                                    "port": app["port"], "user": app["user"],
                                                    "key": "sandbox_app"})
        assert answer.status_code == 202, answer.text
        record = wait_for_end(client, answer.json()["id"])
        assert record["status"] == "successful" and record["user"] == "alice", record
        assert {s["name"] for s in client.get("/api/sites", params={"cluster": cluster}).json()} >= {PROD, STAGING}
        hosts = [h for h in client.get("/api/hosts").json() if h["cluster"] == cluster]
        assert [h["address"] for h in hosts] == [app["address"]] and hosts[0]["key"]  # a copy of the chosen key
    finally:  # later tests need the cluster
        if not store.cluster_exists(cluster):
            sec("cluster", "create", cluster, "--app-server", app["address"], "--port", str(app["port"]),
                "--user", app["user"], "--key", app["key"])


def test_restore_over_the_api_is_the_clis_and_asks_for_the_name_on_production(cluster: str,
                                                                             console: Console) -> None:
    client, csrf = login(console)
    headers = {"X-CSRF-Token": csrf}
    answer = client.post(f"/api/sites/{STAGING}/backup", json={"label": "web-restore"}, headers=headers)
    made = wait_for_end(client, answer.json()["id"])
    assert made["status"] == "successful", made
    backup = made["result"]["name"]
    before = set(history.all_ids())
    answer = client.post(f"/api/sites/{PROD}/restore", json={"backup": backup, "force": True}, headers=headers)
    assert answer.status_code == 400 and "type the site's name (prod.teststudio.com)" in answer.json()["error"]
    assert set(history.all_ids()) == before  # refused before anything ran
    answer = client.post(f"/api/sites/{STAGING}/restore", json={"backup": backup}, headers=headers)
    assert answer.status_code == 202, answer.text
    restored = wait_for_end(client, answer.json()["id"])
    assert restored["status"] == "successful" and restored["operation"] == "restore", restored
    assert restored["user"] == "alice" and restored["arguments"]["backup"] == backup


def test_a_site_marked_for_repair_refuses_changes_and_the_consoles_repair_clears_it(
        cluster: str, console: Console, sandbox: dict) -> None:
    """The repair mark an upgrade or a restore leaves when it loses a web head: every change refuses naming
    `sec site repair`, a backup still runs, and the console's Repair (the CLI's operation) clears it."""
    from tests.integration.conftest import http_get, site_by_name

    mark = Path(site_by_name(sandbox, STAGING)["site_dir"], "tmp/sec-repair.json")
    mark.write_text(json.dumps({"format": 1, "hosts": ["app9"], "operation_id": "test-op",
                                "reason": "app9 stopped answering over SSH during the upgrade to 8.1.0"}))
    try:
        refused = sec("redeploy", STAGING, check=False)
        said = refused.stderr.strip().splitlines()[-1]
        assert refused.returncode != 0 and f"run sec site repair {STAGING} first" in said, refused.stderr
        assert "app9 stopped answering" in said and "nothing was changed" in said, said
        sec("backup", STAGING, "--keep", "0")  # a backup only reads the database: it still runs
        client, csrf = login(console)
        page = client.get(f"/sites/{STAGING}").text
        assert 'id="op-repair"' in page
        answer = client.post(f"/api/sites/{STAGING}/repair", json={}, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 202, answer.text
        record = wait_for_end(client, answer.json()["id"])
        assert record["status"] == "successful" and record["operation"] == "site repair", record
        assert "app9 stopped answering" in record["result"]["message"], record["result"]
        assert not mark.exists()
        assert http_get(sandbox, STAGING)[0] == 200
        sec("redeploy", STAGING)
    finally:
        mark.unlink(missing_ok=True)


def test_one_operation_from_each_front_end_is_recorded_alike(cluster: str, console: Console) -> None:
    """The CLI, the console's API and the scheduler (the operation service called in-process, as `sec serve`'s
    scheduler calls it) start the same operation: the three records have the same fields, `result` included,
    and the same result document; only who started it differs."""
    from sec_wrapper.operations import reading, service
    from sec_wrapper.operations.spec import OperationRequest

    listed = json.loads(sec("backups", STAGING, "--json").stdout)
    from_cli = reading.document(history.list_operations(site={STAGING}, limit=1)[0]["id"])
    client, csrf = login(console)
    answer = client.post(f"/api/sites/{STAGING}/backups", json={}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202, answer.text
    from_console = wait_for_end(client, answer.json()["id"])
    ran = service.run(OperationRequest("backups", site=STAGING), user="schedule:nightly", show_progress=False)
    from_scheduler = reading.document(ran.id)
    records = {"cli": from_cli, "console": from_console, "scheduler": from_scheduler}
    for name, record in records.items():
        assert record["status"] == "successful" and record["operation"] == "backups", (name, record)
        assert set(record) == set(from_cli), (name, sorted(set(record) ^ set(from_cli)))
        assert [row["name"] for row in record["result"]] == [row["name"] for row in listed], name
    assert from_console["user"] == console.user and from_scheduler["user"] == "schedule:nightly"
    assert from_cli["user"] not in (console.user, "schedule:nightly")
