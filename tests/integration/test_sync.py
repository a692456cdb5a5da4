"""Production to staging sync (sec sync-db) and add-only media sync (sec sync-media) on the real sandbox.

Both sandbox sites live on one App server. A second cluster reaches the same sshd as `localhost` rather
than 127.0.0.1: for sec those are two hosts, so a sync from one cluster to the other goes the host-to-host
way (the target's App server pulls over SSH with the forwarded agent) while a sync within one cluster is a
local copy. Every test puts the sandbox back as it found it, except that staging's data may stay a copy of
production's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.integration.conftest import (
    http_get,
    run_playbook,
    sandbox_inventory,
    sec,
    site_by_name,
    site_status,
)

pytestmark = pytest.mark.integration

PROD = "prod.teststudio.com"
STAGING = "staging.teststudio.com"
REMOTE = "sandbox-remote"


# -- helpers ------------------------------------------------------------------------------------------------
def data(site: dict) -> dict[str, str]:
    """Every table's rows (md5 in primary-key order, and count), computed here, apart from the code under test."""
    db = yaml.safe_load(Path(site["site_dir"], "shared/config/database.yml").read_text())["production"]
    with psycopg.connect(host=db["host"], port=db["port"], user=db["username"], password=str(db["password"]),
                         dbname=db["database"], autocommit=True) as conn:
        tables = conn.execute(
            "SELECT c.relname, (SELECT string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum) FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = c.oid AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid ="
            " c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1").fetchall()
        sums = {}
        for table, pk in tables:
            row = conn.execute(f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {pk or 't::text'}), '')),"
                               f" count(*) FROM public.{table} t").fetchone()
            sums[table] = f"{row[0]}:{row[1]}"
    return sums


def tree(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot(site_dir: Path, folders: tuple[str, ...] = ("shared/config", "tmp")) -> dict[Path, bytes]:
    return {p: p.read_bytes() for f in folders for p in (site_dir / f).rglob("*") if p.is_file()}


def put_back(site_dir: Path, before: dict[Path, bytes], folders: tuple[str, ...] = ("shared/config", "tmp")) -> None:
    """Files as they were: new ones removed, changed ones rewritten; the app reloads from them."""
    for folder in folders:
        for path in (site_dir / folder).rglob("*"):
            if path.is_file() and path not in before:
                path.unlink()
    for path, content in before.items():
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)


def backups(site: dict) -> list[str]:
    return sorted(p.name for p in Path(site["site_dir"], "db_backup").iterdir())


def state(site: dict) -> dict:
    """What a refused sync must leave alone on a site."""
    site_dir = Path(site["site_dir"])
    return {"data": data(site), "config": snapshot(site_dir), "backups": backups(site),
            "media": tree(site_dir / "media"), "current": os.readlink(site_dir / "current")}


def assert_serving_unlocked(sandbox: dict, site: dict) -> None:
    site_status(sandbox, site["name"])  # 200 through the vhost, or it fails
    assert not Path(site["site_dir"], "tmp/maintenance.html").exists()
    assert not Path(site["site_dir"], "tmp/sec-operation.lock").exists()


class Poller:
    """GETs a site through its vhost every 50 ms while a sync runs: production must answer 200 throughout."""

    def __init__(self, sandbox: dict, site: str) -> None:
        self.codes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sandbox, site), daemon=True)

    def _run(self, sandbox: dict, site: str) -> None:
        while not self._stop.is_set():
            try:
                self.codes.append(http_get(sandbox, site, timeout=10)[0])
            except Exception:  # a dropped connection counts as not serving
                self.codes.append(0)
            time.sleep(0.05)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sync_json(*args: str) -> dict:
    done = sec(*args, "--json")
    return json.loads(done.stdout)


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def remote_cluster(sandbox: dict, cluster: str) -> Iterator[str]:
    """The same App server as a second cluster, reached as `localhost`: another host as far as sec can tell."""
    app = sandbox["app_server"]
    sec("cluster", "create", REMOTE, "--app-server", "localhost", "--port", str(app["port"]), "--user", app["user"],
        "--key", app["key"])
    yield REMOTE
    # Other tests name sites without --cluster: the second cluster must not outlive this module.
    sec("cluster", "remove", REMOTE)


