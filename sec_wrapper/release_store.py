"""The data folder's `releases/`: adding a release archive (verified) and listing what is there.

The folder rules (names, `.sha256` sidecars, checksum states) are the collection's
`plugin_utils/release_folder.py`, shared with the `fpt.sec.upgrade_plan` lookup that upgrade.yml runs, so
`sec releases list`, `sec upgrade --plan` and the playbook read the folder the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils import release_archive
from ansible_collections.fpt.sec.plugins.module_utils.files import sha256_file
from ansible_collections.fpt.sec.plugins.module_utils.versions import UpgradePathError, Version, upgrade_path
from ansible_collections.fpt.sec.plugins.plugin_utils import release_folder

from sec_wrapper import history, runner, store
from sec_wrapper.errors import SecError
from sec_wrapper.paths import releases_dir


def add_release(source: str | Path, folder: Path | None = None) -> dict[str, Any]:
    """Verify `source` completely and copy it into the releases folder with its `.sha256`.

    Refuses an archive that fails verification (unsafe members, checksums, manifest), and a version the
    folder already holds with other content or under another file name. Adding the same file again is a
    no-op (`added` false).
    """
    folder = folder or releases_dir()
    path = Path(source).expanduser()
    if not path.is_file():
        raise SecError(f"{path} is not a file")
    try:
        _name, version = release_archive.split_archive_name(path.name)
        manifest = release_archive.verify(str(path))
    except release_archive.ReleaseArchiveError as exc:
        raise SecError(f"{path.name} refused, nothing was added: {exc}") from None
    digest = sha256_file(str(path))
    info = {"version": version, "file": path.name, "sha256": digest, "size": path.stat().st_size,
            "migrations": list(manifest["migrations"]), "files": len(manifest["files"]),
            "path": str(folder / path.name)}
    try:
        present = {r["version"]: r for r in release_folder.list_releases(str(folder))}
    except release_folder.ReleaseFolderError as exc:
        raise SecError(str(exc)) from None
    known = present.get(version)
    if known is not None:
        if known["file"] != path.name:
            raise SecError(f"release {version} is already in {folder} as {known['file']}: remove it first if "
                           f"{path.name} should replace it")
        if sha256_file(known["path"]) != digest:
            raise SecError(f"release {version} is already in {folder} with different content "
                           f"({known['file']}): remove it first if this build should replace it")
        # The same bytes: make sure the sidecar says so (a copy dropped in by hand had none).
        release_folder.write_sidecar(known["path"], digest)
        return {**info, "added": False}
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        shutil.copyfile(path, temp)
        os.chmod(temp, 0o644)
        if sha256_file(temp) != digest:
            raise SecError(f"{path} changed while it was being copied: add it again")
        os.replace(temp, folder / path.name)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    release_folder.write_sidecar(str(folder / path.name), digest)
    return {**info, "added": True}


def add_release_recorded(source: str | Path, user: str | None = None) -> dict[str, Any]:
    """`add_release`, recorded in the history as a `release add` operation once it is done (a refused
    archive changes nothing and is not recorded, like any refused input)."""
    started, clock = history.now_iso(), time.monotonic()
    added = add_release(source)
    result = {k: added[k] for k in ("version", "file", "sha256", "size", "added")}
    added["operation"] = runner.record_done(
        "release add", user, {"file": added["file"]}, result, started, time.monotonic() - clock,
        "" if added["added"] else "already present: nothing changed")
    return added


def upgrade_targets(current: str | None, folder: Path | None = None) -> list[str]:
    """The versions in the releases folder that a site running `current` may upgrade to: newer, with every
    step of the enforced path present. Names only (no checksum is read), for a chooser."""
    if not current:
        return []
    try:
        available = [r["version"] for r in release_folder.list_releases(str(folder or releases_dir()))]
    except release_folder.ReleaseFolderError:
        return []
    targets = []
    for version in available:
        try:
            if Version(version) > Version(current):
                upgrade_path(current, version, available)
                targets.append(version)
        except (UpgradePathError, ValueError):
            continue
    return targets


def reachable_sites(version: str, available: list[str]) -> list[str]:
    """`site@cluster` of every known site that has a valid upgrade path to `version` over `available`."""
    found = []
    for cluster in store.list_clusters():
        for site in cluster.sites:
            if not site.version:
                continue
            try:
                if Version(site.version) >= Version(version):
                    continue
                upgrade_path(site.version, version, available)
            except (UpgradePathError, ValueError):
                continue
            found.append(f"{site.name}@{cluster.name}")
    return found


def list_releases(full: bool = False, folder: Path | None = None) -> list[dict[str, Any]]:
    """Every release in the folder with its checksum state and the sites that could go to it.

    `full` also verifies each archive completely (members, manifest, every file's checksum): a release
    that fails is listed as bad, with the reason.
    """
    folder = folder or releases_dir()
    try:
        releases = release_folder.list_releases(str(folder), checksums=True)
    except release_folder.ReleaseFolderError as exc:
        raise SecError(str(exc)) from None
    available = [r["version"] for r in releases]
    for release in releases:
        release["problem"] = None
        if release["state"] == release_folder.BAD:
            release["problem"] = "does not match its .sha256"
        if full and release["state"] != release_folder.BAD:
            try:
                release_archive.verify(release["path"])
            except release_archive.ReleaseArchiveError as exc:
                release["state"], release["problem"] = release_folder.BAD, str(exc)
        release["sites"] = reachable_sites(release["version"], available)
    return releases
