"""The sandbox is a real mini-cluster: Apache vhosts, the site app, PostgreSQL with passwords, sshd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from sec_wrapper.errors import SecError
from sec_wrapper.sandbox import Sandbox
from sec_wrapper.sandbox.processes import alive
from tests.integration.conftest import http_get, make_world_traversable_dir, site_by_name, site_status

pytestmark = pytest.mark.integration


def _database_yml(site: dict) -> dict:
    return yaml.safe_load(Path(site["site_dir"], "shared/config/database.yml").read_text())["production"]


def test_status_through_vhost_reads_the_database(sandbox: dict) -> None:
    for site in sandbox["sites"]:
        status = site_status(sandbox, site["name"])
        assert status["site"] == site["name"]
        assert status["version"] == "8.0.0"
        assert status["schema_version"] == "20200101000000"
        assert status["events"] == 20_000


def test_maintenance_file_gives_503_with_the_page(sandbox: dict) -> None:
    site = site_by_name(sandbox, "prod.teststudio.com")
    page = Path(site["site_dir"], "tmp/maintenance.html")
    page.write_text("<h1>Upgrading, back soon</h1>\n")
    try:
        code, body = http_get(sandbox, site["name"])
        assert code == 503
        assert "Upgrading, back soon" in body
        # the other site keeps serving
        assert http_get(sandbox, "staging.teststudio.com")[0] == 200
    finally:
        page.unlink()
    assert http_get(sandbox, site["name"])[0] == 200


def test_ssh_with_the_generated_key_runs_a_command(sandbox: dict) -> None:
    app = sandbox["app_server"]
    result = subprocess.run(
        ["ssh", "-i", app["key"], "-p", str(app["port"]), "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={app['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
         f"{app['user']}@{app['address']}", "echo sandbox-ok"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sandbox-ok"


def test_ssh_refuses_another_key(sandbox: dict, tmp_path: Path) -> None:
    app = sandbox["app_server"]
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    result = subprocess.run(
        ["ssh", "-i", str(other), "-p", str(app["port"]), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         "-o", f"UserKnownHostsFile={app['known_hosts']}", f"{app['user']}@{app['address']}", "true"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_psql_needs_the_password_from_database_yml(sandbox: dict) -> None:
    db = _database_yml(site_by_name(sandbox, "prod.teststudio.com"))
    base = ["psql", "-w", "-h", str(db["host"]), "-p", str(db["port"]), "-U", db["username"], db["database"],
            "-Atc", "SELECT count(*) FROM event_log_entries"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    ok = subprocess.run(base, capture_output=True, text=True, env={**env, "PGPASSWORD": db["password"]})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "20000"
    refused = subprocess.run(base, capture_output=True, text=True, env=env)
    assert refused.returncode != 0
    assert "password" in refused.stderr
    wrong = subprocess.run(base, capture_output=True, text=True, env={**env, "PGPASSWORD": "wrong"})
    assert wrong.returncode != 0


def test_site_layout_matches_the_reference(sandbox: dict) -> None:
    site = Path(site_by_name(sandbox, "prod.teststudio.com")["site_dir"])
    assert site.name == "com_teststudio_prod"
    assert os.readlink(site / "current") == "releases/8.0.0"
    assert (site / "current/VERSION").read_text().strip() == "8.0.0"
    for sub in ("shared/config/site_settings.json", "db_backup", "tmp", "shared/log"):
        assert (site / sub).exists(), sub
    media = sorted((site / "media/files").rglob("*.jpg"))
    assert len(media) == 40
    assert all(len(p.relative_to(site / "media/files").parts) == 4 for p in media)
    staging = Path(site_by_name(sandbox, "staging.teststudio.com")["site_dir"])
    assert len(list((staging / "media/files").rglob("*.jpg"))) == 20


def test_releases_series_has_patch_minor_and_major_steps(sandbox: dict) -> None:
    names = sorted(p.name for p in Path(sandbox["releases_dir"]).glob("*.tar.gz"))
    assert "shotgun-8.0.1.tar.gz" in names and "shotgun-8.2.0.tar.gz" in names and "shotgun-9.0.0.tar.gz" in names
    assert all(Path(sandbox["releases_dir"], n + ".sha256").exists() for n in names)


def test_up_twice_is_refused_and_starts_nothing(sandbox: dict) -> None:
    box = Sandbox(Path(sandbox["dir"]))
    before = box.status()["processes"]
    with pytest.raises(SecError, match="sandbox down"):
        box.up(events=10)
    assert box.status()["processes"] == before


def test_down_leaves_no_process_and_no_folder(sec_home: Path) -> None:
    folder = make_world_traversable_dir("sec-test-box-") / "box"
    box = Sandbox(folder)
    box.up(events=100, media_files=2, releases_dir=sec_home / "releases")
    state = box.state()
    pids = [pid for name, pid in box.processes(state).items()]
    assert pids and all(alive(pid) for pid in pids)
    subprocess.run(["ssh", "-i", state["app_server"]["key"], "-p", str(state["app_server"]["port"]),
                    "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={state['app_server']['known_hosts']}",
                    f"{state['app_server']['user']}@127.0.0.1", "true"], check=True, timeout=30)
    box.down()
    assert not folder.exists()
    assert not any(alive(pid) for pid in pids)
    leftovers = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
    folder.parent.rmdir()
