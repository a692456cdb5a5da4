"""`sec cluster/host/site` against the sandbox: discovery finds the sites; bad input changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import sec

pytestmark = pytest.mark.integration


def _snapshot(home: Path) -> dict[str, bytes]:
    """The store's files: clusters and keys (operations are recorded even for a refused create)."""
    return {str(p.relative_to(home)): p.read_bytes() for folder in ("clusters", "keys")
            for p in sorted((home / folder).rglob("*")) if p.is_file()}


def _create(name: str, app: dict, **overrides: str) -> subprocess.CompletedProcess:
    opts = {"--app-server": app["address"], "--port": str(app["port"]), "--user": app["user"], "--key": app["key"]}
    opts.update(overrides)
    return sec("cluster", "create", name, *[x for kv in opts.items() for x in kv], "--json", check=False)


def test_cluster_create_finds_both_sites(sandbox: dict, sec_home: Path) -> None:
    result = _create("created", sandbox["app_server"])
    assert result.returncode == 0, result.stderr
    cluster = json.loads(result.stdout)
    by_name = {s["name"]: s for s in cluster["sites"]}
    assert set(by_name) == {"prod.teststudio.com", "staging.teststudio.com"}
    for site in sandbox["sites"]:
        found = by_name[site["name"]]
        assert found["site_dir"] == site["site_dir"]
        assert found["version"] == "8.0.0"
        assert found["role"] == site["role"]
        assert found["database"]["name"] == site["db_name"]
        assert found["database"]["user"] == site["db_user"]
    assert [h["roles"] for h in cluster["hosts"]] == [["app", "db"]]
    saved = sec_home / "clusters" / "created.json"
    assert "password" not in saved.read_text()
    key = sec_home / "keys" / cluster["hosts"][0]["key"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert key.read_bytes() == Path(sandbox["app_server"]["key"]).read_bytes()
    listed = json.loads(sec("site", "list", "--cluster", "created", "--json").stdout)
    assert {s["name"] for s in listed} == set(by_name)
    shown = json.loads(sec("site", "show", "com_teststudio_prod", "--cluster", "created", "--json").stdout)
    assert shown["site_dir"] == by_name["prod.teststudio.com"]["site_dir"]
    sec("cluster", "remove", "created")
    assert not saved.exists() and not key.exists()


def test_bad_input_is_one_line_and_changes_nothing(sandbox: dict, sec_home: Path, tmp_path: Path,
                                                   cluster: str) -> None:
    app = sandbox["app_server"]
    loose = tmp_path / "loose_key"
    shutil.copy(app["key"], loose)
    os.chmod(loose, 0o644)
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    cases = {
        "unreachable": (("c1",), {"--port": "1"}, "unreachable: Connection refused"),
        "wrong key": (("c2",), {"--key": str(other)}, "Permission denied"),
        "key mode": (("c3",), {"--key": str(loose)}, "chmod 600"),
        "existing name": ((cluster,), {}, f"cluster {cluster} exists"),
        "slash": (("a/b",), {}, "slash"),
    }
    before = _snapshot(sec_home)
    for label, (name, overrides, message) in cases.items():
        result = _create(name[0], app, **overrides)
        assert result.returncode == 2, label
        lines = [line for line in result.stderr.splitlines() if line.startswith("sec: ")]
        assert len(lines) == 1 and message in lines[0], (label, result.stderr)
        assert _snapshot(sec_home) == before, label


def test_site_role_and_host_remove_guard(cluster: str) -> None:
    sec("site", "role", "staging.teststudio.com", "production", "--cluster", cluster)
    shown = json.loads(sec("site", "show", "staging.teststudio.com", "--json").stdout)
    assert shown["role"] == "production"
    sec("site", "role", "staging.teststudio.com", "staging", "--cluster", cluster)
    hosts = json.loads(sec("host", "list", cluster, "--json").stdout)
    refused = sec("host", "remove", cluster, hosts[0]["name"], check=False)
    assert refused.returncode == 2 and "depend on it" in refused.stderr
    # Recorded without contact (--no-check): nothing listens on port 22 here.
    sec("host", "add", cluster, "api1", "--address", "127.0.0.1", "--port", "22", "--roles", "api", "--no-check")
    assert "api1" in sec("host", "list", cluster).stdout
    sec("host", "edit", cluster, "api1", "--roles", "api,db")
    edited = {h["name"]: h for h in json.loads(sec("host", "list", cluster, "--json").stdout)}
    assert edited["api1"]["roles"] == ["api", "db"]
    sec("host", "remove", cluster, "api1")
    assert "api1" not in sec("host", "list", cluster).stdout


def test_cluster_connect_refreshes_versions(cluster: str) -> None:
    result = json.loads(sec("cluster", "connect", cluster, "--json").stdout)
    assert {s["name"] for s in result["cluster"]["sites"]} == {"prod.teststudio.com", "staging.teststudio.com"}


def test_cluster_connect_rechecks_every_host(cluster: str, sec_home: Path) -> None:
    sec("host", "add", cluster, "db2", "--address", "127.0.0.1", "--port", "1", "--roles", "db", "--no-check")
    try:
        before = (sec_home / "clusters" / f"{cluster}.json").read_bytes()
        refused = sec("cluster", "connect", cluster, check=False)
        assert refused.returncode == 2 and "127.0.0.1:1 unreachable" in refused.stderr
        assert (sec_home / "clusters" / f"{cluster}.json").read_bytes() == before
    finally:
        sec("host", "remove", cluster, "db2")


def _site_dir(path: Path) -> Path:
    (path / "releases" / "1.0.0" / "public").mkdir(parents=True)
    (path / "current").symlink_to("releases/1.0.0")
    (path / "shared" / "config").mkdir(parents=True)
    (path / "shared" / "config" / "database.yml").write_text(
        f"production:\n  host: localhost\n  database: {path.name}\n  username: {path.name}\n")
    return path


def test_cluster_create_shows_the_vhosts_it_did_not_take_and_why(sandbox: dict, sec_home: Path) -> None:
    """A vhost Apache does not load (inside <IfVersion < 2.4>) and one whose folder uses a variable the server
    does not have are listed with their reasons, in the text and in --json; --apache-env supplies the variable."""
    extra = sec_home / "issue15-sites"
    _site_dir(extra / "com_teststudio_phantom")
    _site_dir(extra / "com_teststudio_fromenv")
    apache_root = Path(sandbox["state"]["apache"]["server_root"])
    conf = apache_root / "sites-enabled" / "zz_issue15.conf"
    conf.write_text(
        "<IfVersion < 2.4>\n<VirtualHost 127.0.0.1:1>\n  ServerName phantom.teststudio.com\n"
        f"  DocumentRoot {extra}/com_teststudio_phantom/current/public\n</VirtualHost>\n</IfVersion>\n"
        "<VirtualHost 127.0.0.1:1>\n  ServerName fromenv.teststudio.com\n"
        "  DocumentRoot ${SEC_ISSUE15_ROOT}/com_teststudio_fromenv/current/public\n</VirtualHost>\n")
    app = sandbox["app_server"]
    opts = ["--app-server", app["address"], "--port", str(app["port"]), "--user", app["user"], "--key", app["key"]]
    try:
        text = sec("cluster", "create", "skips", *opts, check=False)
        assert text.returncode == 0, text.stderr
        assert "not taken as sites (2):" in text.stdout
        assert (f"phantom.teststudio.com ({conf}:2) not taken as a site: Apache does not load it: "
                f"inside <IfVersion < 2.4> at {conf}:1, false for Apache 2.4.") in text.stdout
        assert (f"fromenv.teststudio.com ({conf}:7) not taken as a site: ${{SEC_ISSUE15_ROOT}}/com_teststudio_fromenv "
                "uses ${SEC_ISSUE15_ROOT}, which is not defined") in text.stdout
        sec("cluster", "remove", "skips")

        given = _create("skips", app, **{"--apache-env": f"SEC_ISSUE15_ROOT={extra}"})
        assert given.returncode == 0, given.stderr
        cluster = json.loads(given.stdout)
        assert {s["name"] for s in cluster["sites"]} == {"prod.teststudio.com", "staging.teststudio.com",
                                                         "fromenv.teststudio.com"}
        [phantom] = cluster["skipped_sites"]
        assert (phantom["name"], phantom["app_server"], phantom["line"]) == ("phantom.teststudio.com",
                                                                             cluster["hosts"][0]["name"], 2)
        assert cluster["settings"]["apache_env"] == {"SEC_ISSUE15_ROOT": str(extra)}
    finally:
        conf.unlink()
        sec("cluster", "remove", "skips", check=False)
        shutil.rmtree(extra, ignore_errors=True)
