"""A site's releases folder and `current` link (module_utils/site_releases.py), and the upgrade journal
(module_utils/upgrade_journal.py): pure file logic, no database."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import site_releases, upgrade_journal
from ansible_collections.fpt.sec.plugins.module_utils.db_migrations import error_lines
from ansible_collections.fpt.sec.plugins.module_utils.site_releases import ReleaseError


def make_release(site: Path, version: str, migrations: list[str] = (), manifest: bool = True) -> Path:  # type: ignore[assignment]
    folder = site / "releases" / version
    (folder / "db" / "migrate").mkdir(parents=True)
    (folder / "VERSION").write_text(f"{version}\n")
    for name in migrations:
        (folder / "db" / "migrate" / name).write_text("SELECT 1;\n")
    if manifest:
        (folder / "MANIFEST.json").write_text(json.dumps({"name": "shotgun", "version": version,
                                                         "migrations": list(migrations), "files": {}}))
    return folder


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "com_teststudio_prod"
    (site / "shared").mkdir(parents=True)
    (site / "tmp").mkdir()
    return site


def test_migrations_run_in_numeric_version_order(site: Path) -> None:
    folder = make_release(site, "8.2.0", ["20201001000000_b.sql", "9_short.sql", "20200101000000_a.sql"])
    found = site_releases.migrations_of(str(folder))
    assert [m["version"] for m in found] == ["9", "20200101000000", "20201001000000"]
    assert found[1] == {"version": "20200101000000", "name": "a", "file": "20200101000000_a.sql",
                        "path": str(folder / "db/migrate/20200101000000_a.sql")}


def test_migrations_without_a_manifest_come_from_the_folder(site: Path) -> None:
    folder = make_release(site, "8.1.0", ["20200601000000_add.sql"], manifest=False)
    (folder / "db/migrate/README").write_text("not a migration")
    assert [m["file"] for m in site_releases.migrations_of(str(folder))] == ["20200601000000_add.sql"]


@pytest.mark.parametrize("names, word", [(["add_shots.sql"], "is not named"),
                                         (["1_a.sql", "1_b.sql"], "share version 1")])
def test_bad_migration_names_are_refused(site: Path, names: list[str], word: str) -> None:
    folder = make_release(site, "8.1.0", names)
    with pytest.raises(ReleaseError, match=word):
        site_releases.migrations_of(str(folder))


def test_switch_replaces_the_link_atomically_and_keeps_its_style(site: Path) -> None:
    make_release(site, "8.0.0")
    make_release(site, "8.1.0")
    os.symlink("releases/8.0.0", site / "current")
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        # A reader all along the switch sees one release or the other, never no link.
        while not stop.is_set():
            try:
                seen.add(os.readlink(site / "current"))
            except FileNotFoundError:
                seen.add("MISSING")

    reader = threading.Thread(target=watch)
    reader.start()
    for _ in range(200):
        site_releases.switch_current(str(site), "releases/8.1.0")
        site_releases.switch_current(str(site), "releases/8.0.0")
    stop.set()
    reader.join()
    assert seen <= {"releases/8.0.0", "releases/8.1.0"}
    assert site_releases.current_state(str(site)) == {"link": "releases/8.0.0",
                                                      "release": str(site / "releases/8.0.0"), "version": "8.0.0"}
    assert not [p for p in os.listdir(site) if p.startswith(".current")]
    assert site_releases.link_text(str(site), "8.1.0", "releases/8.0.0") == "releases/8.1.0"
    assert site_releases.link_text(str(site), "8.1.0", "/x/releases/8.0.0") == str(site / "releases/8.1.0")


def test_a_real_current_folder_is_not_switched(site: Path) -> None:
    (site / "current").mkdir()
    with pytest.raises(ReleaseError, match="real folder"):
        site_releases.switch_current(str(site), "releases/8.1.0")
    assert (site / "current").is_dir() and not (site / "current").is_symlink()


def test_touch_moves_the_restart_stamp_every_time(site: Path) -> None:
    path = str(site / "tmp/restart.txt")
    site_releases.touch(path)
    first = os.stat(path).st_mtime_ns
    site_releases.touch(path)
    assert os.stat(path).st_mtime_ns > first


def test_prune_keeps_the_newest_the_current_and_the_protected(site: Path) -> None:
    for version in ("8.0.0", "8.1.2", "8.2.0", "8.3.0", "9.0.0"):
        make_release(site, version)
    (site / "releases" / "not-a-version").mkdir()
    (site / "releases" / ".8.4.0.abc.partial").mkdir()
    os.symlink("releases/8.1.2", site / "current")
    remove, kept = site_releases.prune_plan(str(site), 2, protect=["8.0.0"])
    assert remove == ["8.2.0"]
    assert kept == ["8.0.0", "8.1.2", "8.3.0", "9.0.0"]
    assert site_releases.staged_versions(str(site)) == ["8.0.0", "8.1.2", "8.2.0", "8.3.0", "9.0.0"]
    assert site_releases.leftovers(str(site), max_age=0) == [str(site / "releases" / ".8.4.0.abc.partial")]
    assert site_releases.leftovers(str(site)) == []  # a young one may be a staging in progress


def test_staged_difference_sees_an_edited_file(site: Path) -> None:
    folder = make_release(site, "8.1.0")
    (folder / "public").mkdir()
    (folder / "public/index.html").write_text("hello\n")
    import hashlib
    manifest = {"name": "shotgun", "version": "8.1.0", "migrations": [],
                "files": {"VERSION": hashlib.sha256(b"8.1.0\n").hexdigest(),
                          "public/index.html": hashlib.sha256(b"hello\n").hexdigest()}}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    assert site_releases.staged_difference(str(folder), manifest) is None
    (folder / "public/index.html").write_text("hacked\n")
    assert "modified" in site_releases.staged_difference(str(folder), manifest)
    (folder / "public/index.html").unlink()
    assert "missing" in site_releases.staged_difference(str(folder), manifest)
    assert "another build" in site_releases.staged_difference(str(folder), {**manifest, "files": {}})


def test_journal_round_trip_and_removal(site: Path) -> None:
    record = upgrade_journal.new_record("op-1", "8.0.0", "8.2.0", ["8.1.2", "8.2.0"], "20240501T120000Z_8.0.0",
                                        "releases/8.0.0", ["20200101000000"])
    path = upgrade_journal.write(str(site), record)
    assert path == str(site / "tmp/sec-upgrade.json")
    assert upgrade_journal.read(str(site)) == record
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert upgrade_journal.remove(str(site)) is True
    assert upgrade_journal.read(str(site)) is None
    assert upgrade_journal.remove(str(site)) is False


@pytest.mark.parametrize("text, word", [("{not json", "not valid JSON"), ('{"from": "8.0.0"}', "has no 'to'"),
                                        ('{"from": "8.0.0", "to": "x", "steps": [], "phase": "window"}', "bad version"),
                                        ('{"from": "8.0.0", "to": "8.1.0", "steps": [], "phase": "done"}', "phase")])
def test_a_damaged_journal_is_an_error_not_no_journal(site: Path, text: str, word: str) -> None:
    (site / "tmp/sec-upgrade.json").write_text(text)
    with pytest.raises(upgrade_journal.JournalError, match=word):
        upgrade_journal.read(str(site))


def test_psql_errors_read_as_one_short_line() -> None:
    stderr = ("psql:/var/rails/x/releases/8.3.0/db/migrate/20990101000000_broken_migration.sql:2: ERROR:  division"
              " by zero\n")
    assert error_lines(stderr, 3) == "line 2: ERROR: division by zero"
    assert error_lines("", 2) == "psql exit status 2"
