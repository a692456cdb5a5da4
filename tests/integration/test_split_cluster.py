"""The split cluster, as larger studios run it: app1 and app2 (App servers), api1 (API server) and db1 (DB
server), each a real sshd on its own loopback address with its own filesystem root, PostgreSQL on db1, the
media on a shared folder every web head sees. Every operation is proven here on real hosts.

One split sandbox for the module, registered once with the exact commands `sec sandbox up --json` gives.
The tests run in file order: the read-only and reversible ones first, then the ones that move versions.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from sec_wrapper import history
from sec_wrapper.sandbox import Sandbox
from sec_wrapper.sandbox.processes import alive
from sec_wrapper.sandbox.releases import build_release, migrations_for
from sec_wrapper.sandbox.split import SplitSandbox
from tests.integration.conftest import make_world_traversable_dir, plain_inventory, sec

pytestmark = pytest.mark.integration

PROD = "prod.teststudio.com"
STAGING = "staging.teststudio.com"
HEADS = ("app1", "app2", "api1")


@dataclass
class Split:
    home: Path
    env: dict[str, str]
    box: SplitSandbox
    summary: dict

    def site(self, name: str) -> dict:
        return next(s for s in self.summary["sites"] if s["name"] == name)

    def site_dir(self, name: str, host: str) -> Path:
        return Path(self.site(name)["heads"][host]["site_dir"])

    def get(self, name: str, host: str, path: str = "/status") -> tuple[int, dict | None]:
        """GET through that web head's own Apache vhost."""
        url = self.site(name)["heads"][host]["url"].rstrip("/") + path
        request = urllib.request.Request(url, headers={"Host": name})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = response.read()
                return response.status, json.loads(body) if path == "/status" else None
        except urllib.error.HTTPError as err:
            return err.code, None

    def db(self, name: str) -> psycopg.Connection:
        conf = yaml.safe_load((self.site_dir(name, "app1") / "shared/config/database.yml").read_text())["production"]
        return psycopg.connect(host=conf["host"], port=conf["port"], user=conf["username"],
                               password=str(conf["password"]), dbname=conf["database"], autocommit=True)


