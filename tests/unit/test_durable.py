"""durable.write_atomic: the old file or the complete new one, its mode, and no temporary file left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic


def test_replaces_the_file_with_the_mode_asked_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    target.write_bytes(b"old")
    write_atomic(str(target), b"new", 0o644)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


def test_a_new_file_gets_the_umasks_mode(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / "new.json"), b"{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640


def test_a_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "journal.json"
    target.write_bytes(b"old")

    def refuse(_fd: int) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(str(target), b"new", 0o644, refuse)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]
