"""The repair mark, the broken-site check and the write counts a rollback reports: pure logic on files."""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.fpt.sec.plugins.module_utils import site_fence
from ansible_collections.fpt.sec.plugins.module_utils.postgres import writes_between


def test_no_mark_and_a_sound_current_let_every_operation_through(tmp_path: Path) -> None:
    (tmp_path / "releases/8.0.0").mkdir(parents=True)
    (tmp_path / "current").symlink_to("releases/8.0.0")
    assert site_fence.read(str(tmp_path)) is None and site_fence.broken_current(str(tmp_path)) is None
    assert site_fence.refusal("prod.example", "app1", None, None) is None


def test_a_mark_refuses_naming_the_repair_unless_allowed_and_hosts_add_up(tmp_path: Path) -> None:
    site_fence.write(str(tmp_path), site_fence.new_mark("op1", "upgrade", ["app2"], "app2 stopped answering"))
    site_fence.write(str(tmp_path), site_fence.new_mark("op2", "restore", ["api1"], "api1 stopped answering"))
    mark = site_fence.read(str(tmp_path))
    assert mark["hosts"] == ["api1", "app2"] and mark["operation_id"] == "op2"
    assert mark["reason"] == "app2 stopped answering; then api1 stopped answering"
    said = site_fence.refusal("prod.example", "app1", mark, None)
    assert said == ("prod.example needs repair (app2 stopped answering; then api1 stopped answering; operation op2):"
                    " nothing was changed; run sec site repair prod.example first")
    assert site_fence.refusal("prod.example", "app1", mark, None, ["repair_needed"]) is None
    assert site_fence.remove(str(tmp_path)) and not site_fence.remove(str(tmp_path))


def test_an_unreadable_mark_still_fences(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    Path(site_fence.mark_path(str(tmp_path))).write_text("{not json")
    mark = site_fence.read(str(tmp_path))
    assert mark is not None and "is not valid JSON" in mark["reason"]
    assert "run sec site repair s first" in site_fence.refusal("s", None, mark, None)


def test_current_naming_a_missing_release_is_broken(tmp_path: Path) -> None:
    (tmp_path / "current").symlink_to("releases/9.9.9")
    broken = site_fence.broken_current(str(tmp_path))
    assert broken == "current -> releases/9.9.9 is missing"
    assert site_fence.refusal("s", "app2", None, broken) == (
        "s is broken on app2 (current -> releases/9.9.9 is missing): nothing was changed; run sec site repair s first")
    assert site_fence.refusal("s", "app2", None, broken, ["broken"]) is None
    os.unlink(tmp_path / "current")
    assert site_fence.broken_current(str(tmp_path)) is None  # no current at all: not a deployed site


def test_writes_between_two_readings_name_each_table_written() -> None:
    before = {"public.projects": [10, 5, 0], "public.shots": [3, 0, 0]}
    after = {"public.projects": [11, 5, 0], "public.shots": [3, 0, 0], "public.notes": [2, 1, 0]}
    assert writes_between(before, after) == {"public.projects": {"inserted": 1, "updated": 0, "deleted": 0},
                                             "public.notes": {"inserted": 2, "updated": 1, "deleted": 0}}
    # Statistics reset in between (counts went down): counted from zero, never negative.
    assert writes_between({"public.t": [9, 9, 9]}, {"public.t": [1, 0, 0]}) == {
        "public.t": {"inserted": 1, "updated": 0, "deleted": 0}}
