"""`sec advanced` runs one low-level module on a site through the engine, recorded like any operation."""

from __future__ import annotations

import json

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