@pytest.fixture
def media(sandbox: dict) -> Iterator[dict]:
    """The two media folders, put back as they were afterwards (files, contents and folders)."""
    prod_media = Path(site_by_name(sandbox, PROD)["site_dir"]) / "media"
    staging_media = Path(site_by_name(sandbox, STAGING)["site_dir"]) / "media"
    files_before = tree(staging_media)
    contents = {p: p.read_bytes() for p in staging_media.rglob("*") if p.is_file()}
    dirs_before = {p for p in staging_media.rglob("*") if p.is_dir()}
    prod_before = tree(prod_media)
    yield {"prod": prod_media, "staging": staging_media}
    for path in sorted(staging_media.rglob("*"), reverse=True):
        if path.is_file() and path not in contents:
            path.unlink()
        elif path.is_dir() and path not in dirs_before:
            shutil.rmtree(path)
    for path, content in contents.items():
        if path.read_bytes() != content:
            path.write_bytes(content)
    assert tree(staging_media) == files_before
    assert tree(prod_media) == prod_before


# -- media ---------------------------------------------------------------------------------------------------
def test_media_sync_between_hosts_adds_only_what_is_missing(sandbox: dict, cluster: str, remote_cluster: str,
                                                             media: dict) -> None:
    prod_media, staging_media = media["prod"], media["staging"]
    source = tree(prod_media)
    shared = sorted(set(source) & set(tree(staging_media)))
    assert shared and len(shared) < len(source), "the sandbox's staging has part of production's media"
    # A file only the target has, and a file both have with different contents: both must stay as they are.
    extra = staging_media / "files/9999/0000/0001/only_on_staging.jpg"
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"staging's own upload")
    differing = staging_media / shared[0]
    differing.write_bytes(b"staging's edited version of a shared file")
    before = tree(staging_media)
    missing = sorted(set(source) - set(before))
    pair = ("--source-cluster", cluster, "--target-cluster", remote_cluster)

    dry = sync_json("sync-media", PROD, STAGING, *pair, "--dry-run")
    assert dry["transport"] == "ssh"
    assert sorted(f["path"] for f in dry["files"]) == missing
    assert dry["files_copied"] == len(missing)
    assert tree(staging_media) == before, "a dry run writes nothing"

    done = sync_json("sync-media", PROD, STAGING, *pair, "--yes")
    assert done["transport"] == "ssh" and done["complete"]
    assert done["files_copied"] == len(missing)
    assert done["bytes_copied"] == sum((prod_media / p).stat().st_size for p in missing)
    after = tree(staging_media)
    for path in missing:
        assert after[path] == source[path], f"{path} was copied as it is on production"
    for path, digest in before.items():
        assert after[path] == digest, f"{path} was on staging and must not change"
    assert set(after) == set(before) | set(missing), "nothing else appeared, nothing was removed"
    assert tree(prod_media) == source, "the source is only read"

    again = sync_json("sync-media", PROD, STAGING, *pair, "--yes")
    assert again["files_copied"] == 0 and again["bytes_copied"] == 0 and again["dirs_created"] == 0
    record = json.loads((Path(os.environ["SEC_HOME"]) / "operations" / again["operation"] / "sec.json").read_text())
    assert record["changed_hosts"] == [], "nothing to copy is no change"
    assert tree(staging_media) == after
    assert_serving_unlocked(sandbox, site_by_name(sandbox, STAGING))


def test_media_sync_on_one_host_is_a_local_copy(sandbox: dict, cluster: str, media: dict) -> None:
    missing = sorted(set(tree(media["prod"])) - set(tree(media["staging"])))
    done = sync_json("sync-media", PROD, STAGING, "--cluster", cluster, "--yes")
    assert done["transport"] == "local"
    assert done["files_copied"] == len(missing)
    assert set(tree(media["prod"])) <= set(tree(media["staging"]))


def test_an_incomplete_media_sync_is_a_failed_operation_that_names_what_was_not_copied(
        sandbox: dict, cluster: str, media: dict, tmp_path: Path) -> None:
    """Issue 22 #6: the CLI exited 1 with complete: false while the history said `successful` with no message,
    and a skipped source symlink was named nowhere."""
    missing = sorted(set(tree(media["prod"])) - set(tree(media["staging"])))
    # A file where the source has a folder: rsync cannot copy that name (nor what is in it).
    blocked = next(media["staging"] / parent for parent in (str(Path(m).parent) for m in missing)
                   if not (media["staging"] / parent).exists())
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_bytes(b"a file where production has a folder")
    link = media["prod"] / "files" / "link-to-elsewhere.jpg"
    link.symlink_to(tmp_path)
    try:
        done = sec("sync-media", PROD, STAGING, "--cluster", cluster, "--yes", "--json", check=False)
        assert done.returncode == 1, done.stderr
        summary = json.loads(done.stdout)
        assert summary["complete"] is False and summary["errors"], summary
        assert "files/link-to-elsewhere.jpg" in summary["passed_over"], summary
        assert done.stderr.strip().splitlines()[-1].startswith("sec: ") and "NOT COMPLETE" in done.stderr
        record = json.loads((Path(os.environ["SEC_HOME"]) / "operations" / summary["operation"] / "sec.json")
                            .read_text())
        assert record["status"] == "failed" and "NOT COMPLETE" in record["message"], record
        text = sec("sync-media", PROD, STAGING, "--cluster", cluster, "--yes", check=False).stdout
        assert "not copied (a link or special file, never copied): files/link-to-elsewhere.jpg" in text
    finally:
        link.unlink()
        blocked.unlink()
    assert_serving_unlocked(sandbox, site_by_name(sandbox, STAGING))


