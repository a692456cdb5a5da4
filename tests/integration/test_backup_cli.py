"""`sec backup` and `sec backups` through the engine: listed with size, version and state; damage shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import sec

pytestmark = pytest.mark.integration
SITE = "staging.teststudio.com"


def test_backup_then_list_then_damage_is_seen(cluster: str) -> None:
    made = json.loads(sec("backup", SITE, "--label", "clitest", "--json").stdout)
    assert made["verified"] is True and made["dump_bytes"] > 0
    path = Path(made["path"])
    try:
        listed = json.loads(sec("backups", SITE, "--check", "--json").stdout)
        mine = next(b for b in listed if b["name"] == made["name"])
        assert mine["state"] == "verified" and mine["version"] == "8.0.0" and mine["size"] == made["dump_bytes"]
        victim = max((p for p in (path / "dump").iterdir() if p.name != "toc.dat"), key=lambda p: p.stat().st_size)
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
        listed = json.loads(sec("backups", SITE, "--check", "--json").stdout)
        mine = next(b for b in listed if b["name"] == made["name"])
        assert mine["state"] == "damaged" and victim.name in mine["problem"]
        human = sec("backups", SITE).stdout
        assert made["name"] in human and "SIZE" in human
    finally:
        shutil.rmtree(path, ignore_errors=True)
