"""`sec advanced` runs one low-level module on a site through the engine, recorded like any operation."""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.conftest import http_get, sec

pytestmark = pytest.mark.integration
SITE = "staging.teststudio.com"


def test_advanced_list_names_every_low_level_module() -> None:
    listed = {m["module"] for m in json.loads(sec("advanced", "list", "--json").stdout)}
    assert {"maintenance", "db_backup", "db_restore", "site_health", "site_facts"} <= listed
    assert "run_module" not in listed


def test_advanced_run_maintenance_on_then_off(sandbox: dict, cluster: str) -> None:
    try:
        on = json.loads(sec("advanced", "run", "maintenance", SITE, "state=on", "notice=tested", "--json").stdout)
        assert on["result"]["changed"] is True
        assert on["result"]["module_args"]["site_dir"].endswith("com_teststudio_staging")
        code, body = http_get(sandbox, SITE)
        assert code == 503 and "tested" in body
    finally:
        sec("advanced", "run", "maintenance", SITE, "state=off")
    assert http_get(sandbox, SITE)[0] == 200
    ops = json.loads(sec("ops", "list", "--site", SITE, "--json").stdout)
    assert ops[0]["operation"] == "advanced maintenance" and ops[0]["status"] == "successful"


def test_advanced_run_refuses_an_unknown_option_and_module(cluster: str) -> None:
    bad_option = sec("advanced", "run", "maintenance", SITE, "bogus=1", check=False)
    assert bad_option.returncode == 2 and "has no option bogus" in bad_option.stderr
    bad_module = sec("advanced", "run", "nosuch", SITE, check=False)
    assert bad_module.returncode == 2 and "no low-level module nosuch" in bad_module.stderr


def test_a_module_that_only_reads_runs_beside_an_operation_holding_the_lock(sandbox: dict, cluster: str) -> None:
    """Issue 24: two read-only advanced modules started a second apart collided on the site lock."""
    from ansible_collections.fpt.sec.plugins.module_utils import site_lock

    from sec_wrapper import store

    site_dir = store.find_site(SITE)[1].site_dir
    path = site_lock.lock_path(site_dir)
    held = site_lock.acquire(path, "test-holder-op", {"pid": os.getpid(), "host": "elsewhere"})
    assert held["outcome"] == site_lock.ACQUIRED
    try:
        url = store.find_site(SITE)[1].health_url
        health = json.loads(sec("advanced", "run", "site_health", SITE, f"url={url}", f"host_header={SITE}",
                                "--json").stdout)  # sec() fails the test on a non-zero exit
        assert health["result"]["status"] == 200, health
        listed = json.loads(sec("advanced", "run", "db_backup_info", SITE, "--json").stdout)
        assert "backups" in listed["result"], listed
        changing = sec("advanced", "run", "maintenance", SITE, "state=off", check=False)
        assert changing.returncode != 0 and "test-holder-op" in changing.stderr + changing.stdout
        assert site_lock.read_lock(path)["operation_id"] == "test-holder-op"
    finally:
        site_lock.release(path, "test-holder-op")
