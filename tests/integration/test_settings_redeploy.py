"""Site settings and redeploy against the sandbox's staging site: a bad value is refused with the key named
and the file untouched; a valid change is pending (the site still serves the old value) until a redeploy
applies it through a graceful reload; writes are idempotent; unknown keys need force."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import run_module, run_playbook, sec, site_by_name, site_status

pytestmark = pytest.mark.integration

SITE = "staging.teststudio.com"


def _files(site: dict) -> dict[str, Path]:
    config = Path(site["site_dir"], "shared/config")
    return {
        "settings": config / "site_settings.json",
        "settings_prev": config / "site_settings.json.prev",
        "runtime": config / "runtime.json",
        "runtime_prev": config / "runtime.json.prev",
        "restart": Path(site["site_dir"], "tmp/restart.txt"),
    }


@pytest.fixture
def staging(sandbox: dict) -> Iterator[dict]:
    """The staging site, put back as found: settings, runtime config and restart marker restored, so the app
    reloads into what it served before the test."""
    site = site_by_name(sandbox, SITE)
    files = _files(site)
    saved = {name: path.read_bytes() if path.exists() else None for name, path in files.items()}
    before = site_status(sandbox, SITE)
    yield site
    for name, path in files.items():
        if saved[name] is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(saved[name])
    if saved["restart"] is not None:
        os.utime(files["restart"], None)  # a new mtime: the app reloads the restored runtime config
    assert site_status(sandbox, SITE)["site_url"] == before["site_url"]


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP line of app1 as {ok, changed, failed, ...}."""
    line = next(line for line in output.splitlines() if line.startswith("app1 ") and "ok=" in line)
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


def apache_pid(sandbox: dict) -> int:
    pid_file = Path(sandbox["state"]["apache"]["server_root"], "run/apache2.pid")
    return int(pid_file.read_text().strip())


def graceful_restarts(sandbox: dict) -> int:
    """How many graceful restarts the sandbox's Apache has logged (its master logs each SIGUSR1)."""
    log = Path(sandbox["state"]["apache"]["server_root"], "logs/error.log")
    return log.read_text().count("SIGUSR1 received.  Doing graceful restart")


def query(inventory: Path, site: dict) -> dict:
    result = run_module(inventory, "site_settings", {"site_dir": site["site_dir"], "state": "query"}).result
    assert not result["failed"], result
    return result


def test_invalid_value_is_refused_with_the_key_and_the_file_unchanged(staging: dict, inventory: Path) -> None:
    files = _files(staging)
    before = files["settings"].read_bytes()
    mtime = files["settings"].stat().st_mtime_ns

    proc = run_playbook("site_settings.yml", inventory,
                        {"site": SITE, "settings": {"site_name": "Still fine", "max_upload_mb": "lots"}})
    assert proc.returncode != 0
    assert "max_upload_mb: 'lots' is not allowed; expected an integer from 1 to 100000 (MB)" in proc.stdout
    assert files["settings"].read_bytes() == before
    assert files["settings"].stat().st_mtime_ns == mtime
    assert not files["settings_prev"].exists()

    result = run_module(inventory, "site_settings",
                        {"site_dir": staging["site_dir"], "settings": {"session_timeout_minutes": 1}}).result
    assert result["failed"]
    assert result["key"] == "session_timeout_minutes"
    assert result["msg"].startswith("invalid setting session_timeout_minutes: 1 is not allowed; expected an integer "
                                    "from 5 to 10080")
    assert files["settings"].read_bytes() == before


def test_unknown_key_is_refused_without_force(staging: dict, inventory: Path) -> None:
    files = _files(staging)
    before = files["settings"].read_bytes()

    proc = run_playbook("site_settings.yml", inventory, {"site": SITE, "settings": {"favourite_colour": "blue"}})
    assert proc.returncode != 0
    assert "favourite_colour: unknown setting" in proc.stdout
    assert "use force" in proc.stdout
    assert files["settings"].read_bytes() == before

    proc = run_playbook("site_settings.yml", inventory,
                        {"site": SITE, "settings": {"favourite_colour": "blue"}, "force": True})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = json.loads(files["settings"].read_text())
    assert written["favourite_colour"] == "blue"
    assert files["settings_prev"].read_bytes() == before