def ssec(world: Split, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real `sec` command on this module's data folder."""
    return sec(*args, check=check, timeout=timeout, env=world.env)


@pytest.fixture(scope="module")
def split() -> Iterator[Split]:
    home = make_world_traversable_dir("sec-test-split-")
    env = {**os.environ, "SEC_HOME": str(home)}
    previous = os.environ.get("SEC_HOME")
    os.environ["SEC_HOME"] = str(home)  # the sandbox writes its pointer and releases into the data folder
    box = SplitSandbox(home / "split")
    try:
        summary = box.up(events=3000, media_files=8, version="8.0.0", releases_dir=home / "releases")
        world = Split(home, env, box, summary)
        for line in summary["commands"]:
            ssec(world, *shlex.split(line)[1:])
        yield world
    finally:
        try:
            if box.state_file.exists():
                box.down()
        finally:
            if previous is None:
                os.environ.pop("SEC_HOME", None)
            else:
                os.environ["SEC_HOME"] = previous
            shutil.rmtree(home, ignore_errors=True)


def cluster_file(world: Split) -> dict:
    return json.loads((world.home / "clusters" / "split.json").read_text())


# -- the sandbox ----------------------------------------------------------------------------------------------
def test_each_host_is_its_own_machine_on_its_own_address(split: Split) -> None:
    state = split.box.state()
    addresses = {h["name"]: h["address"] for h in state["hosts"].values()}
    assert addresses == {"app1": "127.0.0.11", "app2": "127.0.0.12", "api1": "127.0.0.13", "db1": "127.0.0.14",
                         "backup1": "127.0.0.15"}
    roots = {Path(h["root"]) for h in state["hosts"].values()}
    assert len(roots) == 5
    backup_dir = Path(state["hosts"]["backup1"]["backup_dir"])
    assert backup_dir.is_dir() and backup_dir.is_relative_to(Path(state["hosts"]["backup1"]["root"]))
    # Every web head has its own copy of the site, its database.yml pointing at db1 over TCP.
    for host in HEADS:
        site_dir = split.site_dir(PROD, host)
        assert site_dir.is_relative_to(Path(state["hosts"][host]["root"]))
        assert os.readlink(site_dir / "current") == "releases/8.0.0"
        conf = yaml.safe_load((site_dir / "shared/config/database.yml").read_text())["production"]
        assert conf["host"] == "127.0.0.14"
        code, status = split.get(PROD, host)
        assert code == 200 and status["version"] == "8.0.0"
    # What one host writes, another does not see; the media folder is the one meant to be shared.
    (split.site_dir(PROD, "app1") / "tmp/only-on-app1").write_text("x")
    assert not (split.site_dir(PROD, "app2") / "tmp/only-on-app1").exists()
    (split.site_dir(PROD, "app1") / "tmp/only-on-app1").unlink()
    media = {(split.site_dir(PROD, h) / "media").resolve() for h in HEADS}
    assert media == {Path(split.site(PROD)["media"]).resolve()}
    # The API server's vhost serves the API paths only; an App server's serves everything.
    assert split.get(PROD, "api1", "/projects")[0] == 404
    assert split.get(PROD, "app1", "/projects")[0] == 200
    # PostgreSQL listens on db1's address only.
    with socket_to("127.0.0.14", state["postgres"]["port"]) as reached:
        assert reached
    with socket_to("127.0.0.11", state["postgres"]["port"]) as reached:
        assert not reached


class socket_to:  # noqa: N801 (reads as a sentence in a with)
    def __init__(self, address: str, port: int) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.settimeout(2)
        self.address, self.port = address, port

    def __enter__(self) -> bool:
        try:
            self.sock.connect((self.address, self.port))
            return True
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_sandbox_cli_up_json_gives_the_commands_and_down_removes_everything(split: Split) -> None:
    # A second split sandbox beside the module's (another folder): both run at once.
    folder = split.home / "second"
    up = ssec(split, "sandbox", "up", "--topology", "split", "--dir", str(folder), "--events", "100",
              "--media-files", "2", "--json")
    summary = json.loads(up.stdout)
    try:
        assert summary["topology"] == "split"
        commands = summary["commands"]
        assert commands[0].startswith("sec cluster create split --app-server 127.0.0.11 --host-name app1 ")
        assert [c.split()[4] for c in commands[1:]] == ["app2", "api1", "db1", "backup1"]
        assert [c.split()[c.split().index("--roles") + 1] for c in commands[1:]] == ["app", "api", "db", "backup"]
        assert commands[-1].endswith("--backup-dir " + str(folder / "hosts/backup1/root/srv/sec-backups"))
        status = json.loads(ssec(split, "sandbox", "status", "--dir", str(folder), "--json").stdout)
        assert status["healthy"] and len(status["processes"]) == 1 + 5 + 3 + 3 * 2  # pg, sshd, apache, apps
        pids = [p["pid"] for p in status["processes"].values()]
    finally:
        ssec(split, "sandbox", "down", "--dir", str(folder))
    assert not folder.exists()
    assert not [pid for pid in pids if alive(pid)]
    assert split.get(PROD, "app1")[0] == 200  # the module's sandbox is untouched


# -- registration ---------------------------------------------------------------------------------------------
def test_registration_knows_every_host_and_each_web_head(split: Split) -> None:
    data = cluster_file(split)
    roles = {h["name"]: h["roles"] for h in data["hosts"]}
    assert roles == {"app1": ["app"], "app2": ["app"], "api1": ["api"], "db1": ["db"], "backup1": ["backup"]}
    backup1 = next(h for h in data["hosts"] if h["name"] == "backup1")
    assert backup1["backup_dir"] == split.summary["hosts"]["backup1"]["backup_dir"]
    prod = next(s for s in data["sites"] if s["name"] == PROD)
    assert prod["app_hosts"] == ["app1", "app2"] and prod["db_host"] == "db1"
    assert {h: Path(v["site_dir"]) for h, v in prod["on_hosts"].items()} == {
        h: split.site_dir(PROD, h) for h in HEADS}
    connect = ssec(split, "cluster", "connect", "split", "--json")
    answer = json.loads(connect.stdout)
    assert {h["name"] for h in answer["cluster"]["hosts"]} == {"app1", "app2", "api1", "db1", "backup1"}
    shown = json.loads(ssec(split, "site", "show", PROD, "--json").stdout)
    assert [h["host"] for h in shown["web_heads"]] == ["app1", "app2", "api1"]
    assert all(h["answers"] for h in shown["web_heads"]) and shown["unreachable"] == []
    assert {h["host"]: h["health_url"] for h in shown["web_heads"]} == {
        h: split.site(PROD)["heads"][h]["url"] + "status" for h in HEADS}


def test_the_inventory_plugin_sees_the_split_cluster_and_a_playbook_backs_up_through_it(
        split: Split, tmp_path: Path) -> None:
    """AWX's way in: fpt.sec.apache_sites with each host listed by role, then a project playbook on it."""
    root = Path(__file__).resolve().parents[2]
    hosts = split.box.state()["hosts"]

    def item(name: str) -> dict:
        ssh_info = hosts[name]["ssh"]
        return {"name": name, "address": hosts[name]["address"], "port": ssh_info["port"], "user": ssh_info["user"],
                "private_key_file": ssh_info["key"]}

    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(Path(h["ssh"]["known_hosts"]).read_text() for h in hosts.values()))
    source = tmp_path / "split.apache_sites.yml"
    source.write_text(yaml.safe_dump({"plugin": "fpt.sec.apache_sites", "app_servers": [item("app1"), item("app2")],
                                      "api_servers": [item("api1")], "db_servers": [item("db1")],
                                      "known_hosts_file": str(known_hosts), "host_key_checking": "yes"}))
    env = {**split.env, "ANSIBLE_CONFIG": str(root / "ansible.cfg"), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}
    listed = subprocess.run(["ansible-inventory", "-i", str(source), "--list", "--export"], capture_output=True,
                            text=True, cwd=root, stdin=subprocess.DEVNULL, timeout=180, env=env)
    assert listed.returncode == 0, listed.stderr
    data = plain_inventory(json.loads(listed.stdout))
    assert {g: sorted(data[g]["hosts"]) for g in ("app_servers", "api_servers", "db_servers")} == {
        "app_servers": ["app1", "app2"], "api_servers": ["api1"], "db_servers": ["db1"]}
    assert data["com_teststudio_prod"]["hosts"] == ["app1", "app2", "api1"]  # App servers first
    hostvars = data["_meta"]["hostvars"]
    assert hostvars["db1"]["ansible_port"] == hosts["db1"]["ssh"]["port"]
    for head in HEADS:
        site = hostvars[head]["sec_sites"]["com_teststudio_prod"]
        assert Path(site["site_dir"]) == split.site_dir(PROD, head)
        assert site["db_host"] == "db1"
    before = set(os.listdir(split.site_dir(STAGING, "app1") / "db_backup"))
    played = subprocess.run(["ansible-playbook", "-i", str(source), "playbooks/backup.yml", "-e",
                             f"site={STAGING}", "-e", "label=awx-split", "-e", "keep=0"], capture_output=True,
                            text=True, cwd=root, stdin=subprocess.DEVNULL, timeout=300, env=env)
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-2000:]
    made = set(os.listdir(split.site_dir(STAGING, "app1") / "db_backup")) - before
    assert len(made) == 1 and next(iter(made)).endswith("_awx-split")
    # On app1 only, against db1: no other web head holds a backup.
    for head in ("app2", "api1"):
        backups = split.site_dir(STAGING, head) / "db_backup"
        assert not any(n.endswith("_awx-split") for n in (os.listdir(backups) if backups.exists() else []))


def test_host_add_refuses_a_host_without_the_site_or_a_senseless_role(split: Split) -> None:
    before = (split.home / "clusters/split.json").read_text()
    db1 = split.box.state()["hosts"]["db1"]["ssh"]
    login = ["--port", str(db1["port"]), "--user", db1["user"], "--key", db1["key"]]
    # One machine, one host: db1's address is taken.
    refused = ssec(split, "host", "add", "split", "web3", "--address", "127.0.0.14", *login, "--roles", "app",
                   check=False)
    assert refused.returncode != 0 and "host db1 of split already is 127.0.0.14:" in refused.stderr
    # A host that does not answer is refused, naming it.
    refused = ssec(split, "host", "add", "split", "ghost", "--address", "127.0.0.19", "--port", "1",
                   "--roles", "app", check=False)
    assert refused.returncode != 0 and "host ghost (127.0.0.19:1) was not added" in refused.stderr
    assert (split.home / "clusters/split.json").read_text() == before


