"""`sec maintenance` and `sec trim-events` through the engine: guards refuse before anything runs."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import http_get, sec

pytestmark = pytest.mark.integration
STAGING = "staging.teststudio.com"
PROD = "prod.teststudio.com"


def test_maintenance_on_and_off_through_the_cli(sandbox: dict, cluster: str) -> None:
    try:
        sec("maintenance", STAGING, "on", "--message", "cli test {{ 6 * 7 }}")
        code, body = http_get(sandbox, STAGING)
        assert code == 503 and "cli test {{ 6 * 7 }}" in body
        # The state read: in maintenance (never "serving"), the message as typed, and reading is no operation.
        before = json.loads(sec("ops", "list", "--limit", "0", "--json").stdout)
        status = json.loads(sec("site", "status", STAGING, "--json").stdout)
        assert status["badge"]["state"] == "maintenance", status["badge"]
        (app,) = status["heads"]
        assert app["maintenance"]["on"] and app["maintenance"]["message"] == "cli test {{ 6 * 7 }}"
        assert app["health"]["status"] == 503
        assert "MAINTENANCE" in sec("site", "status", STAGING, "--cached").stdout
        assert json.loads(sec("ops", "list", "--limit", "0", "--json").stdout) == before
    finally:
        sec("maintenance", STAGING, "off")
    assert http_get(sandbox, STAGING)[0] == 200
    status = json.loads(sec("site", "status", STAGING, "--json").stdout)
    assert status["badge"]["state"] == "serving", status["badge"]
    assert status["database"]["events_estimate"] > 0 and status["database"]["size_bytes"] > 0
    assert status["settings"]["persisted"]["site_url"] and status["lock"] is None


def test_production_maintenance_and_a_real_media_sync_ask_for_yes(sandbox: dict, cluster: str) -> None:
    before = json.loads(sec("ops", "list", "--limit", "0", "--json").stdout)
    for args in (("maintenance", PROD, "on"), ("redeploy", PROD), ("sync-media", PROD, STAGING)):
        refused = sec(*args, check=False)
        assert refused.returncode == 2 and "add --yes" in refused.stderr, (args, refused.stderr)
    assert json.loads(sec("ops", "list", "--limit", "0", "--json").stdout) == before
    assert http_get(sandbox, PROD)[0] == 200


def test_trim_guards(cluster: str) -> None:
    before = json.loads(sec("ops", "list", "--json").stdout)
    refused = sec("trim-events", PROD, "--before", "2023-01-01", check=False)
    assert refused.returncode == 2 and "production site: add --yes" in refused.stderr
    assert json.loads(sec("ops", "list", "--json").stdout) == before, "refused before any operation ran"
    bad = sec("trim-events", STAGING, "--before", "2023-02-30", check=False)
    assert bad.returncode == 2 and "before" in bad.stderr and "2023-02-30" in bad.stderr


def test_trim_with_nothing_that_old_changes_nothing(sandbox: dict, cluster: str) -> None:
    events = json.loads(http_get(sandbox, STAGING)[1])["events"]
    done = json.loads(sec("trim-events", STAGING, "--before", "2000-01-01", "--json").stdout)
    assert done["rows_deleted"] == 0 and done["changed"] is False
    assert json.loads(http_get(sandbox, STAGING)[1])["events"] == events
