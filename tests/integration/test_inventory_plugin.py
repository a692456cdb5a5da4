"""`ansible-inventory` with the fpt.sec.apache_sites plugin discovers the sandbox's sites over SSH."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import plain_inventory

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _source(path: Path, app: dict, **extra) -> Path:
    config = {"plugin": "fpt.sec.apache_sites",
              "app_servers": [{"address": app["address"], "port": app["port"], "user": app["user"],
                               "private_key_file": app["key"]}],
              "known_hosts_file": app["known_hosts"], **extra}
    path.write_text(yaml.safe_dump(config))
    return path


def _inventory(source: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ansible-inventory", "-i", str(source), "--list", "--export"], capture_output=True,
                          text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=120,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                               # as AWX runs it: a source that fails to parse fails the update
                               "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", **(env or {})})


def test_plugin_finds_both_sites_with_groups(sandbox: dict, tmp_path: Path) -> None:
    source = _source(tmp_path / "box.apache_sites.yml", sandbox["app_server"],
                     keyed_groups=[{"key": "sec_roles", "prefix": "role"}])
    result = _inventory(source)
    assert result.returncode == 0, result.stderr
    data = plain_inventory(json.loads(result.stdout))
    host = "127.0.0.1"
    for group in ("app_servers", "db_servers", "production", "staging", "com_teststudio_prod",
                  "com_teststudio_staging", "role_app", "role_db"):
        assert host in data[group]["hosts"], group
    sites = data["_meta"]["hostvars"][host]["sec_sites"]
    expected = {s["reverse_name"]: s for s in sandbox["sites"]}
    assert set(sites) == set(expected)
    for key, site in sites.items():
        assert site["site_dir"] == expected[key]["site_dir"]
        assert site["name"] == expected[key]["name"]
        assert site["role"] == expected[key]["role"]
        assert site["version"] == "8.0.0"
        assert site["database"]["name"] == expected[key]["db_name"]
        assert site["database"]["user"] == expected[key]["db_user"]
        assert "password" not in json.dumps(site)


def test_plugin_reads_connection_from_environment(sandbox: dict, tmp_path: Path) -> None:
    app = sandbox["app_server"]
    source = tmp_path / "env.apache_sites.yml"
    source.write_text("plugin: fpt.sec.apache_sites\n")
    env = {"SEC_APP_SERVER": app["address"], "SEC_SSH_PORT": str(app["port"]), "SEC_SSH_USER": app["user"],
           "SEC_SSH_PRIVATE_KEY_FILE": app["key"], "SEC_SSH_KNOWN_HOSTS": app["known_hosts"]}
    result = _inventory(source, env)
    assert result.returncode == 0, result.stderr
    assert "com_teststudio_prod" in json.loads(result.stdout)


def test_plugin_unreachable_port_is_one_clear_error(sandbox: dict, tmp_path: Path) -> None:
    app = dict(sandbox["app_server"], port=1)
    result = _inventory(_source(tmp_path / "bad.apache_sites.yml", app))
    assert result.returncode != 0
    assert "unreachable over SSH" in result.stderr


def test_site_roles_option_overrides_the_name_rule(sandbox: dict, tmp_path: Path) -> None:
    source = _source(tmp_path / "roles.apache_sites.yml", sandbox["app_server"],
                     site_roles={"com_teststudio_prod": "staging"})
    result = _inventory(source)
    assert result.returncode == 0, result.stderr
    data = plain_inventory(json.loads(result.stdout))
    assert data["_meta"]["hostvars"]["127.0.0.1"]["sec_sites"]["com_teststudio_prod"]["role"] == "staging"
    assert "production" not in data or "127.0.0.1" not in data["production"].get("hosts", [])


def test_plugin_reports_skipped_vhosts_and_takes_apache_env(sandbox: dict, tmp_path: Path) -> None:
    """The same discovery as site_facts: a vhost with an undefined variable is in sec_skipped_sites (and a
    warning); the apache_env option defines it, and the site is found."""
    site_dir = Path(sandbox["state"]["apache"]["server_root"]).parent / "issue15-inventory" / "com_teststudio_inv"
    (site_dir / "releases" / "1.0.0").mkdir(parents=True)
    (site_dir / "current").symlink_to("releases/1.0.0")
    (site_dir / "shared").mkdir()
    conf = Path(sandbox["state"]["apache"]["server_root"]) / "sites-enabled" / "zz_issue15_inventory.conf"
    conf.write_text("<VirtualHost 127.0.0.1:1>\n  ServerName inv.teststudio.com\n"
                    "  DocumentRoot ${SEC_INV_ROOT}/com_teststudio_inv/current/public\n</VirtualHost>\n")
    try:
        result = _inventory(_source(tmp_path / "a.apache_sites.yml", sandbox["app_server"]))
        assert result.returncode == 0, result.stderr
        hostvars = plain_inventory(json.loads(result.stdout))["_meta"]["hostvars"]["127.0.0.1"]
        [entry] = hostvars["sec_skipped_sites"]
        assert entry["name"] == "inv.teststudio.com" and "uses ${SEC_INV_ROOT}, which is not defined" in entry["reason"]
        assert "inv.teststudio.com" in result.stderr  # shown as a warning too

        given = _inventory(_source(tmp_path / "b.apache_sites.yml", sandbox["app_server"],
                                   apache_env={"SEC_INV_ROOT": str(site_dir.parent)}))
        assert given.returncode == 0, given.stderr
        hostvars = plain_inventory(json.loads(given.stdout))["_meta"]["hostvars"]["127.0.0.1"]
        assert "com_teststudio_inv" in hostvars["sec_sites"]
        assert "sec_skipped_sites" not in hostvars
    finally:
        conf.unlink()
        subprocess.run(["rm", "-rf", str(site_dir.parent)], check=False)
