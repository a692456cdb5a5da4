"""The controller's releases folder (the data folder's ``releases/``, or any folder given to upgrade.yml).

One place for the lookup plugin ``fpt.sec.upgrade_plan`` and the ``sec releases`` / ``sec upgrade``
commands to agree on what the folder holds:

* a release is ``<name>-<version>.tar.gz``; other files are ignored;
* ``<file>.sha256`` beside it (``<hex>  <file>``, as sha256sum writes it) is written by ``sec releases add``
  after a full verification. A release whose sidecar matches is *verified*; one without a sidecar (dropped
  in by hand) is *unverified*; one whose sidecar does not match is *bad*;
* the upgrade path is computed over the versions present, by the collection's ``versions.upgrade_path``.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic
from ansible_collections.fpt.sec.plugins.module_utils.files import sha256_file
from ansible_collections.fpt.sec.plugins.module_utils.release_archive import (
    ReleaseArchiveError,
    split_archive_name,
)
from ansible_collections.fpt.sec.plugins.module_utils.versions import UpgradePathError, Version, upgrade_path

SIDECAR_SUFFIX = ".sha256"
VERIFIED, UNVERIFIED, BAD = "verified", "unverified", "bad"


class ReleaseFolderError(Exception):
    """The folder cannot be listed, or holds two archives of one version. ``str()`` is one line."""


def read_sidecar(path: str) -> str | None:
    """The hex digest in ``<path>.sha256``, None when there is none or it is not one."""
    try:
        with open(path + SIDECAR_SUFFIX, encoding="utf-8") as handle:
            words = handle.read(4096).split()
    except (OSError, UnicodeDecodeError):
        return None
    if words and len(words[0]) == 64 and all(c in "0123456789abcdef" for c in words[0].lower()):
        return words[0].lower()
    return None


def write_sidecar(path: str, digest: str) -> None:
    """``<path>.sha256`` in sha256sum's format, written atomically."""
    write_atomic(path + SIDECAR_SUFFIX, f"{digest}  {os.path.basename(path)}\n".encode(), 0o644)


def unpacked_size(path: str) -> int | None:
    """The uncompressed size gzip records in its last four bytes (modulo 4 GiB): about what the release
    takes once unpacked, read without decompressing anything."""
    try:
        with open(path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            return struct.unpack("<I", handle.read(4))[0]
    except OSError:
        return None


def checksum_state(path: str, with_digest: bool = True) -> tuple[str, str | None]:
    """(verified | unverified | bad, sha256 or None). Reads the whole file when there is a sidecar."""
    expected = read_sidecar(path)
    if expected is None:
        return UNVERIFIED, sha256_file(path) if with_digest else None
    actual = sha256_file(path)
    return (VERIFIED if actual == expected else BAD), actual


def list_releases(folder: str, checksums: bool = False) -> list[dict[str, Any]]:
    """The releases in ``folder``, ascending by version: {version, name, file, path, size, unpacked_size}
    and, with ``checksums``, {state, sha256}. Two archives of one version are an error."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ReleaseFolderError(f"cannot list {folder}: {exc.strerror or exc}") from None
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        if not name.endswith(".tar.gz") or name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            release_name, version = split_archive_name(name)
        except ReleaseArchiveError:
            continue
        if version in found:
            raise ReleaseFolderError(f"{folder} holds two archives of {version}: {found[version]['file']} and "
                                     f"{name}; remove one")
        entry: dict[str, Any] = {"version": version, "name": release_name, "file": name, "path": path,
                                 "size": os.path.getsize(path), "unpacked_size": unpacked_size(path)}
        if checksums:
            entry["state"], entry["sha256"] = checksum_state(path)
        found[version] = entry
    return [found[v] for v in sorted(found, key=Version)]


def plan(current: str | None, target: str, folder: str) -> dict[str, Any]:
    """The upgrade from ``current`` to ``target`` over what ``folder`` holds.

    Returns {current, target, releases_dir, available, steps: [release entries], error, missing}; ``error``
    is None when the path is valid, else one line naming the releases to add (``missing``). A step whose
    sidecar does not match is an error too: it would fail on the App server anyway, after the copy.
    """
    out: dict[str, Any] = {"current": current, "target": target, "releases_dir": folder, "available": [],
                           "steps": [], "error": None, "missing": []}
    try:
        releases = list_releases(folder)
    except ReleaseFolderError as exc:
        out["error"] = str(exc)
        return out
    by_version = {r["version"]: r for r in releases}
    out["available"] = list(by_version)
    if not current:
        out["error"] = "the site's running version is unknown: refresh the inventory (sec cluster connect)"
        return out
    try:
        steps = upgrade_path(str(current), str(target), list(by_version))
    except UpgradePathError as exc:
        out["error"] = f"{exc} ({folder})" if exc.missing else str(exc)
        out["missing"] = list(exc.missing)
        return out
    out["steps"] = [dict(by_version[v]) for v in steps]
    bad = []
    for step in out["steps"]:
        step["state"] = UNVERIFIED if read_sidecar(step["path"]) is None else checksum_state(step["path"])[0]
        if step["state"] == BAD:
            bad.append(step["file"])
    if bad:
        out["error"] = (f"{', '.join(bad)} in {folder} do not match their .sha256: the files are damaged, add "
                        "them again (sec releases add)")
    return out
