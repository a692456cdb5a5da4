"""Backup retention never removes the backup an unfinished upgrade would roll back to."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.fpt.sec.plugins.module_utils import db_backups, upgrade_journal


def _backups(*names: str) -> list[dict]:
    return [{"name": n, "started": n} for n in names]


def test_keep_newest_and_the_one_just_made() -> None:
    doomed = db_backups.plan_retention(_backups("a1", "a2", "a3", "a4"), keep=2, just_made="a4")
    assert [b["name"] for b in doomed] == ["a1", "a2"]


def test_pinned_backup_is_spared_and_counts_as_kept() -> None:
    doomed = db_backups.plan_retention(_backups("a1", "a2", "a3", "a4"), keep=2, just_made="a4", pinned={"a1"})
    assert [b["name"] for b in doomed] == ["a2", "a3"]


def test_unknown_pins_prune_nothing() -> None:
    assert db_backups.plan_retention(_backups("a1", "a2", "a3"), keep=1, pinned=None) == []


def test_pinned_backups_read_the_upgrade_journal(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    assert db_backups.pinned_backups(str(tmp_path)) == set()
    record = upgrade_journal.new_record("op1", "8.0.0", "8.2.0", ["8.1.2", "8.2.0"], "b-before", "releases/8.0.0",
                                        [])
    upgrade_journal.write(str(tmp_path), record)
    assert db_backups.pinned_backups(str(tmp_path)) == {"b-before"}
    Path(upgrade_journal.journal_path(str(tmp_path))).write_text("{broken")
    assert db_backups.pinned_backups(str(tmp_path)) is None


def _labelled(*pairs: tuple[str, str | None]) -> list[dict]:
    return [{"name": n, "started": n, "label": label} for n, label in pairs]


def test_ordinary_keep_never_removes_a_safety_backup() -> None:
    backups = _labelled(("a1", "pre-upgrade-8.1.0"), ("a2", None), ("a3", None), ("a4", None))
    doomed = db_backups.plan_retention(backups, keep=1, just_made="a4")
    assert [b["name"] for b in doomed] == ["a2", "a3"]


def test_safety_backups_keep_their_own_newest_and_always_the_latest() -> None:
    backups = _labelled(("a1", "before-restore"), ("a2", "pre-upgrade-8.1.0"), ("a3", "before-restore"),
                        ("a4", None))
    assert [b["name"] for b in db_backups.plan_retention(backups, keep=5, just_made="a4", keep_safety=2)] == ["a1"]
    # however small keep_safety is made, the latest safety backup stays; 0 keeps them all
    assert [b["name"] for b in db_backups.plan_retention(backups, keep=5, just_made="a4", keep_safety=1)] == [
        "a1", "a2"]
    assert db_backups.plan_retention(backups, keep=5, just_made="a4", keep_safety=0) == []


def test_kind_of_a_label() -> None:
    assert db_backups.kind_of("before-restore") == "safety"
    assert db_backups.kind_of("pre-upgrade-9.1.0") == "safety"
    assert db_backups.kind_of("sync") == db_backups.kind_of(None) == db_backups.kind_of("prefix") == "ordinary"


def test_a_sealed_manifest_detects_an_edit_and_a_listing_claims_only_what_was_checked(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    (folder / "dump").mkdir(parents=True)
    (folder / "dump" / "toc.dat").write_bytes(b"toc")
    made = {"format": db_backups.FORMAT, "version": "8.0.0", "files": db_backups.hash_dump(str(folder)),
            "verified": {"toc": True, "restore_to_null": True, "checksums": True, "at": "2024-05-01T12:00:00Z"}}
    db_backups.write_manifest(str(folder), made)
    manifest = db_backups.read_manifest(str(folder))
    assert db_backups.quick_problem(str(folder), manifest) is None
    entry = {"verified": True, "verified_at": "2024-05-01T12:00:00Z"}
    assert db_backups.listed_state(entry, None, None) == {"state": "verified", "verified_at": "2024-05-01T12:00:00Z",
                                                          "problem": None}
    db_backups.record_check(str(folder), "backup b1: dump/toc.dat is corrupt", "restore")
    damaged = db_backups.listed_state(entry, db_backups.read_check(str(folder)), None)
    assert damaged["state"] == "damaged" and "found by restore" in damaged["problem"]

    edited = dict(manifest, version="9.0.0")
    (folder / "manifest.json").write_text(json.dumps(edited))
    assert "was edited" in db_backups.quick_problem(str(folder), db_backups.read_manifest(str(folder)))
    unsealed = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    (folder / "manifest.json").write_text(json.dumps(unsealed))
    assert "carries no checksum" in db_backups.quick_problem(str(folder), db_backups.read_manifest(str(folder)))
