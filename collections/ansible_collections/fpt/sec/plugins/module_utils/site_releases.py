# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A site's releases on an App server: ``<site_dir>/releases/<version>/`` and the ``current`` link.

One place for what release_stage, db_migrate, release_activate and release_prune agree on:

* a staged release is ``releases/<version>/`` holding the top folder's content of the release archive
  (``VERSION``, ``MANIFEST.json``, ``db/migrate/*.sql``...), never a partial one: staging extracts into a
  hidden sibling and renames it into place (release_archive.safe_extract);
* a migration is ``db/migrate/<version>_<name>.sql``; its version is the leading digits, as in Rails, and
  migrations run in ascending numeric version order;
* ``current`` is a symbolic link to ``releases/<version>``, switched by creating the new link under a
  temporary name and renaming it over the old one: rename(2) replaces it atomically, so a reader (Apache,
  the application, a crash) sees either the old release or the new one, never no link at all.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time

from ansible_collections.fpt.sec.plugins.module_utils.durable import rename_into_place
from ansible_collections.fpt.sec.plugins.module_utils.files import sha256_file
from ansible_collections.fpt.sec.plugins.module_utils.site_model import read_running_version
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version

RELEASES = "releases"
CURRENT = "current"
RESTART_FILE = os.path.join("tmp", "restart.txt")
# While it exists the site's vhost answers 503 with it (fpt.sec.maintenance writes it).
MAINTENANCE_PAGE = os.path.join("tmp", "maintenance.html")
MANIFEST_NAME = "MANIFEST.json"
MIGRATIONS_DIR = os.path.join("db", "migrate")
_MIGRATION_RE = re.compile(r"^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9_.-]+)\.sql$")


class ReleaseError(Exception):
    """A release folder or the current link is not as expected. ``str()`` is one line."""


def releases_root(site_dir: str) -> str:
    return os.path.join(site_dir, RELEASES)


def release_dir(site_dir: str, version: str) -> str:
    """``<site_dir>/releases/<version>``, for a version that parses (no path tricks through it)."""
    return os.path.join(releases_root(site_dir), str(Version(version)))


def staged_versions(site_dir: str) -> list[str]:
    """Versions with a folder under releases/, ascending. Hidden folders (extractions in progress) and names
    that are not versions are not releases."""
    try:
        names = os.listdir(releases_root(site_dir))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(releases_root(site_dir), name)
        if name.startswith(".") or os.path.islink(path) or not os.path.isdir(path):
            continue
        try:
            found.append(Version(name))
        except ValueError:
            continue
    return [str(v) for v in sorted(found)]


def read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else None


def staged_difference(folder: str, manifest: dict) -> str | None:
    """Why the staged ``folder`` is not the release ``manifest`` describes, or None when it is.

    Compares the staged MANIFEST.json and the sha256 of every file it lists, so an edited, truncated or
    half-removed release is told apart from the one in the archive.
    """
    staged = read_json(os.path.join(folder, MANIFEST_NAME))
    if staged is None:
        return f"{folder} has no readable {MANIFEST_NAME}"
    if staged != manifest:
        return f"{folder} holds another build of {manifest.get('version')} (its {MANIFEST_NAME} differs)"
    for rel, digest in sorted((manifest.get("files") or {}).items()):
        path = os.path.join(folder, *rel.split("/"))
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return f"{path} is missing"
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a regular file"
        if sha256_file(path) != digest:
            return f"{path} was modified (its sha256 differs from the release's)"
    return None


def migrations_of(folder: str) -> list[dict]:
    """The migrations a staged release ships, in the order they run: [{version, name, file, path}].

    Taken from the manifest's ``migrations`` (which release_archive.verify checked against db/migrate/),
    else from the folder itself for a release staged by other means.
    """
    manifest = read_json(os.path.join(folder, MANIFEST_NAME))
    if manifest is not None and isinstance(manifest.get("migrations"), list):
        names = [str(n) for n in manifest["migrations"]]
    else:
        try:
            names = [n for n in os.listdir(os.path.join(folder, MIGRATIONS_DIR)) if n.endswith(".sql")]
        except FileNotFoundError:
            names = []
    found = []
    seen: dict[str, str] = {}
    for name in names:
        match = _MIGRATION_RE.match(name)
        if match is None:
            raise ReleaseError(f"migration file {name!r} in {folder} is not named <version>_<name>.sql")
        version = match.group("version")
        if version in seen:
            raise ReleaseError(f"migrations {seen[version]} and {name} of {folder} share version {version}")
        seen[version] = name
        found.append({"version": version, "name": match.group("name"), "file": name,
                      "path": os.path.join(folder, MIGRATIONS_DIR, name)})
    # Numeric order: timestamps of different lengths still sort as numbers, as Rails sorts them.
    found.sort(key=lambda m: (int(m["version"]), m["version"]))
    return found


# -- the current link ---------------------------------------------------------------------------------------
def current_state(site_dir: str) -> dict:
    """{link, release, version}: the text of ``current`` (None when it is no link), the release folder it
    resolves to and the version running there."""
    path = os.path.join(site_dir, CURRENT)
    link = os.readlink(path) if os.path.islink(path) else None
    version, release = read_running_version(site_dir)
    return {"link": link, "release": release, "version": version}


def link_text(site_dir: str, version: str, like: str | None) -> str:
    """What ``current`` should point to: relative ``releases/<v>`` unless the existing link is absolute."""
    if like is not None and os.path.isabs(like):
        return release_dir(site_dir, version)
    return os.path.join(RELEASES, str(Version(version)))


def switch_current(site_dir: str, target: str) -> None:
    """Point ``current`` at ``target`` atomically: a new link under a temporary name, renamed over the old.

    Never rm + ln: between the two there would be no ``current`` and Apache would answer 404s; after a crash
    between them the site would have no code at all.
    """
    path = os.path.join(site_dir, CURRENT)
    if os.path.lexists(path) and not os.path.islink(path):
        raise ReleaseError(f"{path} is a real folder, not a link: it cannot be switched atomically; "
                           "move it under releases/ and link it first")
    temp = os.path.join(site_dir, f".{CURRENT}.sec-{os.getpid()}-{int(time.time() * 1000)}")
    os.symlink(target, temp)
    rename_into_place(temp, path)


def touch(path: str) -> None:
    """Create or bump the mtime of ``path`` (restart.txt): the application reloads when it changes."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o755)
    with open(path, "a", encoding="utf-8"):
        pass
    # A restart within the same mtime tick would go unnoticed: make sure the stamp moves.
    before = os.stat(path).st_mtime_ns
    now = time.time_ns()
    os.utime(path, ns=(now, max(now, before + 1_000_000)))


# -- pruning ------------------------------------------------------------------------------------------------
def remove_tree(path: str) -> None:
    """rmtree that also removes read-only folders (a release may ship them)."""
    for folder, _dirs, _files in os.walk(path):
        try:
            os.chmod(folder, stat.S_IRWXU)
        except OSError:
            pass
    shutil.rmtree(path)


def prune_plan(site_dir: str, keep: int, protect: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(to remove, to keep): the ``keep`` newest releases are kept, and always the current one and any in
    ``protect``; every other version folder goes."""
    versions = staged_versions(site_dir)
    current = current_state(site_dir)
    keep_set = set(str(Version(v)) for v in (protect or []))
    release = current["release"]
    if release and os.path.dirname(os.path.normpath(release)) == os.path.normpath(releases_root(site_dir)):
        keep_set.add(os.path.basename(os.path.normpath(release)))
    if current["version"]:
        keep_set.add(current["version"])
    newest = sorted(versions, key=Version, reverse=True)[:max(keep, 0)]
    keep_set.update(newest)
    remove = [v for v in versions if v not in keep_set]
    return remove, [v for v in versions if v in keep_set]


def leftovers(site_dir: str, max_age: float = 3600.0) -> list[str]:
    """Hidden folders under releases/ left by a killed extraction or replacement, older than ``max_age``
    seconds (a younger one may belong to a staging in progress on another run)."""
    root = releases_root(site_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    now = time.time()
    found = []
    for name in names:
        path = os.path.join(root, name)
        if not name.startswith(".") or os.path.islink(path) or not os.path.isdir(path):
            continue
        if not (name.endswith((".partial", ".new")) or ".sec-old-" in name):
            continue
        try:
            if now - os.lstat(path).st_mtime >= max_age:
                found.append(path)
        except OSError:
            continue
    return sorted(found)