def test_media_sync_into_production_is_refused(sandbox: dict, cluster: str, media: dict, tmp_path: Path) -> None:
    before = tree(media["prod"])
    refused = sec("sync-media", STAGING, PROD, "--cluster", cluster, check=False)
    assert refused.returncode == 2
    assert "production site" in refused.stderr and "nothing is ever synced into production" in refused.stderr
    # The playbook refuses on its own too, before touching the host.
    inventory = sandbox_inventory(sandbox, tmp_path / "inventory.json")
    done = run_playbook("sync_media.yml", inventory, {"source": STAGING, "target": PROD})
    assert done.returncode != 0 and "is marked production" in " ".join(done.stdout.split())
    assert "Lock the target" not in done.stdout
    assert tree(media["prod"]) == before


def test_media_sync_without_a_forwarded_agent_says_how_to_log_in(sandbox: dict, cluster: str, remote_cluster: str,
                                                                   media: dict, tmp_path: Path) -> None:
    from sec_wrapper.site_pair import find_pair, pair_inventory, source_known_hosts

    pair = find_pair(PROD, STAGING, None, cluster, remote_cluster)
    inventory = tmp_path / "pair.json"
    inventory.write_text(json.dumps(pair_inventory(pair)))
    before = tree(media["staging"])
    done = run_playbook("sync_media.yml", inventory, {"source": PROD, "target": STAGING, "forward_agent": False,
                                                       "known_hosts_file": source_known_hosts(pair)})
    assert done.returncode != 0
    output = " ".join(done.stdout.split())
    assert "cannot log in to 127.0.0.1" in output and "agent" in output
    assert tree(media["staging"]) == before
    assert_serving_unlocked(sandbox, site_by_name(sandbox, STAGING))


# -- database ------------------------------------------------------------------------------------------------
@pytest.fixture
def staging_config(sandbox: dict) -> Iterator[Path]:
    """Staging's settings and runtime files, put back as they were (the data may stay production's copy)."""
    site_dir = Path(site_by_name(sandbox, STAGING)["site_dir"])
    before = snapshot(site_dir)
    yield site_dir
    put_back(site_dir, before)
    # The application reloads from the files put back at its next request.
    assert http_get(sandbox, STAGING)[0] == 200


def _check_synced(sandbox: dict, settings_before: dict, staging_dir: Path, prod_backups: list[str],
                  staging_backups: list[str]) -> None:
    prod, staging = site_by_name(sandbox, PROD), site_by_name(sandbox, STAGING)
    assert data(staging) == data(prod), "staging holds production's data"
    status = site_status(sandbox, STAGING)
    assert status["site_url"] == "https://staging.teststudio.com", "staging keeps its own URL"
    settings = json.loads((staging_dir / "shared/config/site_settings.json").read_text())
    assert settings == {**settings_before, "email_notifications_enabled": False}
    for site in (prod, staging):
        assert_serving_unlocked(sandbox, site)
    assert backups(staging) == staging_backups, "the target's copy of the backup is gone"
    assert backups(prod) == prod_backups, "a backup made for the sync is gone, a given one stays"


def test_sync_db_copies_production_into_staging_while_production_serves(sandbox: dict, cluster: str,
                                                                         staging_config: Path) -> None:
    settings_file = staging_config / "shared/config/site_settings.json"
    settings = json.loads(settings_file.read_text())
    # Staging sends e-mail before the sync: the sync must turn it off.
    settings["email_notifications_enabled"] = True
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")
    prod = site_by_name(sandbox, PROD)
    prod_data = data(prod)
    assert data(site_by_name(sandbox, STAGING)) != prod_data
    # Other tests may have left backups of their own: the sync must leave both folders as it found them.
    prod_before, staging_before = backups(prod), backups(site_by_name(sandbox, STAGING))

    with Poller(sandbox, PROD) as poller:
        done = sync_json("sync-db", PROD, STAGING, "--cluster", cluster, "--yes")
    assert done["transfer"] == "hardlink" and done["new_backup"]
    assert len(poller.codes) > 20 and set(poller.codes) == {200}, "production answered 200 throughout"
    assert data(prod) == prod_data, "production's data is untouched"
    _check_synced(sandbox, settings, staging_config, prod_before, staging_before)


