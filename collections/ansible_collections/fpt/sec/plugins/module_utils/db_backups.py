# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site's database backups: folder layout, manifest, checksums, listing and retention.

Backups live in the site's fixed backup folder, ``<site_dir>/db_backup/`` (the vendor's rule), one folder
each::

    <site_dir>/db_backup/
        20240501T120000Z_8.0.0/                 <UTC start>_<site version>[_<label>]
            manifest.json
            dump/                               pg_dump --format=directory output
                toc.dat
                3400.dat.gz ...
        .partial-20240501T130000Z_8.0.0-4242/   a backup being written (pid 4242): never a backup

``manifest.json`` (``format`` = ``sec-db-backup/1``)::

    {"format", "name", "site", "reverse_name", "site_dir", "database", "db_host", "db_port", "version",
     "label", "started", "ended", "duration", "size", "database_bytes" (from 0.3; null when unknown),
     "file_count", "table_rows" (from 0.3: {"schema.table": rows} counted in the read-back),
     "dump": {"tool", "pg_dump_version", "server_version", "format": "directory", "jobs", "compression"},
     "verified": {"toc": bool, "data": "pg_restore" | "data files", "checksums": bool, "at"}
                 (older manifests: "restore_to_null": true, for "data": "pg_restore"),
     "files": {"dump/toc.dat": {"size", "sha256"}, ...},
     "manifest_sha256": "<sha256 of the manifest without this key, canonical JSON>"}

The manifest carries the checksum of itself, so an edited manifest (a version changed, a file's checksum
replaced) fails every check instead of vouching for what it no longer describes.

``sec-check.json`` beside it records the last check of the backup (``state`` verified or damaged, ``at``,
``problem``, ``by``: check, listing or restore). A listing says "verified at <time>" only from a real check
(the one made with the backup, or a later full check), and a backup stays damaged once any check failed,
until a full check passes again.

