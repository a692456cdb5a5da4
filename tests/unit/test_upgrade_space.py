"""The upgrade's space check for its backup measures db_backup's own file system (issue 22)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible_collections.fpt.sec.plugins.modules import upgrade_journal


def test_the_backup_space_is_db_backups_file_system_not_the_site_dirs(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "com_teststudio_prod"
    (site / "releases" / "8.0.0").mkdir(parents=True)
    (site / "releases" / "8.0.0" / "VERSION").write_text("8.0.0\n")
    (site / "current").symlink_to("releases/8.0.0")
    (site / "db_backup").mkdir()
    real = os.statvfs

    def statvfs(path: str):  # db_backup is a small mount of its own
        if os.path.basename(os.path.normpath(path)) == "db_backup":
            return SimpleNamespace(f_bavail=10, f_frsize=4096)
        return real(path)

    monkeypatch.setattr(upgrade_journal.os, "statvfs", statvfs)
    found = upgrade_journal.facts(str(site))
    assert found["backup_free_bytes"] == 40960 and found["free_bytes"] > 40960