def test_host_add_checks_the_site_over_ssh(split: Split, tmp_path: Path) -> None:
    """A fresh cluster from app1, then app2 added: its site dirs are checked and recorded."""
    app1, app2 = (split.box.state()["hosts"][h]["ssh"] for h in ("app1", "app2"))
    ssec(split, "cluster", "create", "check", "--app-server", "127.0.0.11", "--host-name", "app1",
         "--port", str(app1["port"]), "--user", app1["user"], "--key", app1["key"])
    try:
        # db1 carries no site: it cannot be an App server.
        db1 = split.box.state()["hosts"]["db1"]["ssh"]
        refused = ssec(split, "host", "add", "check", "web3", "--address", "127.0.0.14", "--port", str(db1["port"]),
                       "--user", db1["user"], "--key", db1["key"], "--roles", "app", check=False)
        assert refused.returncode != 0 and "host web3 does not carry any site of cluster check" in refused.stderr, \
            refused.stderr
        # app2's address holds no site's database: a DB role there makes no sense.
        refused = ssec(split, "host", "add", "check", "db2", "--address", "127.0.0.12", "--port", str(app2["port"]),
                       "--user", app2["user"], "--key", app2["key"], "--roles", "db", check=False)
        assert refused.returncode != 0 and "is no site's DB server" in refused.stderr
        added = ssec(split, "host", "add", "check", "app2", "--address", "127.0.0.12", "--port",
                     str(app2["port"]), "--user", app2["user"], "--key", app2["key"], "--roles", "app")
        assert "checked over SSH; serves prod.teststudio.com, staging.teststudio.com" in added.stdout
        data = json.loads((split.home / "clusters/check.json").read_text())
        prod = next(s for s in data["sites"] if s["name"] == PROD)
        assert prod["app_hosts"] == ["app1", "app2"]
        assert prod["on_hosts"]["app2"]["site_dir"] == str(split.site_dir(PROD, "app2"))
        # Discovery named the DB server by its address; no db1 host yet, so it is that placeholder.
        assert prod["db_host"] == "127.0.0.14"
    finally:
        ssec(split, "cluster", "remove", "check")


# -- operations on every web head -----------------------------------------------------------------------------
def test_maintenance_reaches_every_web_head(split: Split) -> None:
    ssec(split, "maintenance", PROD, "on", "--yes", "--message", "split test")
    assert [split.get(PROD, h)[0] for h in HEADS] == [503, 503, 503]
    assert split.get(STAGING, "app2")[0] == 200
    ssec(split, "maintenance", PROD, "off")
    assert [split.get(PROD, h)[0] for h in HEADS] == [200, 200, 200]
    for host in HEADS:
        assert not (split.site_dir(PROD, host) / "tmp/maintenance.html").exists()


def test_maintenance_off_needs_every_web_head_healthy(split: Split) -> None:
    ssec(split, "maintenance", PROD, "on", "--yes")
    # api1's vhost answers 500 while its app cannot read the release it was given.
    broken = split.site_dir(PROD, "api1") / "shared/config/database.yml"
    saved = broken.read_text()
    broken.write_text(saved.replace("127.0.0.14", "127.0.0.19"))
    (split.site_dir(PROD, "api1") / "tmp/restart.txt").touch()
    try:
        failed = ssec(split, "maintenance", PROD, "off", check=False)
        assert failed.returncode != 0 and "api1" in failed.stderr
    finally:
        broken.write_text(saved)
        (split.site_dir(PROD, "api1") / "tmp/restart.txt").touch()
    ssec(split, "maintenance", PROD, "off")
    assert [split.get(PROD, h)[0] for h in HEADS] == [200, 200, 200]


def test_backup_and_restore_run_on_app1_against_db1(split: Split) -> None:
    made = json.loads(ssec(split, "backup", PROD, "--keep", "0", "--label", "split", "--json").stdout)
    name = made.get("name") or made.get("backup")
    assert name, made
    assert (split.site_dir(PROD, "app1") / "db_backup" / name).is_dir()
    for host in ("app2", "api1"):
        assert not (split.site_dir(PROD, host) / "db_backup" / name).exists()
    # Copied off the App server, to backup1 (its own address and root), and verified there.
    copy = Path(split.summary["hosts"]["backup1"]["backup_dir"]) / "split" / "com_teststudio_prod" / name
    assert made["copies"] == [{"host": "backup1", "path": str(copy), "method": "rsync", "removed": []}], made
    assert (copy / "sec-copy.json").is_file()
    listed = json.loads(ssec(split, "backups", PROD, "--json").stdout)
    assert name in [b["name"] for b in listed]
    with split.db(PROD) as conn:
        conn.execute("INSERT INTO projects (name) VALUES ('after the backup')")
    # app1 lost the backup (a rebuilt disk): the restore brings backup1's copy back to app1, host to host.
    shutil.rmtree(split.site_dir(PROD, "app1") / "db_backup" / name)
    ssec(split, "restore", PROD, name, "--yes")
    assert (split.site_dir(PROD, "app1") / "db_backup" / name / "manifest.json").is_file()
    with split.db(PROD) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE name = 'after the backup'").fetchone()[0] == 0
    # Room first on the DB server of its own: measured there (db_restore on app1 cannot see db1's disk).
    events = history.load_events(history.list_operations(site={PROD}, limit=1)[0]["id"])
    room = [e["event_data"] for e in events if e["event"] == "runner_on_ok"
            and e["event_data"].get("task") == "Check the DB server's free space for the fresh database"]
    assert len(room) == 1, room
    assert room[0]["res"].get("_ansible_delegated_vars", {}).get("ansible_host") == split.summary["hosts"]["db1"][
        "address"], room
    assert room[0]["res"]["checked"] and room[0]["res"]["free_bytes"] > room[0]["res"]["needed_bytes"] > 0, room
    db1_data = Path(split.summary["postgres"]["data"]).resolve()
    assert Path(room[0]["res"]["path"]).resolve() == db1_data, room
    assert [split.get(PROD, h)[0] for h in HEADS] == [200, 200, 200]