A folder is a backup once it has its final name; it is renamed there only after the dump, the manifest
and the verification are complete. Other files in ``db_backup/`` (the vendor's own dumps) are left alone.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import stat

from ansible_collections.fpt.sec.plugins.module_utils import upgrade_journal
from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic
from ansible_collections.fpt.sec.plugins.module_utils.files import sha256_file
from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive
from ansible_collections.fpt.sec.plugins.module_utils.utc import ISO, compact_utc, utc_now

FORMAT = "sec-db-backup/1"
BACKUP_DIR = "db_backup"
MANIFEST = "manifest.json"
CHECK_RECORD = "sec-check.json"
# How the last restore drill of the backup went (fpt.sec.db_drill).
DRILL_RECORD = "sec-drill.json"
# A reader's pin: ``.sec-reader-<pid>`` in a backup folder keeps retention off it while that process lives.
_READER_RE = re.compile(r"^\.sec-reader-(?P<pid>\d+)$")
DUMP_DIR = "dump"
PARTIAL_PREFIX = ".partial-"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PARTIAL_RE = re.compile(r"^\.partial-(?P<name>.+)-(?P<pid>\d+)$")
_MANIFEST_MAX_BYTES = 16 * 1024 * 1024
# Safety backups are the ones an operation takes before it overwrites the data (labels before-restore,
# pre-upgrade-<version>, or any before-/pre- label a user gives): they are how that operation is undone, so
# they follow their own retention rule, never the keep of ordinary backups.
_SAFETY_LABEL_RE = re.compile(r"^(before|pre)-")
DEFAULT_KEEP_SAFETY = 3


class BackupError(Exception):
    """A backup is missing, malformed, corrupt or not acceptable. ``str()`` is one line."""


def iso(moment: datetime.datetime) -> str:
    return moment.strftime(ISO)


def backup_root(site_dir: str) -> str:
    return os.path.join(site_dir, BACKUP_DIR)


def check_label(label: str | None) -> None:
    if label and not _LABEL_RE.match(label):
        raise BackupError(f"label {label!r}: use letters, digits and . + - (at most 64, no underscore: it separates "
                          "the parts of the name)")


def new_backup_name(root: str, moment: datetime.datetime, version: str | None, label: str | None) -> str:
    """``<UTC start>_<version>[_<label>]``, made unique in ``root`` (two backups in one second)."""
    check_label(label)
    parts = [compact_utc(moment), _safe_version(version)]
    if label:
        parts.append(label)
    base = "_".join(parts)
    name, counter = base, 1
    while os.path.lexists(os.path.join(root, name)):
        counter += 1
        name = f"{base}-{counter}" if label else f"{base}_{counter}"
    return name


def _safe_version(version: str | None) -> str:
    if version and re.match(r"^[A-Za-z0-9.+-]{1,64}$", version):
        return version
    return "unknown"


def partial_name(name: str) -> str:
    return f"{PARTIAL_PREFIX}{name}-{os.getpid()}"


# -- naming a backup safely ---------------------------------------------------------------------------------
def resolve_backup(site_dir: str, name: str) -> str:
    """The folder of backup ``name`` in the site's backup folder, refusing anything that could reach
    elsewhere: a path, ``..``, an absolute name, a hidden (partial) folder, or a symlink."""
    if not isinstance(name, str) or not name.strip():
        raise BackupError("give the backup's folder name, as `sec backups SITE` lists it")
    if os.path.isabs(name) or "/" in name or "\\" in name or name in (".", "..") or ".." in name.split(os.sep):
        raise BackupError(f"backup {name!r}: give only the folder name of a backup in {backup_root(site_dir)}, "
                          "not a path")
    if name.startswith("."):
        raise BackupError(f"backup {name!r} is not a complete backup (hidden and partial folders are not backups)")
    if not _NAME_RE.match(name):
        raise BackupError(f"backup {name!r}: not a backup folder name (letters, digits and . _ + -)")
    root = backup_root(site_dir)
    path = os.path.join(root, name)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise BackupError(f"no backup {name} in {root}") from None
    if stat.S_ISLNK(info.st_mode):
        raise BackupError(f"backup {name} is a symbolic link: only folders inside {root} are restored")
    if not stat.S_ISDIR(info.st_mode):
        raise BackupError(f"backup {name} in {root} is not a folder")
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(root):
        raise BackupError(f"backup {name} resolves outside {root}")
    return path


# -- checksums --------------------------------------------------------------------------------------------------
def dump_files(folder: str) -> list[str]:
    """Relative paths (``dump/...``) of every entry under ``folder/dump``, sorted. Only regular files are
    expected there: anything else is reported by the callers as not belonging to a backup."""
    found = []
    base = os.path.join(folder, DUMP_DIR)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for entry in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found.append(os.path.relpath(os.path.join(dirpath, entry), folder).replace(os.sep, "/"))
    return sorted(found)


def made_verified(manifest: dict) -> bool:
    """Whether the backup was verified when it was made: its TOC listed, every table's data read back
    whole (by pg_restore, or from the data files), the checksums taken."""
    verified = manifest.get("verified") or {}
    data = verified.get("data") in ("pg_restore", "data files") or verified.get("restore_to_null") is True
    return bool(verified.get("toc") and data and verified.get("checksums"))


def hash_dump(folder: str) -> dict[str, dict]:
    """{relative path: {size, sha256}} of every file of the dump."""
    files = {}
    for rel in dump_files(folder):
        path = os.path.join(folder, rel)
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise BackupError(f"{rel} is not a regular file")
        files[rel] = {"size": info.st_size, "sha256": sha256_file(path)}
    return files


# -- manifest ---------------------------------------------------------------------------------------------------
def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest without its own checksum, as canonical JSON (sorted keys, no spaces)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(manifest: dict) -> dict:
    """The manifest with the checksum of itself."""
    return dict(manifest, manifest_sha256=manifest_digest(manifest))


def check_seal(folder: str, manifest: dict) -> None:
    """Raises BackupError when the manifest is not the one written with the backup."""
    name = os.path.basename(folder)
    recorded = manifest.get("manifest_sha256")
    if not isinstance(recorded, str) or not _SHA256_RE.match(recorded):
        raise BackupError(f"backup {name}: {MANIFEST} carries no checksum of itself, so it cannot vouch for the "
                          "dump (not written by this sec, or edited)")
    if recorded != manifest_digest(manifest):
        raise BackupError(f"backup {name}: {MANIFEST} was edited after the backup was made (its own checksum "
                          "does not match its content)")


def write_manifest(folder: str, manifest: dict) -> None:
    """Atomically, durably, sealed with its own checksum: a manifest is either absent or complete."""
    write_atomic(os.path.join(folder, MANIFEST),
                 (json.dumps(seal(manifest), indent=2, sort_keys=True) + "\n").encode(), 0o640)


def read_manifest(folder: str) -> dict:
    """The manifest of the backup in ``folder``, checked for shape (not yet against the files)."""
    name = os.path.basename(folder)
    path = os.path.join(folder, MANIFEST)
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise BackupError(f"backup {name}: {MANIFEST} is not a regular file")
        if info.st_size > _MANIFEST_MAX_BYTES:
            raise BackupError(f"backup {name}: {MANIFEST} is implausibly large ({info.st_size} bytes)")
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise BackupError(f"backup {name} has no {MANIFEST}: not a backup made by sec, or not complete") \
            from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"backup {name}: {MANIFEST} cannot be read: {_one_line(exc)}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"backup {name}: {MANIFEST} is not a {FORMAT} manifest")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BackupError(f"backup {name}: {MANIFEST} lists no files")
    for rel, entry in files.items():
        if (not isinstance(rel, str) or not rel.startswith(DUMP_DIR + "/") or ".." in rel.split("/")
                or not isinstance(entry, dict) or not isinstance(entry.get("size"), int)
                or not isinstance(entry.get("sha256"), str) or not _SHA256_RE.match(entry["sha256"])):
            raise BackupError(f"backup {name}: {MANIFEST} has a malformed entry for {rel!r}")
    if f"{DUMP_DIR}/toc.dat" not in files:
        raise BackupError(f"backup {name}: {MANIFEST} does not list {DUMP_DIR}/toc.dat")
    return manifest


def verify_files(folder: str, manifest: dict) -> int:
    """Check the manifest's own checksum, then every file against it (presence, size, sha256) and that the
    dump holds nothing else. Raises BackupError naming the first bad file. Returns the number of files
    checked."""
    name = os.path.basename(folder)
    check_seal(folder, manifest)
    listed: dict = manifest["files"]
    present = set(dump_files(folder))
    extra = sorted(present - set(listed))
    if extra:
        raise BackupError(f"backup {name}: {extra[0]} is not in the manifest (the backup was changed after it "
                          "was made)")
    for rel in sorted(listed):
        expected = listed[rel]
        path = os.path.join(folder, rel)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise BackupError(f"backup {name}: {rel} is missing") from None
        if not stat.S_ISREG(info.st_mode):
            raise BackupError(f"backup {name}: {rel} is not a regular file")
        if info.st_size != expected["size"]:
            what = "truncated" if info.st_size < expected["size"] else "longer than recorded"
            raise BackupError(f"backup {name}: {rel} is {what} ({info.st_size} bytes, the manifest says "
                              f"{expected['size']})")
        if sha256_file(path) != expected["sha256"]:
            raise BackupError(f"backup {name}: {rel} is corrupt (its sha256 differs from the manifest's)")
    return len(listed)


def quick_problem(folder: str, manifest: dict) -> str | None:
    """What a check without reading the data finds wrong: the manifest's own checksum, every file present
    with its recorded size, nothing else in the dump. None when that much holds."""
    try:
        check_seal(folder, manifest)
        name = os.path.basename(folder)
        extra = sorted(set(dump_files(folder)) - set(manifest["files"]))
        if extra:
            raise BackupError(f"backup {name}: {extra[0]} is not in the manifest (the backup was changed after it "
                              "was made)")
        for rel, expected in sorted(manifest["files"].items()):
            try:
                size = os.lstat(os.path.join(folder, rel)).st_size
            except FileNotFoundError:
                raise BackupError(f"backup {name}: {rel} is missing") from None
            if size != expected["size"]:
                what = "truncated" if size < expected["size"] else "longer than recorded"
                raise BackupError(f"backup {name}: {rel} is {what} ({size} bytes, the manifest says "
                                  f"{expected['size']})")
    except BackupError as exc:
        return str(exc)
    return None


# -- the record of the last check --------------------------------------------------------------------------------
def record_check(folder: str, problem: str | None, by: str) -> None:
    """Writes the outcome of a check of the backup in ``folder`` (``by``: check, listing, restore). It
    changes nothing of the backup itself, so it is written in check mode too."""
    record = {"state": "damaged" if problem else "verified", "at": iso(utc_now()), "problem": problem, "by": by}
    write_atomic(os.path.join(folder, CHECK_RECORD), (json.dumps(record, sort_keys=True) + "\n").encode(), 0o640)


def read_check(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, CHECK_RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("state") in ("verified", "damaged") else None


def record_drill(folder: str, record: dict) -> None:
    """Keep how a restore drill of the backup went: passed or failed, when, the recovery time, the reason."""
    write_atomic(os.path.join(folder, DRILL_RECORD), (json.dumps(record, sort_keys=True) + "\n").encode(), 0o640)


def read_drill(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, DRILL_RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("state") in ("passed", "failed") else None


def drill_words(record: dict | None) -> str | None:
    """``drilled <time> (restored in N s)`` or ``drill failed: <reason>`` (None: never drilled)."""
    if not record:
        return None
    if record["state"] == "passed":
        return f"drilled {record.get('at')} (restored in {record.get('recovery_seconds')} s)"
    return f"drill failed: {record.get('reason')}"


# A backup an administrator pinned (sec backups SITE --pin NAME): no retention pass removes it, here or on a
# backup host. Never copied with the backup: each place keeps its own pin.
PIN = ".sec-pinned"


def is_pinned(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, PIN))


def set_pin(folder: str, pinned: bool) -> bool:
    """Pins or unpins the backup in ``folder``; True when that changed something."""
    path = os.path.join(folder, PIN)
    if pinned == os.path.exists(path):
        return False
    if pinned:
        with open(path, "w", encoding="utf-8"):
            pass
    else:
        os.unlink(path)
    return True


def pin_for_reader(folder: str, pid: int) -> str:
    """Pins the backup while process ``pid`` reads it (a drill): retention leaves it alone. Returns the pin's
    path, for the reader to remove when done; a pin whose process is gone counts for nothing."""
    path = os.path.join(folder, f".sec-reader-{pid}")
    with open(path, "w", encoding="utf-8"):
        pass
    return path


def read_pinned(site_dir: str) -> set[str]:
    """The backups an administrator or a live reader has pinned."""
    root = backup_root(site_dir)
    pinned = set()
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return pinned
    for name in names:
        try:
            entries = os.listdir(os.path.join(root, name))
        except (NotADirectoryError, FileNotFoundError, PermissionError):
            continue
        if PIN in entries:
            pinned.add(name)
        for entry in entries:
            match = _READER_RE.match(entry)
            if match and pid_alive(int(match.group("pid"))):
                pinned.add(name)
    return pinned


def listed_state(entry: dict, last_check: dict | None, problem: str | None) -> dict:
    """What a listing may claim of a backup: {state, verified_at, problem}.

    ``problem`` is what a check made just now found (None: that check passed, or none was made). A failed
    check, now or recorded, means damaged until a later full check passes; "verified" comes with the time
    of the last check that read the data (the one made with the backup, or a later full check)."""
    if problem:
        return {"state": "damaged", "verified_at": None, "problem": problem}
    if last_check and last_check["state"] == "damaged":
        return {"state": "damaged", "verified_at": None,
                "problem": f"{last_check.get('problem')} (found by {last_check.get('by')} at {last_check.get('at')})"}
    if last_check and last_check["state"] == "verified":
        return {"state": "verified", "verified_at": last_check.get("at"), "problem": None}
    if entry.get("verified"):
        return {"state": "verified", "verified_at": entry.get("verified_at"), "problem": None}
    return {"state": "unverified", "verified_at": None, "problem": None}


# -- listing and retention ------------------------------------------------------------------------------------
def list_backups(site_dir: str) -> list[dict]:
    """The complete backups in the site's backup folder, oldest first: one dict each with name, path,
    started, version, site, database, size, file_count, verified (as recorded: checksums are not read),
    last_drill (the drill record), drill (its words, None when never drilled) and pinned.
    Folders without a readable sec manifest are not listed (they are not ours to manage)."""
    root = backup_root(site_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(root, name)
        if name.startswith(".") or os.path.islink(path) or not os.path.isdir(path):
            continue
        try:
            manifest = read_manifest(path)
        except BackupError:
            continue
        verified = manifest.get("verified") or {}
        found.append({
            "name": name,
            "path": path,
            "started": manifest.get("started"),
            "ended": manifest.get("ended"),
            "version": manifest.get("version"),
            "site": manifest.get("site"),
            "database": manifest.get("database"),
            "label": manifest.get("label"),
            "size": manifest.get("size"),
            "file_count": len(manifest["files"]),
            "compression": (manifest.get("dump") or {}).get("compression"),
            "kind": kind_of(manifest.get("label")),
            "verified": made_verified(manifest),
            "verified_at": verified.get("at"),
            "last_drill": read_drill(path),
            "pinned": is_pinned(path),
        })
        found[-1]["drill"] = drill_words(found[-1]["last_drill"])
    found.sort(key=lambda b: (str(b["started"] or ""), b["name"]))
    return found


def pinned_backups(site_dir: str) -> set[str] | None:
    """Backups that must not be pruned: the one an unfinished upgrade would roll back to, and those a restore
    drill reads now. None when that cannot be known (an unreadable upgrade journal): then nothing is pruned."""
    try:
        record = upgrade_journal.read(site_dir)
    except upgrade_journal.JournalError:
        return None
    # And those a drill is reading now: it may run beside a backup and its retention pass.
    return ({record["backup"]} if record and record.get("backup") else set()) | read_pinned(site_dir)


def kind_of(label: str | None) -> str:
    """``safety`` for a backup taken before data is overwritten (see _SAFETY_LABEL_RE), else ``ordinary``."""
    return "safety" if label and _SAFETY_LABEL_RE.match(label) else "ordinary"


def plan_retention(backups: list[dict], keep: int, just_made: str | None = None,
                   pinned: set[str] | None = frozenset(), keep_safety: int = DEFAULT_KEEP_SAFETY) -> list[dict]:
    """The backups to remove, oldest first, so that ``keep`` newest ordinary backups and ``keep_safety``
    newest safety backups remain. Each kind counts only itself: ordinary backups never push a safety
    backup out, and the latest safety backup always stays (``keep_safety`` is at least 1). ``just_made``
    and ``pinned`` never go (they count as kept); keep 0, or pinned None (unknown), removes nothing, and
    keep_safety 0 keeps every safety backup."""
    if keep <= 0 or pinned is None:
        return []
    spared = {just_made, *pinned}
    doomed = _beyond(backups, "ordinary", keep, spared)
    if keep_safety > 0:
        doomed += _beyond(backups, "safety", max(keep_safety, 1), spared)
    return sorted(doomed, key=lambda b: (str(b["started"] or ""), b["name"]))


def _beyond(backups: list[dict], kind: str, keep: int, spared: set) -> list[dict]:
    """The backups of ``kind`` past the ``keep`` newest (the spared ones counting as kept)."""
    mine = [b for b in backups if (b.get("kind") or kind_of(b.get("label"))) == kind]
    newest_first = sorted(mine, key=lambda b: (str(b["started"] or ""), b["name"]), reverse=True)
    kept = [b for b in newest_first if b["name"] in spared]
    removable = [b for b in newest_first if b["name"] not in spared]
    return removable[max(keep - len(kept), 0):]


def stale_partials(site_dir: str) -> list[str]:
    """Partial folders whose writer is gone (killed mid-backup): safe to remove."""
    root = backup_root(site_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    stale = []
    for name in sorted(names):
        match = _PARTIAL_RE.match(name)
        if match and not pid_alive(int(match.group("pid"))):
            stale.append(os.path.join(root, name))
    return stale


def remove_tree(path: str) -> None:
    """Remove a backup or partial folder (the files are ours: pg_dump writes them as the caller)."""
    if os.path.lexists(path):
        shutil.rmtree(path)


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())