def test_sync_db_between_hosts_with_a_given_backup(sandbox: dict, cluster: str, remote_cluster: str,
                                                   staging_config: Path) -> None:
    prod = site_by_name(sandbox, PROD)
    settings = json.loads((staging_config / "shared/config/site_settings.json").read_text())
    staging_before = backups(site_by_name(sandbox, STAGING))
    prod_before = backups(prod)
    made = json.loads(sec("backup", PROD, "--cluster", cluster, "--keep", "0", "--label", "given", "--json").stdout)
    try:
        with Poller(sandbox, PROD) as poller:
            done = sync_json("sync-db", PROD, STAGING, "--source-cluster", cluster, "--target-cluster",
                             remote_cluster, "--use-backup", made["name"], "--yes")
        assert done["transfer"] == "rsync" and not done["new_backup"] and done["backup"] == made["name"]
        assert set(poller.codes) == {200}
        # The given backup is the user's: it stays on the source.
        _check_synced(sandbox, settings, staging_config, sorted([*prod_before, made["name"]]), staging_before)
    finally:
        shutil.rmtree(Path(prod["site_dir"], "db_backup", made["name"]), ignore_errors=True)


# -- refusals ------------------------------------------------------------------------------------------------
def test_sync_db_into_production_is_refused_with_nothing_changed(sandbox: dict, cluster: str,
                                                                 tmp_path: Path) -> None:
    prod, staging = site_by_name(sandbox, PROD), site_by_name(sandbox, STAGING)
    before = {s["name"]: state(s) for s in (prod, staging)}

    refused = sec("sync-db", STAGING, PROD, "--cluster", cluster, "--yes", check=False)
    assert refused.returncode == 2
    assert "production site" in refused.stderr and f"sec site role {PROD} staging" in refused.stderr

    # The playbook refuses on its own too (AWX runs it without the CLI), before touching any host.
    inventory = sandbox_inventory(sandbox, tmp_path / "inventory.json")
    done = run_playbook("sync_db.yml", inventory, {"source": STAGING, "target": PROD})
    assert done.returncode != 0
    assert "is marked production" in " ".join(done.stdout.split())
    assert "Lock the" not in done.stdout
    assert {s["name"]: state(s) for s in (prod, staging)} == before


def test_sync_db_to_the_same_site_is_refused_with_nothing_changed(sandbox: dict, cluster: str,
                                                                  tmp_path: Path) -> None:
    staging = site_by_name(sandbox, STAGING)
    before = state(staging)
    refused = sec("sync-db", STAGING, "com_teststudio_staging", "--cluster", cluster, "--yes", check=False)
    assert refused.returncode == 2 and "same site" in refused.stderr
    inventory = sandbox_inventory(sandbox, tmp_path / "inventory.json")
    done = run_playbook("sync_db.yml", inventory, {"source": STAGING, "target": "com_teststudio_staging"})
    assert done.returncode != 0 and "the same site" in " ".join(done.stdout.split())
    assert state(staging) == before


def test_sync_db_to_an_older_release_is_refused_with_nothing_changed(sandbox: dict, cluster: str) -> None:
    """Production moves to 8.0.1 behind the store's back: the playbook reads the versions on the host."""
    from sec_wrapper.sandbox.releases import build_release
    from sec_wrapper.sandbox.sites import install_release

    prod, staging = site_by_name(sandbox, PROD), site_by_name(sandbox, STAGING)
    prod_dir = Path(prod["site_dir"])
    installed = not (prod_dir / "releases/8.0.1").exists()
    install_release(prod_dir, build_release(Path(sandbox["releases_dir"]), "8.0.1"), "8.0.1")
    link = prod_dir / "current"
    previous = os.readlink(link)
    before = state(staging)
    try:
        os.symlink("releases/8.0.1", prod_dir / "current.new")
        os.replace(prod_dir / "current.new", link)
        refused = sec("sync-db", PROD, STAGING, "--cluster", cluster, "--yes", check=False)
        assert refused.returncode == 2
        message = " ".join(refused.stderr.split())
        assert "runs 8.0.0, older than prod.teststudio.com (8.0.1)" in message
        assert "Upgrade staging.teststudio.com to 8.0.1 first" in message
        assert state(staging) == before
        assert not Path(staging["site_dir"], "tmp/sec-operation.lock").exists()
        assert not (prod_dir / "tmp/sec-operation.lock").exists()
        assert backups(prod) == []
    finally:
        os.symlink(previous, prod_dir / "current.new")
        os.replace(prod_dir / "current.new", link)
        if installed:
            shutil.rmtree(prod_dir / "releases/8.0.1")
    assert_serving_unlocked(sandbox, prod)