def test_a_drill_runs_on_app1_against_db1_and_checks_the_room_there(split: Split) -> None:
    made = json.loads(ssec(split, "backup", PROD, "--keep", "0", "--label", "split-drill", "--json").stdout)
    done = json.loads(ssec(split, "drill", PROD, made["name"], "--json").stdout)
    assert done["passed"] and done["tables"] > 0 and done["dropped"], done
    events = history.load_events(done["operation"])
    room = [e["event_data"] for e in events if e["event"] == "runner_on_ok"
            and e["event_data"].get("task") == "Check the DB server's free space for the fresh database"]
    assert len(room) == 1 and room[0]["res"]["checked"], room
    assert room[0]["res"].get("_ansible_delegated_vars", {}).get("ansible_host") == split.summary["hosts"]["db1"][
        "address"], room
    with split.db(PROD) as conn:
        assert not conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%\\_drill\\_%'").fetchall()
    assert [split.get(PROD, h)[0] for h in HEADS] == [200, 200, 200]


def test_trim_runs_once_against_the_database(split: Split) -> None:
    with split.db(STAGING) as conn:
        before = conn.execute("SELECT count(*) FROM event_log_entries").fetchone()[0]
    ssec(split, "trim-events", STAGING, "--before", "2024-06-01", "--yes")
    with split.db(STAGING) as conn:
        after = conn.execute("SELECT count(*) FROM event_log_entries").fetchone()[0]
    archives = {h: sorted(split.site_dir(STAGING, h).glob("events_trim_*.csv.gz")) for h in HEADS}
    assert len(archives["app1"]) == 1 and not archives["app2"] and not archives["api1"]
    import gzip

    with gzip.open(archives["app1"][0], "rt") as csv:
        archived = sum(1 for _ in csv) - 1  # the header line
    assert 0 < archived == before - after


def test_settings_and_redeploy_are_the_same_on_every_web_head(split: Split) -> None:
    ssec(split, "site", "settings", STAGING, "--set", "max_upload_mb=900")
    for host in HEADS:
        settings = json.loads((split.site_dir(STAGING, host) / "shared/config/site_settings.json").read_text())
        assert settings["max_upload_mb"] == 900
    ssec(split, "redeploy", STAGING)
    for host in HEADS:
        runtime = json.loads((split.site_dir(STAGING, host) / "shared/config/runtime.json").read_text())
        assert runtime["max_upload_mb"] == 900
        assert split.get(STAGING, host)[0] == 200


# -- a web head that does not answer --------------------------------------------------------------------------
def test_a_silent_web_head_stops_changes_up_front_and_reads_say_so(split: Split) -> None:
    split.box.stop_host_sshd("app2")
    try:
        for args in (("maintenance", PROD, "on", "--yes"), ("backup", PROD), ("redeploy", PROD, "--yes"),
                     ("trim-events", PROD, "--before", "2020-01-01", "--yes")):
            refused = ssec(split, *args, check=False)
            assert refused.returncode != 0, args
            assert "app2 (127.0.0.12:" in refused.stderr and "nothing was changed" in refused.stderr, refused.stderr
        for host in HEADS:
            assert not (split.site_dir(PROD, host) / "tmp/maintenance.html").exists()
        assert [split.get(PROD, h)[0] for h in HEADS] == [200, 200, 200]
        shown = ssec(split, "site", "show", PROD)
        assert "host app2 (127.0.0.12) did not answer over SSH" in shown.stdout
        shown_json = json.loads(ssec(split, "site", "show", PROD, "--json").stdout)
        assert shown_json["unreachable"] == ["app2"]
        listed = ssec(split, "backups", PROD)
        assert "host app2 (127.0.0.12) did not answer over SSH" in listed.stdout
        # The state read says which head is silent, never "serving", and still shows what the others hold.
        status = json.loads(ssec(split, "site", "status", PROD, "--json").stdout)
        assert status["badge"]["state"] == "unreachable", status["badge"]
        silent = {h["host"]: h["error"] for h in status["heads"] if h["error"]}
        assert list(silent) == ["app2"] and "127.0.0.12" in silent["app2"], silent
        assert status["settings"]["persisted"]["site_url"], status["settings"]
        assert status["database"]["size_bytes"] > 0
    finally:
        split.box.start_host_sshd("app2")


# -- syncs ----------------------------------------------------------------------------------------------------
def test_sync_db_from_split_production_into_split_staging(split: Split) -> None:
    with split.db(PROD) as conn:
        conn.execute("INSERT INTO projects (name) VALUES ('synced from prod')")
    ssec(split, "sync-db", PROD, STAGING, "--yes")
    with split.db(STAGING) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE name = 'synced from prod'").fetchone()[0] == 1
    for host in HEADS:
        code, status = split.get(STAGING, host)
        assert code == 200 and status["site_url"] == f"https://{STAGING}"