def test_check_mode_predicts_and_writes_nothing(staging: dict, inventory: Path) -> None:
    files = _files(staging)
    before = files["settings"].read_bytes()
    result = run_module(inventory, "site_settings",
                        {"site_dir": staging["site_dir"], "settings": {"max_upload_mb": "1234"}}, check=True).result
    assert not result["failed"] and result["changed"]
    assert result["changes"] == [{"key": "max_upload_mb", "old": 500, "new": 1234}]
    assert result["settings"]["max_upload_mb"] == 1234
    assert files["settings"].read_bytes() == before


def test_a_change_is_pending_until_redeploy_then_applied(sandbox: dict, staging: dict, inventory: Path) -> None:
    files = _files(staging)
    old_url = json.loads(files["settings"].read_text())["site_url"]
    new_url = "https://staging2.teststudio.com"

    # Start from a site whose settings are applied (the sandbox's sites have never been redeployed).
    proc = run_playbook("redeploy.yml", inventory, {"site": SITE, "operation_id": "test-redeploy-0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert site_status(sandbox, SITE)["site_url"] == old_url
    assert query(inventory, staging)["pending_redeploy"] is False

    # The change is persisted, shown as pending, and not served yet.
    proc = run_playbook("site_settings.yml", inventory,
                        {"site": SITE, "settings_json": json.dumps({"site_url": new_url})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "redeploy pending" in proc.stdout
    assert json.loads(files["settings"].read_text())["site_url"] == new_url
    state = query(inventory, staging)
    assert state["pending_redeploy"] is True
    assert state["pending_changes"] == [{"key": "site_url", "old": old_url, "new": new_url}]
    assert site_status(sandbox, SITE)["site_url"] == old_url

    # Writing the same value again changes nothing, not even the file's mtime.
    mtime = files["settings"].stat().st_mtime_ns
    result = run_module(inventory, "site_settings",
                        {"site_dir": staging["site_dir"], "settings": {"site_url": new_url}}).result
    assert not result["failed"] and result["changed"] is False and result["changes"] == []
    assert result["pending_redeploy"] is True
    assert files["settings"].stat().st_mtime_ns == mtime

    # A redeploy applies it: new runtime config, the app reloads, Apache restarts gracefully (same master).
    pid = apache_pid(sandbox)
    gracefuls = graceful_restarts(sandbox)
    proc = run_playbook("redeploy.yml", inventory, {"site": SITE, "operation_id": "test-redeploy-1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recap(proc.stdout)["failed"] == 0
    assert "changed settings: site_url" in proc.stdout
    assert site_status(sandbox, SITE)["site_url"] == new_url
    assert apache_pid(sandbox) == pid
    assert graceful_restarts(sandbox) == gracefuls + 1
    runtime = json.loads(files["runtime"].read_text())
    assert runtime["site_url"] == new_url
    assert runtime["_sec"]["operation_id"] == "test-redeploy-1"
    assert json.loads(files["runtime_prev"].read_text())["site_url"] == old_url
    state = query(inventory, staging)
    assert state["pending_redeploy"] is False and state["pending_changes"] == []
    assert not Path(staging["site_dir"], "tmp/sec-operation.lock").exists()

    # Nothing pending: the module does nothing; check mode with force predicts a redeploy and writes nothing.
    runtime_bytes = files["runtime"].read_bytes()
    result = run_module(inventory, "redeploy", {"site_dir": staging["site_dir"]}).result
    assert not result["failed"] and result["changed"] is False
    assert result["restarted"] == {"app": False, "apache": False}
    result = run_module(inventory, "redeploy", {"site_dir": staging["site_dir"], "force": True}, check=True).result
    assert not result["failed"] and result["changed"] is True
    assert result["apache"]["pid"] == pid
    assert result["apache"]["command"][-2:] == ["-k", "graceful"]
    assert files["runtime"].read_bytes() == runtime_bytes
    result = run_module(inventory, "redeploy",
                        {"site_dir": staging["site_dir"], "force": True, "restart_apache": False}, check=True).result
    assert not result["failed"] and result["changed"] is True
    assert result["restarted"] == {"app": True, "apache": False} and result["apache"] is None


def test_redeploy_refuses_an_invalid_persisted_setting(staging: dict, inventory: Path) -> None:
    files = _files(staging)
    broken = {**json.loads(files["settings"].read_text()), "max_upload_mb": 0}
    files["settings"].write_text(json.dumps(broken))
    runtime_before = files["runtime"].read_bytes() if files["runtime"].exists() else None
    result = run_module(inventory, "redeploy", {"site_dir": staging["site_dir"], "force": True}).result
    assert result["failed"]
    assert "max_upload_mb: 0 is not allowed" in result["msg"]
    assert (files["runtime"].read_bytes() if files["runtime"].exists() else None) == runtime_before


def test_bad_input_stops_before_any_host(staging: dict, inventory: Path) -> None:
    proc = run_playbook("site_settings.yml", inventory, {"site": SITE, "settings_json": "{not json"})
    assert proc.returncode != 0
    assert "`settings_json` is not valid JSON" in proc.stdout
    proc = run_playbook("site_settings.yml", inventory, {"site": SITE, "settings": {"site_url": "https://x.example"},
                                                         "settings_json": "{}"})
    assert proc.returncode != 0
    assert "not both" in proc.stdout
    proc = run_playbook("redeploy.yml", inventory, {"site": "nowhere.teststudio.com"})
    assert proc.returncode != 0
    assert "is not in this inventory" in proc.stdout


@pytest.mark.parametrize(("settings", "force", "words"), [
    ({"site_name": "x" * 2_000_000}, False, ["site_name", "is too long; expected at most 100 characters"]),
    ({"favourite_colour": "x" * 2_000_000}, True,
     ["favourite_colour", "2000002 bytes", "at most 65536 bytes", "keep large content in a file"]),
])
def test_a_two_megabyte_value_is_refused_with_the_reason_and_the_fix(staging: dict, cluster: str, tmp_path: Path,
                                                                      settings: dict, force: bool,
                                                                      words: list[str]) -> None:
    """Issue 16: a 2 MB value came back as "...: failed" with no reason (its result was too large to record)."""
    files = _files(staging)
    before = files["settings"].read_bytes()
    document = tmp_path / "big.json"
    document.write_text(json.dumps(settings))
    refused = sec("site", "settings", SITE, "--file", str(document), *(["--force"] if force else []), check=False)
    assert refused.returncode != 0
    last = refused.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, refused.stderr[-3000:]
    assert not last.rstrip(" )").endswith(": failed") and ": failed (" not in last
    assert len(last) < 1000, "one line, not the value"
    assert files["settings"].read_bytes() == before


def test_other_refusals_name_the_reason_and_the_fix_in_their_last_line(staging: dict, cluster: str,
                                                                       tmp_path: Path) -> None:
    """Issue 16, the other refusals of `sec site settings`: the fix must survive the one-line report."""
    unknown = sec("site", "settings", SITE, "--set", "favourite_colour=blue", check=False)
    assert unknown.returncode != 0
    last = unknown.stderr.strip().splitlines()[-1]
    assert "favourite_colour: unknown setting" in last and "use force" in last, last
    missing = sec("site", "settings", SITE, "--file", str(tmp_path / "nowhere.json"), check=False)
    assert missing.returncode != 0 and "cannot read it (No such file or directory)" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    refused = sec("site", "settings", SITE, "--file", str(broken), check=False)
    assert refused.returncode != 0 and "not valid JSON" in refused.stderr and "write one JSON object" in refused.stderr
