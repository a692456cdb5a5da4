"""Release archives on the controller and on the App server, without a sandbox:
the releases folder (plugin_utils/release_folder.py: checksum states, the plan, what to add), `sec releases
add` (sec_wrapper/release_store.py) and the release modules run as Ansible runs them (release_stage,
release_activate, release_prune, upgrade_journal). Hostile archives are refused by both entry points."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.plugin_utils import release_folder

from sec_wrapper.errors import SecError
from sec_wrapper.release_store import add_release
from sec_wrapper.sandbox.releases import build_release

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "collections/ansible_collections/fpt/sec/plugins/modules"


# -- archives ---------------------------------------------------------------------------------------------
def hostile(folder: Path, version: str, kind: str) -> Path:
    """A release archive that is valid except for one member that reaches out of its folder."""
    top = f"shotgun-{version}"
    files = {"VERSION": f"{version}\n".encode(), "public/index.html": b"<html></html>\n"}
    manifest = {"name": "shotgun", "version": version, "migrations": [],
                "files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    path = folder / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, data: bytes | None = None, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add(top)
        add(f"{top}/MANIFEST.json", json.dumps(manifest).encode())
        add(f"{top}/public")
        for rel, data in files.items():
            add(f"{top}/{rel}", data)
        if kind == "dotdot":
            add(f"{top}/../../evil.txt", b"x")
        elif kind == "absolute":
            add("/tmp/sec-evil.txt", b"x")
        elif kind == "outward_link":
            add(f"{top}/public/escape", link="../../../../etc")
    return path


HOSTILE = [("dotdot", "'..'"), ("absolute", "absolute path"), ("outward_link", "points outside")]


# -- the releases folder ----------------------------------------------------------------------------------
def test_checksum_states_and_the_plan(tmp_path: Path) -> None:
    for version in ("8.0.0", "8.1.0", "8.1.2", "8.2.0"):
        build_release(tmp_path, version)
    (tmp_path / "shotgun-8.1.0.tar.gz.sha256").unlink()  # dropped in by hand: unverified
    (tmp_path / "shotgun-8.2.0.tar.gz.sha256").write_text("0" * 64 + "  shotgun-8.2.0.tar.gz\n")
    (tmp_path / "notes.txt").write_text("not a release")
    listed = release_folder.list_releases(str(tmp_path), checksums=True)
    assert [(r["version"], r["state"]) for r in listed] == [
        ("8.0.0", "verified"), ("8.1.0", "unverified"), ("8.1.2", "verified"), ("8.2.0", "bad")]
    assert all(r["unpacked_size"] > r["size"] for r in listed)

    plan = release_folder.plan("8.0.0", "8.1.2", str(tmp_path))
    assert plan["error"] is None
    assert [s["version"] for s in plan["steps"]] == ["8.1.2"]
    bad = release_folder.plan("8.0.0", "8.2.0", str(tmp_path))
    assert "shotgun-8.2.0.tar.gz" in bad["error"] and ".sha256" in bad["error"]


def test_a_missing_step_names_the_releases_to_add(tmp_path: Path) -> None:
    for version in ("8.0.0", "8.1.2", "8.3.0"):
        build_release(tmp_path, version)
    plan = release_folder.plan("8.0.0", "8.3.0", str(tmp_path))
    assert plan["steps"] == [] and plan["missing"] == ["8.2.x"]
    assert "8.2.x (any patch)" in plan["error"]
    assert release_folder.plan("8.0.0", "9.0.0", str(tmp_path))["missing"] == ["8.2.x", "9.0.0"]
    assert "downgrades are refused" in release_folder.plan("8.3.0", "8.1.2", str(tmp_path))["error"]


def test_two_archives_of_one_version_are_an_error(tmp_path: Path) -> None:
    build_release(tmp_path, "8.1.0")
    build_release(tmp_path, "8.1.0", name="other")
    assert "two archives of 8.1.0" in release_folder.plan("8.0.0", "8.1.0", str(tmp_path))["error"]


# -- sec releases add -------------------------------------------------------------------------------------
def test_add_verifies_copies_and_is_idempotent(tmp_path: Path) -> None:
    source = build_release(tmp_path / "in", "8.2.0")
    store = tmp_path / "releases"
    added = add_release(source, store)
    assert added["added"] and added["version"] == "8.2.0"
    assert (store / "shotgun-8.2.0.tar.gz").read_bytes() == source.read_bytes()
    assert release_folder.checksum_state(str(store / "shotgun-8.2.0.tar.gz"))[0] == "verified"
    assert add_release(source, store)["added"] is False

    other = build_release(tmp_path / "broken", "8.2.0", broken=True)
    with pytest.raises(SecError, match="already in .* with different content"):
        add_release(other, store)
    assert (store / "shotgun-8.2.0.tar.gz").read_bytes() == source.read_bytes()


@pytest.mark.parametrize("kind, words", HOSTILE)
def test_add_refuses_archives_that_escape_their_folder(tmp_path: Path, kind: str, words: str) -> None:
    source = hostile(tmp_path, "8.1.0", kind)
    store = tmp_path / "releases"
    with pytest.raises(SecError, match="refused, nothing was added") as info:
        add_release(source, store)
    assert words in str(info.value)
    assert not store.exists() or not list(store.iterdir())


# -- the modules, run as Ansible runs them ------------------------------------------------------------------
def run_module(name: str, args: dict, tmp_path: Path, check: bool = False) -> dict:
    """The module's own process with its arguments file, as AnsiballZ gives them; returns its JSON."""
    args_file = tmp_path / f"args-{name}-{os.urandom(4).hex()}.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "collections")}
    done = subprocess.run([sys.executable, str(MODULES / f"{name}.py"), str(args_file)], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    return json.loads(done.stdout)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for sub in ("shared/config", "tmp", "releases"):
        (site / sub).mkdir(parents=True)
    return site


@pytest.mark.parametrize("kind, words", HOSTILE)
def test_release_stage_refuses_archives_that_escape_their_folder(tmp_path: Path, site: Path, kind: str,
                                                                 words: str) -> None:
    archive = hostile(tmp_path, "8.1.0", kind)
    out = run_module("release_stage", {"site_dir": str(site), "archive": str(archive), "version": "8.1.0"},
                     tmp_path)
    assert out.get("failed") and "nothing was unpacked" in out["msg"] and words in out["msg"], out
    assert os.listdir(site / "releases") == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/sec-evil.txt").exists()


def test_release_stage_is_idempotent_and_replaces_a_changed_copy(tmp_path: Path, site: Path) -> None:
    archive = build_release(tmp_path / "in", "8.1.2")
    args = {"site_dir": str(site), "archive": str(archive), "version": "8.1.2"}
    assert run_module("release_stage", args, tmp_path, check=True)["outcome"] == "staged"
    assert not (site / "releases/8.1.2").exists()
    first = run_module("release_stage", args, tmp_path)
    assert first["changed"] and first["outcome"] == "staged", first
    assert first["migrations"] == ["20200101000000_create_base_schema.sql", "20200601000000_add_shot_status.sql"]
    assert (site / "releases/8.1.2/VERSION").read_text() == "8.1.2\n"
    again = run_module("release_stage", args, tmp_path)
    assert not again["changed"] and again["outcome"] == "already_staged"

    (site / "releases/8.1.2/public/index.html").write_text("edited on the server\n")
    replaced = run_module("release_stage", args, tmp_path)
    assert replaced["changed"] and replaced["outcome"] == "replaced" and "modified" in replaced["reason"]
    assert "edited" not in (site / "releases/8.1.2/public/index.html").read_text()
    assert sorted(os.listdir(site / "releases")) == ["8.1.2"]

    # The running release is never replaced under the site.
    os.symlink("releases/8.1.2", site / "current")
    (site / "releases/8.1.2/public/index.html").write_text("edited again\n")
    refused = run_module("release_stage", args, tmp_path)
    assert refused["failed"] and "running one" in refused["msg"]

    wrong = run_module("release_stage", {**args, "version": "8.2.0"}, tmp_path)
    assert wrong["failed"] and "is release 8.1.2, not 8.2.0" in wrong["msg"]


def test_release_activate_switches_restarts_and_goes_back(tmp_path: Path, site: Path) -> None:
    for version in ("8.0.0", "8.1.2"):
        run_module("release_stage", {"site_dir": str(site), "archive": str(build_release(tmp_path / "in", version)),
                                     "version": version}, tmp_path)
    os.symlink("releases/8.0.0", site / "current")
    args = {"site_dir": str(site), "version": "8.1.2", "require_migrations": False}
    check = run_module("release_activate", args, tmp_path, check=True)
    assert check["changed"] and os.readlink(site / "current") == "releases/8.0.0"
    done = run_module("release_activate", args, tmp_path)
    assert done["changed"] and done["previous_version"] == "8.0.0" and done["restarted"]
    assert os.readlink(site / "current") == "releases/8.1.2" and (site / "tmp/restart.txt").exists()
    stamp = (site / "tmp/restart.txt").stat().st_mtime_ns
    same = run_module("release_activate", args, tmp_path)
    assert not same["changed"] and not same["restarted"]
    assert (site / "tmp/restart.txt").stat().st_mtime_ns == stamp
    back = run_module("release_activate", {**args, "version": "8.0.0"}, tmp_path)
    assert back["changed"] and back["previous_version"] == "8.1.2" and os.readlink(site / "current") == "releases/8.0.0"
    missing = run_module("release_activate", {**args, "version": "9.0.0"}, tmp_path)
    assert missing["failed"] and "not staged" in missing["msg"]


def test_release_prune_and_the_journal_module(tmp_path: Path, site: Path) -> None:
    for version in ("8.0.0", "8.1.2", "8.2.0", "8.3.0"):
        run_module("release_stage", {"site_dir": str(site), "archive": str(build_release(tmp_path / "in", version)),
                                     "version": version}, tmp_path)
    os.symlink("releases/8.2.0", site / "current")
    pruned = run_module("release_prune", {"site_dir": str(site), "keep": 1}, tmp_path)
    assert pruned["removed"] == ["8.0.0", "8.1.2"] and pruned["kept"] == ["8.2.0", "8.3.0"]
    assert sorted(os.listdir(site / "releases")) == ["8.2.0", "8.3.0"]
    assert not run_module("release_prune", {"site_dir": str(site), "keep": 1}, tmp_path)["changed"]

    query = run_module("upgrade_journal", {"site_dir": str(site)}, tmp_path)
    assert query["recovery_needed"] is False and query["running_version"] == "8.2.0"
    assert query["staged"] == ["8.2.0", "8.3.0"] and query["free_bytes"] > 0 and query["maintenance"] is False
    record = {"site_dir": str(site), "state": "present", "from_version": "8.2.0", "to_version": "8.3.0",
              "steps": ["8.3.0"], "backup": "b1", "previous_link": "releases/8.2.0", "schema_before": ["1", "2"]}
    assert run_module("upgrade_journal", record, tmp_path)["changed"]
    assert not run_module("upgrade_journal", record, tmp_path)["changed"]
    found = run_module("upgrade_journal", {"site_dir": str(site)}, tmp_path)
    assert found["recovery_needed"] and found["journal"]["backup"] == "b1" and found["journal"]["phase"] == "window"
    assert run_module("upgrade_journal", {**record, "phase": "rolling_back"}, tmp_path)["changed"]
    assert run_module("upgrade_journal", {"site_dir": str(site), "state": "absent"}, tmp_path)["changed"]
    assert not (site / "tmp/sec-upgrade.json").exists()