def test_sync_media_and_db_into_a_single_host_site_of_another_cluster(split: Split) -> None:
    """The two sides of a media sync on different hosts: split prod (media behind app1) into the single
    sandbox's staging site (media on 127.0.0.1)."""
    single = Sandbox(split.home / "single")
    summary = single.up(events=500, media_files=2, version="8.0.0", releases_dir=split.home / "releases",
                        sites=[("stage2.teststudio.com", "staging")])
    try:
        app = summary["app_server"]
        ssec(split, "cluster", "create", "single", "--app-server", app["address"], "--port", str(app["port"]),
             "--user", app["user"], "--key", app["key"])
        ssec(split, "site", "role", "stage2.teststudio.com", "staging")
        target_media = Path(summary["sites"][0]["site_dir"]) / "media"
        source_files = {p.relative_to(split.site(PROD)["media"]) for p in Path(split.site(PROD)["media"]).rglob("*")
                        if p.is_file()}
        ssec(split, "sync-media", PROD, "stage2.teststudio.com", "--source-cluster", "split",
             "--target-cluster", "single", "--yes")
        target_files = {p.relative_to(target_media) for p in target_media.rglob("*") if p.is_file()}
        assert source_files <= target_files
        ssec(split, "sync-db", PROD, "stage2.teststudio.com", "--source-cluster", "split",
             "--target-cluster", "single", "--yes")
        port = summary["apache"]["port"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/status",
                                         headers={"Host": "stage2.teststudio.com"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["events"] == split.get(PROD, "app1")[1]["events"]
    finally:
        ssec(split, "cluster", "remove", "single", check=False)
        single.down()


# -- a restore with its release (staging moves to 8.1.0 and back) --------------------------------------------
def _wait_for_version(world: Split, name: str, version: str) -> None:
    """Every web head answers 200 on that version (each application restarts on its own)."""
    deadline = time.monotonic() + 60
    while True:
        answers = {h: world.get(name, h) for h in HEADS}
        if all(code == 200 and status and status["version"] == version for code, status in answers.values()):
            return
        assert time.monotonic() < deadline, f"not every web head serves {version}: {answers}"
        time.sleep(0.5)


def test_a_restore_with_its_release_switches_every_web_head(split: Split) -> None:
    """An 8.0.0 backup restored with --switch-release into staging upgraded to 8.1.0: `current` went back to
    8.0.0 on app1 only, app2 and api1 served 8.1.0 over the 8.0.0 schema. Every head switches now, in the same
    window; a head without the backup's release refuses the restore up front, naming it."""
    heads = {h: split.site_dir(STAGING, h) for h in HEADS}
    releases_before = {h: set(os.listdir(d / "releases")) for h, d in heads.items()}
    backups_before = set(os.listdir(heads["app1"] / "db_backup"))
    schema_before = split.get(STAGING, "app1")[1]["schema_version"]
    made = json.loads(ssec(split, "backup", STAGING, "--label", "split-vtest", "--keep", "0", "--json").stdout)
    try:
        ssec(split, "upgrade", STAGING, "--to", "8.1.0", "--yes")
        _wait_for_version(split, STAGING, "8.1.0")
        backups_upgraded = set(os.listdir(heads["app1"] / "db_backup"))  # with the upgrade's own backup

        # app2 lacks release 8.0.0: refused before anything changes, naming app2 and the release.
        aside = heads["app2"] / "releases/.aside-8.0.0"
        (heads["app2"] / "releases/8.0.0").rename(aside)
        try:
            refused = ssec(split, "restore", STAGING, made["name"], "--switch-release", "--yes", check=False)
        finally:
            aside.rename(heads["app2"] / "releases/8.0.0")
        said = refused.stderr.strip().splitlines()[-1] if refused.stderr.strip() else ""
        assert refused.returncode != 0 and "app2" in said and "8.0.0" in said and "stage" in said, refused.stderr
        assert "nothing was changed" in said, said
        for host, site_dir in heads.items():
            assert os.readlink(site_dir / "current") == "releases/8.1.0", host
            assert not (site_dir / "tmp/maintenance.html").exists(), host
        assert {split.get(STAGING, h)[1]["version"] for h in HEADS} == {"8.1.0"}
        assert split.get(STAGING, "app1")[1]["schema_version"] != schema_before, "the 8.1.0 database is live"
        # Not even the safety backup of the live database was taken.
        assert set(os.listdir(heads["app1"] / "db_backup")) == backups_upgraded

        done = json.loads(ssec(split, "restore", STAGING, made["name"], "--switch-release", "--yes",
                               "--json").stdout)
        assert done["release_switched"] == {"from": "8.1.0", "to": "8.0.0"}
        for host, site_dir in heads.items():
            assert os.readlink(site_dir / "current") == "releases/8.0.0", host
            assert not (site_dir / "tmp/maintenance.html").exists(), host
        _wait_for_version(split, STAGING, "8.0.0")
        assert {split.get(STAGING, h)[1]["schema_version"] for h in HEADS} == {schema_before}
    finally:
        # Staging is shared with the later tests: back on 8.0.0 and its data on every head, whatever happened.
        if any(os.readlink(d / "current") != "releases/8.0.0" for d in heads.values()):
            ssec(split, "restore", STAGING, made["name"], "--switch-release", "--yes", check=False)
        for site_dir in heads.values():
            if os.readlink(site_dir / "current") != "releases/8.0.0":
                (site_dir / "current.tmp").symlink_to("releases/8.0.0")
                (site_dir / "current.tmp").rename(site_dir / "current")
                (site_dir / "tmp/restart.txt").touch()
        if any((d / "tmp/maintenance.html").exists() for d in heads.values()):
            ssec(split, "maintenance", STAGING, "off", check=False)
        for host, site_dir in heads.items():
            for name in set(os.listdir(site_dir / "releases")) - releases_before[host]:
                shutil.rmtree(site_dir / "releases" / name, ignore_errors=True)
        for name in set(os.listdir(heads["app1"] / "db_backup")) - backups_before:
            shutil.rmtree(heads["app1"] / "db_backup" / name, ignore_errors=True)


# -- upgrades (these move the version for good) ---------------------------------------------------------------
def test_upgrade_moves_every_web_head_in_one_window_with_migrations_once(split: Split) -> None:
    out = ssec(split, "upgrade", PROD, "--to", "8.1.0", "--yes", "--tested", "--keep-releases", "1", "--json")
    result = json.loads(out.stdout)
    for host in HEADS:
        assert os.readlink(split.site_dir(PROD, host) / "current") == "releases/8.1.0"
        # Old releases pruned on every web head, not only where the lock is.
        assert sorted(p.name for p in (split.site_dir(PROD, host) / "releases").iterdir()) == ["8.1.0"], host
        code, status = split.get(PROD, host)
        assert code == 200 and status["version"] == "8.1.0" and status["schema_version"] == "20200601000000"
    log = ssec(split, "ops", "log", result["operation"]).stdout
    migrate = log.split("TASK [Run the migrations of every step in order]")[1].split("TASK [")[0]
    assert migrate.count("changed: [") == 1 and "app1" in migrate


def test_a_web_head_lost_in_the_window_rolls_every_head_back(split: Split) -> None:
    """app2's sshd is stopped while 8.2.0's migration waits on a lock (the window is open): the switch cannot
    reach app2, so app1 and api1 go back to 8.1.0, the database is restored, and app2 stays in maintenance on
    8.1.0, fenced, until `sec site repair` aligns it."""
    blocker = split.db(PROD)
    blocker.autocommit = False
    blocker.execute("UPDATE projects SET name = name WHERE id = 1")
    process = subprocess.Popen(["sec", "upgrade", PROD, "--to", "8.2.0", "--yes", "--tested"], env=split.env, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def migration_waits() -> bool:
        # A new session each time: the window ends the idle ones (db_migrate's writes_since).
        with split.db(PROD) as monitor:
            return bool(monitor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                                        " 'sec db_migrate' AND wait_event_type = 'Lock'").fetchone()[0])

    try:
        deadline = time.monotonic() + 300
        while not migration_waits():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert [split.get(PROD, h)[0] for h in HEADS] == [503, 503, 503]
        split.box.stop_host_sshd("app2")
        blocker.rollback()
        _, stderr = process.communicate(timeout=300)
    finally:
        blocker.close()
        if process.poll() is None:
            process.kill()
    try:
        assert process.returncode != 0
        said = ("failed and was rolled back" in stderr and "app2 (127.0.0.12) stopped answering over SSH" in stderr
                and f"sec site repair {PROD}" in stderr)
        if not said:  # the whole run's log says where it went wrong
            operation = stderr.rsplit("sec ops log ", 1)[-1].split(")")[0]
            pytest.fail(stderr + ssec(split, "ops", "log", operation, check=False).stdout[-12000:])
        monitor = split.db(PROD)
        assert monitor.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == "20200601000000"
        for host in ("app1", "api1"):
            code, status = split.get(PROD, host)
            assert code == 200 and status["version"] == "8.1.0", host
        # app2 never serves 8.2.0 against the 8.1.0 database: it waits in maintenance.
        assert split.get(PROD, "app2")[0] == 503
        assert os.readlink(split.site_dir(PROD, "app2") / "current") == "releases/8.1.0"
    finally:
        split.box.start_host_sshd("app2")
    # Back, app2 still shows its page; nothing but the repair may change the site, maintenance off included.
    assert split.get(PROD, "app2")[0] == 503
    refused = ssec(split, "maintenance", PROD, "off", check=False)
    assert refused.returncode != 0 and f"run sec site repair {PROD} first" in refused.stderr, refused.stderr
    ssec(split, "site", "repair", PROD)
    for host in HEADS:
        code, status = split.get(PROD, host)
        assert code == 200 and status["version"] == "8.1.0", host
        assert os.readlink(split.site_dir(PROD, host) / "current") == "releases/8.1.0"
    # And the next upgrade goes through on every head.
    ssec(split, "upgrade", PROD, "--to", "8.2.0", "--yes", "--tested")
    assert {split.get(PROD, h)[1]["version"] for h in HEADS} == {"8.2.0"}


# -- faults: a web head lost at the worst moment (each head is killed by pid: its sshd and its sessions) ------
SCHEMA_OF = {v: migrations_for(v)[-1].version for v in ("8.0.0", "8.1.0", "8.2.0", "8.3.0", "9.0.0")}
NEXT = {"8.0.0": "8.1.0", "8.1.0": "8.2.0", "8.2.0": "8.3.0", "8.3.0": "9.0.0"}


class HeadWatch:
    """Asks one web head's vhost for /status every 50 ms in a thread, keeping every answer, to prove that it
    never served a release on a schema that release does not have, whatever happened in between."""

    def __init__(self, world: Split, name: str, host: str) -> None:
        self.world, self.name, self.host = world, name, host
        self.answers: list[tuple[int, str | None, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                code, status = self.world.get(self.name, self.host)
            except OSError:
                code, status = 0, None
            self.answers.append((code, (status or {}).get("version"), (status or {}).get("schema_version")))
            time.sleep(0.05)

    def __enter__(self) -> HeadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def mismatched(self) -> list[tuple[int, str | None, str | None]]:
        return [a for a in self.answers if a[0] == 200 and SCHEMA_OF.get(a[1] or "") != a[2]]


def _run_until(world: Split, args: list[str], moment, then) -> subprocess.CompletedProcess:
    """Runs `sec args`; calls then() as soon as moment() is true (polled every 5 ms); waits for the end."""
    process = subprocess.Popen(["sec", *args], env=world.env, text=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not moment():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the moment never came"
            time.sleep(0.005)
        then()
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _heads_agree_with_the_database(world: Split, name: str) -> str:
    """Every head answers 200 on one release whose schema is the database's; returns that release."""
    live = world.db(name).execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    deadline = time.monotonic() + 60
    while True:
        answers = {h: world.get(name, h) for h in HEADS}
        versions = {s["version"] for c, s in answers.values() if c == 200 and s}
        if all(c == 200 for c, _ in answers.values()) and len(versions) == 1 \
                and SCHEMA_OF[next(iter(versions))] == live:
            return next(iter(versions))
        assert time.monotonic() < deadline, f"heads do not agree with schema {live}: {answers}"
        time.sleep(0.5)


def test_a_head_lost_right_after_its_switch_is_fenced_until_repaired(split: Split) -> None:
    """Issue 22 #2: app2 was killed right after it switched to 8.1.0 (listener and sessions); the rollback put
    the 8.0.0 database back under it and app2 answered 200 with 8.1.0 on the 8.0.0 schema. Now it keeps its
    maintenance page, the site is marked, every operation refuses naming the repair, and the repair aligns it."""
    app2 = split.site_dir(STAGING, "app2")
    start = _heads_agree_with_the_database(split, STAGING)
    target = NEXT[start]
    seen: list[float] = []

    def switched() -> bool:
        if os.readlink(app2 / "current") != f"releases/{target}":
            return False
        seen.append(time.monotonic())
        # Once its page is gone (the old code took it down in the switch itself), or a moment after.
        return not (app2 / "tmp/maintenance.html").exists() or seen[-1] - seen[0] > 0.15

    with HeadWatch(split, STAGING, "app2") as watch:
        try:
            run = _run_until(split, ["upgrade", STAGING, "--to", target, "--yes"], switched,
                             lambda: split.box.stop_host_sshd("app2"))
            assert run.returncode != 0, run.stdout
            assert f"sec site repair {STAGING}" in run.stderr and "app2 (127.0.0.12)" in run.stderr, run.stderr
            time.sleep(1)
            assert split.get(STAGING, "app2")[0] == 503
            for host in ("app1", "api1"):
                assert (split.site_dir(STAGING, host) / "tmp/sec-repair.json").exists(), host
        finally:
            split.box.start_host_sshd("app2")
        # Back, app2 is still behind its page, and nothing but the repair may change the site.
        assert split.get(STAGING, "app2")[0] == 503
        refused = ssec(split, "upgrade", STAGING, "--to", target, "--yes", check=False)
        assert refused.returncode != 0 and f"run sec site repair {STAGING} first" in refused.stderr, refused.stderr
        assert split.get(STAGING, "app2")[0] == 503
        repaired = json.loads(ssec(split, "site", "repair", STAGING, "--json").stdout)
        version = _heads_agree_with_the_database(split, STAGING)
    assert watch.mismatched() == [], watch.mismatched()[:5]
    assert repaired["version"] == version and "app2" in repaired["message"], repaired
    assert not any((split.site_dir(STAGING, h) / "tmp/sec-repair.json").exists() for h in HEADS)
    assert json.loads(ssec(split, "site", "show", STAGING, "--json").stdout)["version"] == version
    # Repaired, the site takes operations again; a second repair finds nothing to do.
    again = json.loads(ssec(split, "site", "repair", STAGING, "--json").stdout)
    assert "needs no repair" in again["message"], again


def test_a_restore_stops_when_a_head_drops_out_before_the_swap(split: Split) -> None:
    """Issue 22 #4: app2 killed during a --switch-release restore's safety backup (asked for with --safety-backup
    since issue 25); the database was swapped and app1/api1 switched while app2 served the old code on the new
    schema. Now nothing is swapped."""
    app1 = split.site_dir(STAGING, "app1")
    start = _heads_agree_with_the_database(split, STAGING)
    made = json.loads(ssec(split, "backup", STAGING, "--label", "drop-out", "--keep", "0", "--json").stdout)
    target = NEXT[start]
    ssec(split, "upgrade", STAGING, "--to", target, "--yes")
    schema = SCHEMA_OF[_heads_agree_with_the_database(split, STAGING)]

    before = set(os.listdir(app1 / "db_backup"))

    def safety_backup_running() -> bool:
        return any("before-restore" in name for name in set(os.listdir(app1 / "db_backup")) - before)

    with HeadWatch(split, STAGING, "app2") as watch:
        try:
            run = _run_until(split, ["restore", STAGING, made["name"], "--switch-release", "--safety-backup",
                                     "--yes"], safety_backup_running, lambda: split.box.stop_host_sshd("app2"))
            assert run.returncode != 0, run.stdout
            assert "stopped before the swap" in run.stderr and "app2 (127.0.0.12)" in run.stderr, run.stderr
            assert split.db(STAGING).execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == schema
            for host in ("app1", "api1"):
                code, status = split.get(STAGING, host)
                assert code == 200 and status["version"] == target, (host, code, status)
        finally:
            split.box.start_host_sshd("app2")
    assert watch.mismatched() == [], watch.mismatched()[:5]
    # app2 back: nothing to repair (nothing moved); the restore goes through on every head.
    ssec(split, "restore", STAGING, made["name"], "--switch-release", "--yes")
    assert _heads_agree_with_the_database(split, STAGING) == start


def test_a_rolled_back_upgrade_keeps_the_writes_made_after_its_backup(split: Split) -> None:
    """Issue 22 #1: a row written while the site served, after the pre-upgrade backup, vanished with the
    rollback, unannounced. Now the migrated database is kept and the failure counts what it holds."""
    app1 = split.site_dir(PROD, "app1")
    start = _heads_agree_with_the_database(split, PROD)
    nxt = NEXT[start]
    archive = split.home / "releases" / f"shotgun-{nxt}.tar.gz"
    sidecar = archive.with_name(archive.name + ".sha256")
    saved = {path: path.read_bytes() for path in (archive, sidecar) if path.exists()}
    build_release(split.home / "releases", nxt, broken=True)  # its last migration fails, after the first ran
    writer = split.db(PROD)
    code = f"written-after-backup-{time.time_ns()}"

    before = set(os.listdir(app1 / "db_backup"))

    def backup_done() -> bool:  # the dump's snapshot is behind us, the window not yet open
        return any(f"pre-upgrade-{nxt}" in name and not name.startswith(".")
                   for name in set(os.listdir(app1 / "db_backup")) - before)

    kept = None
    paged: list[bool] = []
    try:
        run = _run_until(split, ["upgrade", PROD, "--to", nxt, "--yes", "--tested"], backup_done,
                         lambda: (paged.append((app1 / "tmp/maintenance.html").exists()),
                                  writer.execute("INSERT INTO projects (name) VALUES (%s)", (code,))))
        assert run.returncode != 0 and "rolled back" in run.stderr, run.stderr
        assert paged == [False], "the row must be written while the site serves, before the window"
        said = run.stderr
        assert "public.projects 1 inserted" in said, said
        kept = said.split("They are in ", 1)[1].split(",", 1)[0].strip()
        assert "_replaced_" in kept, said
        live = split.db(PROD)
        assert live.execute("SELECT count(*) FROM projects WHERE name = %s", (code,)).fetchone()[0] == 0
        conf = yaml.safe_load((app1 / "shared/config/database.yml").read_text())["production"]
        with psycopg.connect(host=conf["host"], port=conf["port"], user=conf["username"],
                             password=str(conf["password"]), dbname=kept, autocommit=True) as old:
            assert old.execute("SELECT count(*) FROM projects WHERE name = %s", (code,)).fetchone()[0] == 1
        assert _heads_agree_with_the_database(split, PROD) == start
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
        if kept:
            admin = split.db(PROD)
            admin.execute(f'DROP DATABASE IF EXISTS "{kept}"')
        writer.close()


def test_a_broken_site_is_listed_refused_and_repaired(split: Split) -> None:
    """Issue 22: discovery skipped a vhost whose `current` names a missing release ("serves nothing"). It is
    listed as broken now, every change but the repair refuses naming it, and the repair stages the release
    that matches the database where it is missing and switches to it."""
    app2 = split.site_dir(STAGING, "app2")
    running = os.readlink(app2 / "current")
    release = app2 / running
    aside = release.with_name(".aside-" + release.name)
    release.rename(aside)
    try:
        ssec(split, "cluster", "connect", "split")
        [row] = [r for r in json.loads(ssec(split, "site", "list", "--json").stdout) if r["name"] == STAGING]
        assert row["state"] == f"broken: current -> {running} is missing on app2" and row["version"] is None, row
        assert "broken" in ssec(split, "site", "list").stdout
        for args in (("maintenance", STAGING, "off"), ("backup", STAGING), ("redeploy", STAGING),
                     ("upgrade", STAGING, "--to", "8.3.0", "--yes")):
            refused = ssec(split, *args, check=False)
            said = refused.stderr.strip().splitlines()[-1] if refused.stderr.strip() else ""
            assert refused.returncode != 0 and f"run sec site repair {STAGING} first" in said, (args, said)
            assert "broken" in said and running in said, said
        repaired = json.loads(ssec(split, "site", "repair", STAGING, "--json").stdout)
        assert repaired["version"] == release.name and "app2" in repaired["message"], repaired
        assert _heads_agree_with_the_database(split, STAGING) == release.name
        assert (app2 / running / "VERSION").read_text().strip() == release.name
        [row] = [r for r in json.loads(ssec(split, "site", "list", "--json").stdout) if r["name"] == STAGING]
        assert row["state"] == "ok" and row["version"] == release.name, row
    finally:
        if aside.exists():
            if release.exists():
                shutil.rmtree(aside)
            else:
                aside.rename(release)


def test_sec_killed_as_the_pages_appear_is_never_recorded_as_successful(split: Split) -> None:
    """Issue 22 #3 on the split cluster: sec's process group SIGKILLed as app1's maintenance page appeared. The
    record settles from the whole journal on the App server, never `successful`; maintenance off rolls back."""
    page = split.site_dir(STAGING, "app1") / "tmp/maintenance.html"
    start = _heads_agree_with_the_database(split, STAGING)
    process = subprocess.Popen(["sec", "upgrade", STAGING, "--to", NEXT[start], "--yes"], env=split.env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not page.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the window never opened"
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)  # sec, ansible-playbook, its workers, ssh: the group, by pid
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    killed = next(op for op in json.loads(ssec(split, "ops", "list", "--site", STAGING, "--json").stdout)
                  if op["operation"] == "upgrade")
    deadline = time.monotonic() + 60
    while (shown := json.loads(ssec(split, "ops", "show", killed["id"], "--json").stdout))["status"] == "running":
        assert time.monotonic() < deadline, shown
        time.sleep(1)
    assert shown["status"] in ("interrupted", "failed"), shown
    ssec(split, "maintenance", STAGING, "off")
    assert _heads_agree_with_the_database(split, STAGING) == start


def test_bad_input_is_one_line_and_no_operation_on_the_split_cluster(split: Split) -> None:
    """Issue 22 #7: playbook-checked inputs are refused in one line that names the fix, before any record."""
    before = len(json.loads(ssec(split, "ops", "list", "--json").stdout))
    for args, fix in ((("trim-events", STAGING, "--before", "2023/01/01", "--yes"), "YYYY-MM-DD"),
                      (("backup", STAGING, "--keep", "-1"), "give a whole number"),
                      (("backup", STAGING, "--label", "not a label"), "label")):
        refused = ssec(split, *args, check=False)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode != 0 and len(lines) == 1 and fix in lines[0], (args, refused.stderr)
    assert len(json.loads(ssec(split, "ops", "list", "--json").stdout)) == before


class TimedWatch:
    """GET /status on each web head's own vhost every 50 ms in threads: (monotonic time, status) per head."""

    def __init__(self, world: Split, name: str) -> None:
        self.world, self.name = world, name
        self.samples: dict[str, list[tuple[float, int]]] = {h: [] for h in HEADS}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(h,), daemon=True) for h in HEADS]

    def _run(self, host: str) -> None:
        while not self._stop.is_set():
            try:
                code = self.world.get(self.name, host)[0]
            except OSError:
                code = 0
            self.samples[host].append((time.monotonic(), code))
            time.sleep(0.05)

    def __enter__(self) -> TimedWatch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def _task_times(world: Split, op_id: str, task: str) -> list[float]:
    """Wall-clock times of a recorded run's events for `task` (its start and its hosts' results)."""
    found = []
    for path in (world.home / "operations" / op_id / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        if (event.get("event_data") or {}).get("task") == task:
            found.append(datetime.fromisoformat(event["created"].replace("Z", "+00:00")).timestamp())
    return sorted(found)


def test_a_staging_restore_keeps_every_head_serving_while_it_prepares(split: Split) -> None:
    """Issue 25 on the split cluster: the fresh database is restored on db1 while app1, app2 and api1 serve;
    the three go into maintenance only for the swap; the undo brings the replaced data back on all three."""
    made = json.loads(ssec(split, "backup", STAGING, "--label", "split-window", "--keep", "0", "--json").stdout)
    with split.db(STAGING) as conn:
        conn.execute("INSERT INTO projects (name) VALUES ('written after the backup')")
    offset = time.time() - time.monotonic()
    with TimedWatch(split, STAGING) as watch:
        done = json.loads(ssec(split, "restore", STAGING, made["name"], "--json").stdout)
    prepare = _task_times(split, done["operation"], "Restore the backup into a fresh database while the site serves")
    assert len(prepare) >= 2, "the prepare task started and ended"
    for host, samples in watch.samples.items():
        during = [code for t, code in samples if prepare[0] + 0.2 < t + offset < prepare[-1] - 0.2]
        assert set(during) <= {200}, (host, during)
        assert 503 in {code for _t, code in samples}, host  # it did go into maintenance, for the swap
    with split.db(STAGING) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE name = 'written after the backup'").fetchone()[0] == 0
    ssec(split, "restore", STAGING, "--undo")
    with split.db(STAGING) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE name = 'written after the backup'").fetchone()[0] == 1
    assert [split.get(STAGING, h)[0] for h in HEADS] == [200, 200, 200]
