"""fpt.sec.db_backup_transfer's decisions: which backups may be brought to a target, and the local copy."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import db_backups
from ansible_collections.fpt.sec.plugins.modules.db_backup_transfer import Refused, _link_or_copy, check_manifest

VERIFIED = {"toc": True, "data": "data files", "checksums": True, "at": "2024-05-01T12:00:42Z"}


def manifest(**changes: object) -> dict:
    ended = (db_backups.utc_now() - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = {"format": db_backups.FORMAT, "site": "prod.teststudio.com", "reverse_name": "com_teststudio_prod",
            "version": "8.0.0", "ended": ended, "started": ended, "verified": dict(VERIFIED)}
    return {**base, **changes}


@pytest.mark.parametrize("verified", [
    {"toc": True, "data": "pg_restore", "checksums": True},
    {"toc": True, "restore_to_null": True, "checksums": True},  # a manifest written before "data"
])
def test_both_read_backs_and_the_older_manifest_count_as_verified(verified: dict) -> None:
    assert db_backups.made_verified({"verified": verified})


def test_a_verified_recent_backup_of_the_source_on_the_same_release_is_accepted() -> None:
    age = check_manifest(manifest(), "b", "prod.teststudio.com", 24, "8.0.0")
    assert age is not None and 1.9 < age < 2.1
    check_manifest(manifest(), "b", "com_teststudio_prod", 0, "8.1.0")  # a newer target is fine


@pytest.mark.parametrize(("changes", "source", "max_age", "target_version", "said"), [
    ({"verified": {"toc": True, "restore_to_null": False, "checksums": True}}, None, 0, "8.0.0", "not verified"),
    ({"verified": {"toc": True, "data": None, "checksums": True}}, None, 0, "8.0.0", "not verified"),
    ({"verified": {"toc": True, "data": "pg_restore", "checksums": False}}, None, 0, "8.0.0", "not verified"),
    ({}, "staging.teststudio.com", 0, "8.0.0", "is a backup of prod.teststudio.com, not of staging"),
    ({}, None, 1, "8.0.0", "older than the 1 hours allowed"),
    ({"ended": "yesterday", "started": None}, None, 24, "8.0.0", "no readable date"),
    ({"version": "8.1.0"}, None, 0, "8.0.0", "upgrade the target to 8.1.0 first"),
    ({"version": "eight"}, None, 0, "8.0.0", "cannot compare"),
])
def test_refusals_say_why(changes: dict, source: str | None, max_age: int, target_version: str, said: str) -> None:
    with pytest.raises(Refused, match=said):
        check_manifest(manifest(**changes), "b", source, max_age, target_version)


def _backup(folder: Path) -> dict:
    (folder / "dump").mkdir(parents=True)
    (folder / "dump/toc.dat").write_bytes(b"toc")
    (folder / "dump/3400.dat.gz").write_bytes(b"data" * 100)
    made = {**manifest(), "files": db_backups.hash_dump(str(folder))}
    db_backups.write_manifest(str(folder), made)
    return db_backups.read_manifest(str(folder))


def test_on_one_file_system_the_backup_is_hard_linked_and_verifies(tmp_path: Path) -> None:
    source, partial = tmp_path / "src", tmp_path / "dst"
    read = _backup(source)
    partial.mkdir()
    method, copied = _link_or_copy(str(source), str(partial), read)
    assert (method, copied) == ("hardlink", 0)
    assert os.stat(partial / "dump/toc.dat").st_ino == os.stat(source / "dump/toc.dat").st_ino
    assert db_backups.verify_files(str(partial), db_backups.read_manifest(str(partial))) == 2


def test_a_file_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    source, partial = tmp_path / "src", tmp_path / "dst"
    read = _backup(source)
    (source / "dump/9999.dat.gz").write_bytes(b"slipped in")
    partial.mkdir()
    with pytest.raises(db_backups.BackupError, match="9999.dat.gz is not in the manifest"):
        _link_or_copy(str(source), str(partial), read)
