"""Issue 26, a backup host: a cluster host with the role `backup` and a folder for the copies, checked over
SSH when it is added (it answers, its folder is writable, its free space is shown). The sandbox has one,
backup1, on its own address with its own sshd and root; `sec sandbox up --json` gives the line that
registers it."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sec_wrapper import history, store
from sec_wrapper.inventory import cluster_inventory
from tests.integration.conftest import sec, site_by_name

pytestmark = pytest.mark.integration


def test_the_sandbox_backup_host_is_registered_checked_and_in_the_inventory(sandbox: dict, cluster: str) -> None:
    backup1 = sandbox["backup_host"]
    assert backup1["address"] != sandbox["app_server"]["address"] and Path(backup1["backup_dir"]).is_dir()
    assert Path(backup1["backup_dir"]).is_relative_to(Path(backup1["root"]))
    line = sandbox["commands"][1]
    assert line.startswith(f"sec host add sandbox backup1 --address {backup1['address']} ") and "--roles backup" in line
    added = sec(*shlex.split(line)[1:])
    assert f"keeps copies in {backup1['backup_dir']} (" in added.stdout and " free)" in added.stdout, added.stdout
    try:
        hosts = {h["name"]: h for h in json.loads(sec("host", "list", cluster, "--json").stdout)}
        assert hosts["backup1"]["roles"] == ["backup"] and hosts["backup1"]["backup_dir"] == backup1["backup_dir"]
        inventory = cluster_inventory(store.load_cluster(cluster))
        assert list(inventory["all"]["children"]["backup_servers"]["hosts"]) == ["backup1"]
        assert inventory["all"]["hosts"]["backup1"]["sec_backup_dir"] == backup1["backup_dir"]
        # A backup host carries no site: the site operations' plays never run there.
        assert "backup1" not in inventory["all"]["children"]["app_servers"]["hosts"]
    finally:
        sec("host", "remove", cluster, "backup1")


def test_a_backup_host_without_a_writable_folder_is_refused_in_one_line(sandbox: dict, cluster: str) -> None:
    backup1 = sandbox["backup_host"]
    login = ["--address", backup1["address"], "--port", str(backup1["ssh"]["port"]), "--user",
             backup1["ssh"]["user"], "--key", backup1["ssh"]["key"]]
    before = json.loads(sec("host", "list", cluster, "--json").stdout)
    refused = sec("host", "add", cluster, "nas", *login, "--roles", "backup", check=False)
    assert refused.returncode != 0 and "a backup host needs --backup-dir" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    unwritable = Path(backup1["root"]) / "read-only"
    unwritable.mkdir(exist_ok=True)
    unwritable.chmod(0o555)
    try:
        # As root every folder is writable: a file stands in the way instead, which no user can write into.
        blocked = unwritable / "a-file"
        blocked.write_text("")
        refused = sec("host", "add", cluster, "nas", *login, "--roles", "backup", "--backup-dir",
                      str(blocked / "copies"), check=False)
        assert refused.returncode != 0 and "is not writable" in refused.stderr, refused.stderr
        assert "was not added" in refused.stderr.strip().splitlines()[-1], refused.stderr
    finally:
        unwritable.chmod(0o755)
        (unwritable / "a-file").unlink(missing_ok=True)
        unwritable.rmdir()
    assert json.loads(sec("host", "list", cluster, "--json").stdout) == before


STAGING = "staging.teststudio.com"
PROD = "prod.teststudio.com"


@contextmanager
def registered_backup_host(sandbox: dict, cluster: str) -> Iterator[Path]:
    """backup1 in the session's cluster for one test; yields staging's copies folder on it."""
    backup1 = sandbox["backup_host"]
    sec(*shlex.split(sandbox["commands"][1])[1:])
    copies = Path(backup1["backup_dir"]) / cluster / "com_teststudio_staging"
    try:
        yield copies
    finally:
        sec("host", "remove", cluster, "backup1")
        shutil.rmtree(Path(backup1["backup_dir"]) / cluster, ignore_errors=True)


def backup(*extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return sec("backup", STAGING, "--keep", "50", "--label", "copied", *extra, "--json", check=check)


def test_each_backup_is_copied_to_the_backup_host_and_verified_there(sandbox: dict, cluster: str) -> None:
    site_dir = Path(site_by_name(sandbox, STAGING)["site_dir"])
    made: list[str] = []
    try:
        with registered_backup_host(sandbox, cluster) as copies:
            first = json.loads(backup().stdout)
            made.append(first["name"])
            assert first["copies"] == [{"host": "backup1", "path": str(copies / first["name"]), "method": "rsync",
                                        "removed": []}], first
            original, copy = site_dir / "db_backup" / first["name"], copies / first["name"]
            assert (copy / "manifest.json").read_bytes() == (original / "manifest.json").read_bytes()
            assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == sorted(
                [p.relative_to(original).as_posix() for p in original.rglob("*") if p.is_file()
                 and not p.name.startswith("sec-")] + ["sec-copy.json"])
            assert json.loads((copy / "sec-copy.json").read_text())["verified_at"]

            skipped = json.loads(backup("--no-copy").stdout)
            made.append(skipped["name"])
            assert skipped["copies"] == [] and not (copies / skipped["name"]).exists()

            # Retention on the backup host, independent of the App server's: the newest copy and a pinned one stay.
            (copy / ".sec-pinned").write_text("")
            second = json.loads(backup().stdout)
            made.append(second["name"])
            third = json.loads(backup("--keep-copies", "1").stdout)
            made.append(third["name"])
            assert third["copies"][0]["removed"] == [second["name"]], third
            assert sorted(p.name for p in copies.iterdir()) == sorted([first["name"], third["name"]])
            assert (site_dir / "db_backup" / second["name"]).is_dir(), "the App server's backup is not touched"

            # The listing: each backup once, with every place it is and that place's state; a backup the App
            # server lost (a rebuilt disk) is still listed from its copy.
            listed = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--json").stdout)}
            places = {p["host"]: p["state"] for p in listed[third["name"]]["places"]}
            assert places == {"127.0.0.1": "verified", "backup1": "verified"} or places == {
                "app1": "verified", "backup1": "verified"}, listed[third["name"]]
            assert [(p["host"], p["state"]) for p in listed[skipped["name"]]["places"]] == [
                (next(iter(places)), "verified"), ("backup1", "missing")]
            shutil.rmtree(original)
            listed = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--json").stdout)}
            assert listed[first["name"]]["kind"] == "copy" and listed[first["name"]]["places"] == [
                {"host": "backup1", "state": "verified", "verified_at": listed[first["name"]]["places"][0][
                    "verified_at"], "pinned": True}], listed[first["name"]]

            # A copy that cannot be made fails the operation loudly; the backup itself is kept.
            shutil.rmtree(copies)
            copies.parent.mkdir(parents=True, exist_ok=True)
            copies.write_text("a file where the site's copies folder goes")
            failed = backup(check=False)
            assert failed.returncode != 0
            last = failed.stderr.strip().splitlines()[-1]
            assert "Pull the backup from the App server" in last and "backup1" in last, failed.stderr
            ops = [op for op in history.list_operations(site={STAGING}) if op["operation"] == "backup"]
            assert ops[0]["status"] == "failed"
            new = sorted({p.name for p in (site_dir / "db_backup").iterdir() if "_copied" in p.name} - set(made))
            assert len(new) == 1, new  # the failed run's backup, kept on the App server
            made.extend(new)
    finally:
        for name in made:
            shutil.rmtree(site_dir / "db_backup" / name, ignore_errors=True)


def test_a_backup_the_app_server_lost_is_restored_from_the_backup_hosts_copy(sandbox: dict, cluster: str) -> None:
    """An App server rebuilt with an empty db_backup: `sec restore SITE BACKUP` brings the copy back (verified
    on arrival) and restores it."""
    from tests.integration.test_backup_restore import change_rows, content

    site = site_by_name(sandbox, STAGING)
    site_dir = Path(site["site_dir"])
    before = content(site)
    name = None
    try:
        with registered_backup_host(sandbox, cluster) as copies:
            name = json.loads(backup().stdout)["name"]
            shutil.rmtree(site_dir / "db_backup" / name)
            change_rows(site)
            assert content(site) != before
            done = json.loads(sec("restore", STAGING, name, "--json").stdout)
            assert done["backup"] == name and content(site) == before
            assert (site_dir / "db_backup" / name / "manifest.json").read_bytes() == (
                copies / name / "manifest.json").read_bytes(), "the copy came back under its name"
            events = history.load_events(done["operation"])
            fetched = [e["event_data"]["res"] for e in events if e["event"] == "runner_on_ok"
                       and e["event_data"].get("task") == "Bring the backup back from the backup host's copy"]
            assert len(fetched) == 1 and fetched[0]["method"] == "rsync" and fetched[0]["verified"], fetched
    finally:
        if name:
            shutil.rmtree(site_dir / "db_backup" / name, ignore_errors=True)
        if content(site) != before:
            raise AssertionError("staging was left changed")


def test_a_pinned_backup_outlives_retention_in_every_place(sandbox: dict, cluster: str) -> None:
    """`sec backups SITE --pin NAME` pins the backup on the App server and on the backup host: retention by
    count removes the unpinned backup beside it in both places, not the pinned one; --unpin lets it go. A name
    that is nowhere is refused with one line and changes nothing."""
    site_dir = Path(site_by_name(sandbox, STAGING)["site_dir"])
    folder = site_dir / "db_backup"
    # The other tests' backups wait aside, so that `--keep 1` weighs only this test's backups.
    aside = site_dir / "db_backup.aside"
    aside.mkdir()
    for entry in folder.iterdir():
        entry.rename(aside / entry.name)
    try:
        with registered_backup_host(sandbox, cluster) as copies:
            first, second = (json.loads(backup().stdout)["name"] for _ in range(2))
            pinned = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--pin", first, "--json").stdout)}
            assert {p["host"]: p["pinned"] for p in pinned[first]["places"]}["backup1"] is True, pinned[first]
            assert all(p["pinned"] for p in pinned[first]["places"]), pinned[first]
            assert not any(p["pinned"] for p in pinned[second]["places"]), pinned[second]
            assert (folder / first / ".sec-pinned").exists() and (copies / first / ".sec-pinned").exists()

            third = json.loads(backup("--keep", "1", "--keep-copies", "1").stdout)
            assert sorted(p.name for p in folder.iterdir()) == sorted([first, third["name"]])
            assert sorted(p.name for p in copies.iterdir()) == sorted([first, third["name"]])
            assert third["copies"][0]["removed"] == [second], third
            # A copy starts unpinned: the pins stay with the place that holds them.
            assert not (copies / third["name"] / ".sec-pinned").exists()

            # Unpinned in both places: retention (which reads these files) may remove it again.
            sec("backups", STAGING, "--unpin", first)
            assert not (folder / first / ".sec-pinned").exists() and not (copies / first / ".sec-pinned").exists()
            fourth = third["name"]

            before = history.list_operations(site={STAGING})
            refused = sec("backups", STAGING, "--pin", "20000101T000000Z_1.0.0", check=False)
            assert refused.returncode != 0, refused.stdout
            last = refused.stderr.strip().splitlines()[-1]
            assert "There is no backup 20000101T000000Z_1.0.0" in last and "sec backups SITE" in last, refused.stderr
            both = sec("backups", STAGING, "--pin", fourth, "--unpin", fourth, check=False)
            assert both.returncode != 0 and "give --pin or --unpin, not both" in both.stderr, both.stderr
            assert len(history.list_operations(site={STAGING})) == len(before) + 1  # only the run that looked
            assert not (folder / fourth / ".sec-pinned").exists()
    finally:
        for entry in folder.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
        for entry in aside.iterdir():
            entry.rename(folder / entry.name)
        aside.rmdir()


def test_sync_db_brings_a_given_backup_the_source_lost_from_the_backup_hosts_copy(sandbox: dict,
                                                                                  cluster: str) -> None:
    """`sec sync-db PROD STAGING --use-backup NAME` after production's App server lost NAME: staging's App server
    pulls backup1's copy straight from it (checked on arrival) and staging gets exactly production's data."""
    from tests.integration.test_sync import data

    prod, staging = site_by_name(sandbox, PROD), site_by_name(sandbox, STAGING)
    prod_backups = Path(prod["site_dir"]) / "db_backup"
    name = None
    try:
        with registered_backup_host(sandbox, cluster):
            made = json.loads(sec("backup", PROD, "--keep", "0", "--label", "offhost", "--json").stdout)
            name = made["name"]
            assert made["copies"] and made["copies"][0]["method"] == "rsync", made
            expected, staging_before = data(prod), data(staging)
            shutil.rmtree(prod_backups / name)
            done = json.loads(sec("sync-db", PROD, STAGING, "--use-backup", name, "--yes", "--json").stdout)
            assert done["backup"] == name and done["transfer"] == "rsync" and not done["new_backup"], done
            assert data(staging) == expected
            assert not (prod_backups / name).exists(), "the source's App server is not written to"
            # Staging's own data back (the sync kept it as the undo), for the tests that follow.
            sec("restore", STAGING, "--undo", "--yes")
            assert data(staging) == staging_before
    finally:
        if name:
            shutil.rmtree(prod_backups / name, ignore_errors=True)


def test_a_flipped_byte_in_a_copy_is_caught_and_listed(sandbox: dict, cluster: str) -> None:
    site_dir = Path(site_by_name(sandbox, STAGING)["site_dir"])
    name = None
    try:
        with registered_backup_host(sandbox, cluster) as copies:
            name = json.loads(backup().stdout)["name"]
            victim = max((p for p in (copies / name / "dump").iterdir() if p.is_file()), key=lambda p: p.stat().st_size)
            data = bytearray(victim.read_bytes())
            data[len(data) // 2] ^= 0x01  # same size: only a full read finds it
            victim.write_bytes(bytes(data))
            quick = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--json").stdout)}[name]
            assert {p["host"]: p["state"] for p in quick["places"]}["backup1"] == "verified"
            checked = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--check", "--json").stdout)}[name]
            places = {p["host"]: p["state"] for p in checked["places"]}
            assert places["backup1"] == "damaged" and checked["state"] == "verified", checked
            # And it stays listed damaged without a full check, until a full check passes again.
            again = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--json").stdout)}[name]
            assert {p["host"]: p["state"] for p in again["places"]}["backup1"] == "damaged"
    finally:
        if name:
            shutil.rmtree(site_dir / "db_backup" / name, ignore_errors=True)


def test_a_backup_host_that_does_not_answer_fails_the_backup_after_it_is_made(sandbox: dict, cluster: str) -> None:
    """backup1 taken off the network (its sshd and its sessions killed by pid): the backup is made and kept, the
    operation fails naming backup1, and the listing says backup1 did not answer."""
    from sec_wrapper.sandbox import ssh
    from sec_wrapper.sandbox.processes import stop

    site_dir = Path(site_by_name(sandbox, STAGING)["site_dir"])
    state_file = Path(sandbox["dir"]) / "state.json"
    made_before = {p.name for p in (site_dir / "db_backup").iterdir()}
    try:
        with registered_backup_host(sandbox, cluster):
            state = json.loads(state_file.read_text())
            stop(state["pids"]["sshd:backup1"], signal.SIGKILL)
            try:
                failed = backup(check=False)
                assert failed.returncode != 0
                # Named as it was registered: backup1's address and port.
                where = f"{sandbox['backup_host']['address']}:{sandbox['backup_host']['ssh']['port']} unreachable"
                assert where in failed.stderr.strip().splitlines()[-1], failed.stderr
                new = sorted({p.name for p in (site_dir / "db_backup").iterdir()} - made_before)
                assert len(new) == 1 and (site_dir / "db_backup" / new[0] / "manifest.json").is_file()
                listed = {b["name"]: b for b in json.loads(sec("backups", STAGING, "--json").stdout)}
                assert {p["host"]: p["state"] for p in listed[new[0]]["places"]}["backup1"] == "did not answer"
            finally:
                folder = Path(sandbox["dir"]) / "hosts" / "backup1" / "ssh"
                state = json.loads(state_file.read_text())
                state["pids"]["sshd:backup1"] = ssh.start(folder, state["backup_host"]["ssh"])
                state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    finally:
        for name in {p.name for p in (site_dir / "db_backup").iterdir()} - made_before:
            shutil.rmtree(site_dir / "db_backup" / name, ignore_errors=True)
