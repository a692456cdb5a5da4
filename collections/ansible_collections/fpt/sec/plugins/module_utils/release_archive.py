# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release tarballs: check, verify and unpack ``<name>-<version>.tar.gz`` safely.

Layout of a release archive::

    <name>-<version>/              the single top folder
        MANIFEST.json              {"name", "version", "migrations": [...], "files": {path: sha256}}
        VERSION                    the version, one line
        public/ config/ db/migrate/*.sql ...

``files`` maps every regular file of the release (paths relative to the top folder, MANIFEST.json itself
excepted) to its lowercase hex sha256. ``migrations`` names files of ``db/migrate/``; every ``.sql`` file
directly in ``db/migrate/`` must be named there and every name there must be a listed file, so that the
manifest and what db_migrate finds can never disagree. Symbolic links are allowed only inside the top
folder and are not listed (they carry no content of their own).

Pure standard library and Python 3.8 compatible syntax: the same checks run on the controller
(``sec releases add``) and on managed hosts (``fpt.sec.release_stage``). Every error is a
ReleaseArchiveError whose message is one line and names the offending member.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile

from ansible_collections.fpt.sec.plugins.module_utils.versions import Version

MANIFEST_NAME = "MANIFEST.json"
VERSION_NAME = "VERSION"
MIGRATIONS_DIR = "db/migrate"
ARCHIVE_SUFFIX = ".tar.gz"

# A manifest lists every file with its checksum, so it can be large, but never this large; the cap stops a
# hostile archive from making us read gigabytes into memory as "JSON".
_MANIFEST_MAX_BYTES = 64 * 1024 * 1024
_VERSION_MAX_BYTES = 256
_CHUNK = 1024 * 1024
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# The name is lazy so that "my-app-8.1.2" splits at the last hyphen that starts a version.
_ARCHIVE_RE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]*?)-(?P<version>[0-9]+\.[0-9]+\.[0-9]+)\.tar\.gz")
# Symlink chains longer than this are treated as loops (the kernel's own limit is 40).
_MAX_LINK_HOPS = 40

_DIR, _FILE, _HARDLINK, _SYMLINK = "folder", "file", "hard link", "symlink"


class ReleaseArchiveError(ValueError):
    """The archive is unsafe, unreadable or does not match its manifest. ``str()`` is one line."""


def _q(text: str) -> str:
    # repr() escapes newlines and control characters: a hostile member name cannot break the one-line
    # message or forge log lines.
    return repr(text)


def _refuse(member: str, reason: str) -> ReleaseArchiveError:
    return ReleaseArchiveError(f"refused member {_q(member)}: {reason}")


def split_archive_name(filename: str) -> tuple[str, str]:
    """``"site-8.1.2.tar.gz"`` (or a path to it) -> ``("site", "8.1.2")``; ReleaseArchiveError otherwise."""
    base = os.path.basename(os.fspath(filename))
    match = _ARCHIVE_RE.fullmatch(base)
    if match is None:
        raise ReleaseArchiveError(
            f"file name {_q(base)} is not <name>-<MAJOR.MINOR.PATCH>{ARCHIVE_SUFFIX}"
        )
    try:
        Version(match.group("version"))
    except ValueError as exc:
        raise ReleaseArchiveError(f"file name {_q(base)}: {exc}") from None
    return match.group("name"), match.group("version")


def _split(name: str, member: str, what: str = "path") -> list[str]:
    """Path components of an archive name; refuses absolute paths and any '..'."""
    if name.startswith("/"):
        raise _refuse(member, f"absolute {what} {_q(name)}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        # Refused even when it would land back inside ("a/../a/b"): no legitimate release needs it and
        # it is the classic way out of the extraction folder.
        raise _refuse(member, f"{what} {_q(name)} contains '..' and could escape the top folder")
    return parts


def _resolve(parts: list[str], symlinks: dict[str, str]) -> list[str] | None:
    """Resolve a path inside the archive the way the kernel would after extraction.

    Symlink members met on the way are substituted, so ``up -> ..`` followed by ``x -> up/..`` is seen
    for what it is. Returns the components from the archive root, or None if the path climbs above it.
    """
    out: list[str] = []
    queue = list(parts)
    hops = 0
    while queue:
        part = queue.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = symlinks.get("/".join(out))
        if target is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS or target.startswith("/"):
                return None
            out.pop()
            queue = target.split("/") + queue
    return out


class _Scan:
    """What one pass over the members found."""

    def __init__(self) -> None:
        self.top: str | None = None
        self.kinds: dict[str, str] = {}  # path from archive root -> _DIR/_FILE/_HARDLINK/_SYMLINK
        self.symlinks: dict[str, str] = {}  # path -> link target as stored
        self.hardlinks: dict[str, str] = {}  # path -> normalized path of the linked file
        self.hashes: dict[str, str] = {}  # path -> sha256, files and hard links, when hashing
        self.contents: dict[str, bytes] = {}  # captured small files (manifest, VERSION)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, capture_limit: int | None) -> tuple[str, bytes]:
    handle = tar.extractfile(member)
    if handle is None:
        raise _refuse(member.name, "cannot be read")
    digest = hashlib.sha256()
    kept = bytearray()
    with handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            if capture_limit is not None and len(kept) <= capture_limit:
                kept += chunk
    if capture_limit is not None and len(kept) > capture_limit:
        raise _refuse(member.name, f"larger than {capture_limit} bytes")
    return digest.hexdigest(), bytes(kept)


def _scan(tar: tarfile.TarFile, hash_files: bool = False, capture: dict[str, int] | None = None) -> _Scan:
    """Check every member (see check_members) in one streaming pass, hashing files if asked.

    ``capture`` maps paths relative to the top folder to a size limit; their content is kept. Reading
    content during the same pass matters for .tar.gz: going back for a member means decompressing again.
    """
    scan = _Scan()
    for member in tar:
        name = member.name
        parts = _split(name, name)
        if not parts:
            # "./" as written by `tar -C dir .`: harmless as a folder, meaningless as anything else.
            if member.isdir():
                continue
            raise _refuse(name, "names the archive root but is not a folder")
        if scan.top is None:
            scan.top = parts[0]
        elif parts[0] != scan.top:
            raise _refuse(name, f"outside the top folder {_q(scan.top)}: more than one top folder")
        if len(parts) == 1 and not member.isdir():
            raise _refuse(name, "the top entry must be a folder")
        path = "/".join(parts)
        if path in scan.kinds:
            # A later duplicate silently replaces the first on extraction, after the first was checked.
            raise _refuse(name, "appears twice in the archive")

        if member.isdir():
            scan.kinds[path] = _DIR
        elif member.isreg():
            scan.kinds[path] = _FILE
            rel = "/".join(parts[1:])
            limit = capture.get(rel) if capture else None
            if hash_files or limit is not None:
                digest, content = _read_member(tar, member, limit)
                scan.hashes[path] = digest
                if limit is not None:
                    scan.contents[rel] = content
        elif member.issym():
            if not member.linkname:
                raise _refuse(name, "symlink with an empty target")
            if member.linkname.startswith("/"):
                raise _refuse(name, f"symlink to the absolute path {_q(member.linkname)}")
            scan.kinds[path] = _SYMLINK
            scan.symlinks[path] = member.linkname
        elif member.islnk():
            # Hard link names are relative to the archive root, not to the member's folder.
            target_parts = _split(member.linkname, name, "hard link target")
            target = "/".join(target_parts)
            if not target_parts or target_parts[0] != scan.top:
                raise _refuse(name, f"hard link to {_q(member.linkname)}, outside the top folder")
            if scan.kinds.get(target) not in (_FILE, _HARDLINK):
                raise _refuse(name, f"hard link to {_q(member.linkname)}, which is not an earlier file of the tree")
            scan.kinds[path] = _HARDLINK
            scan.hardlinks[path] = target
            if target in scan.hashes:
                scan.hashes[path] = scan.hashes[target]
        elif member.ischr() or member.isblk():
            raise _refuse(name, "device files are not allowed")
        elif member.isfifo():
            raise _refuse(name, "FIFOs are not allowed")
        else:
            raise _refuse(name, f"unsupported member type {member.type!r}")

    if scan.top is None:
        raise ReleaseArchiveError("the archive is empty")

    for path in scan.kinds:
        # Nothing may live under a non-folder: "top/l" a symlink and then "top/l/x" would be written
        # through the link, wherever it points.
        parts = path.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            kind = scan.kinds.get(prefix)
            if kind is not None and kind != _DIR:
                raise _refuse(path, f"lies under {_q(prefix)}, which is a {kind}, not a folder")

    for path, target in scan.symlinks.items():
        parent = path.split("/")[:-1]
        resolved = _resolve(parent + target.split("/"), scan.symlinks)
        if not resolved or resolved[0] != scan.top:
            raise _refuse(path, f"symlink to {_q(target)} points outside the top folder (or loops)")
    return scan


def check_members(tar: tarfile.TarFile) -> None:
    """Refuse an archive that could write outside its folder, or is not a single-folder release.

    Raises ReleaseArchiveError naming the member for: an absolute path; any '..' component; a second top
    folder or a top-level entry that is not a folder; a symlink whose target is absolute or resolves
    (following the archive's other symlinks) outside the top folder; a hard link to anything but an earlier
    regular file of the tree; a member under a symlink or a file; a duplicate member; devices, FIFOs and
    any other special member. Reads the whole archive once; the TarFile stays usable afterwards.
    """
    _scan(tar)


def _open(path: str | os.PathLike[str]) -> tarfile.TarFile:
    try:
        return tarfile.open(os.fspath(path), "r:gz")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ReleaseArchiveError(f"{os.fspath(path)}: not a readable {ARCHIVE_SUFFIX} archive ({exc})") from None


def _checked_relpath(rel: object, label: str) -> str:
    if not isinstance(rel, str) or not rel:
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: {label} {rel!r} is not a relative path")
    parts = rel.split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: {label} {_q(rel)} is not a plain relative path")
    return rel


def _validate_manifest(data: object) -> dict:
    """Structure of MANIFEST.json; returns it unchanged when valid. Unknown keys are kept (newer writers)."""
    if not isinstance(data, dict):
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: must be a JSON object")
    for key in ("name", "version", "migrations", "files"):
        if key not in data:
            raise ReleaseArchiveError(f"{MANIFEST_NAME}: missing key {_q(key)}")
    if not isinstance(data["name"], str) or not data["name"]:
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: 'name' must be a non-empty string")
    try:
        Version(data["version"])
    except ValueError as exc:
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: 'version': {exc}") from None

    files = data["files"]
    if not isinstance(files, dict):
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: 'files' must be an object of path: sha256")
    for rel, digest in files.items():
        _checked_relpath(rel, "file")
        if rel == MANIFEST_NAME:
            raise ReleaseArchiveError(f"{MANIFEST_NAME}: must not list itself in 'files'")
        if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
            raise ReleaseArchiveError(f"{MANIFEST_NAME}: checksum of {_q(rel)} is not a lowercase hex sha256")

    migrations = data["migrations"]
    if not isinstance(migrations, list):
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: 'migrations' must be a list of file names")
    seen = set()
    for entry in migrations:
        if not isinstance(entry, str) or "/" in entry or entry in ("", ".", ".."):
            raise ReleaseArchiveError(f"{MANIFEST_NAME}: migration {entry!r} is not a file name")
        if entry in seen:
            raise ReleaseArchiveError(f"{MANIFEST_NAME}: migration {_q(entry)} is listed twice")
        seen.add(entry)
        if f"{MIGRATIONS_DIR}/{entry}" not in files:
            raise ReleaseArchiveError(
                f"{MANIFEST_NAME}: migration {_q(entry)} is not among the files as {MIGRATIONS_DIR}/{entry}"
            )
    for rel in files:
        folder, _sep, base = rel.rpartition("/")
        if folder == MIGRATIONS_DIR and base.endswith(".sql") and base not in seen:
            raise ReleaseArchiveError(f"{MANIFEST_NAME}: {_q(rel)} is not listed in 'migrations'")
    return data


def _parse_manifest(raw: bytes) -> dict:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        # The exception text of json is one line already ("Expecting value: line 1 column 1 (char 0)").
        raise ReleaseArchiveError(f"{MANIFEST_NAME}: not valid JSON ({exc})") from None
    return _validate_manifest(data)


def read_manifest(path: str | os.PathLike[str]) -> dict:
    """Return the validated MANIFEST.json of a release archive, without checking members or checksums.

    Stops reading at the manifest, which is cheap when the archive stores it first (as release builders
    should). The manifest's structure is validated (see the module docstring); use verify() before trusting
    the archive's content.
    """
    with _open(path) as tar:
        try:
            for member in tar:
                parts = [part for part in member.name.split("/") if part not in ("", ".")]
                if len(parts) != 2 or parts[1] != MANIFEST_NAME or member.name.startswith("/"):
                    continue
                if not member.isreg():
                    raise _refuse(member.name, "the manifest is not a regular file")
                _digest, raw = _read_member(tar, member, _MANIFEST_MAX_BYTES)
                return _parse_manifest(raw)
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ReleaseArchiveError(f"{os.fspath(path)}: unreadable archive ({exc})") from None
    raise ReleaseArchiveError(f"{os.fspath(path)}: no {MANIFEST_NAME} in the top folder")


def verify(path: str | os.PathLike[str]) -> dict:
    """Check a release archive completely and return its manifest.

    In one pass over the archive: every check of check_members; the top folder is ``<name>-<version>``
    from the file name; MANIFEST.json is present and valid and its name and version match the file name;
    every listed file is present as a regular file (or hard link to one) with the listed sha256; no
    regular file is missing from the list; VERSION is listed and holds the version.
    """
    name, version = split_archive_name(path)
    capture = {MANIFEST_NAME: _MANIFEST_MAX_BYTES, VERSION_NAME: _VERSION_MAX_BYTES}
    with _open(path) as tar:
        try:
            scan = _scan(tar, hash_files=True, capture=capture)
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ReleaseArchiveError(f"{os.fspath(path)}: unreadable archive ({exc})") from None

    top = f"{name}-{version}"
    if scan.top != top:
        raise _refuse(str(scan.top), f"top folder should be {_q(top)}, as the file name says")
    if MANIFEST_NAME not in scan.contents:
        raise ReleaseArchiveError(f"{os.fspath(path)}: no {MANIFEST_NAME} in {_q(top)}")
    manifest = _parse_manifest(scan.contents[MANIFEST_NAME])
    if manifest["version"] != version:
        raise ReleaseArchiveError(
            f"{MANIFEST_NAME} says version {manifest['version']} but the file name says {version}"
        )
    if manifest["name"] != name:
        raise ReleaseArchiveError(f"{MANIFEST_NAME} says name {_q(manifest['name'])} but the file name says {_q(name)}")

    files: dict[str, str] = manifest["files"]
    for rel in sorted(files):
        member = f"{top}/{rel}"
        kind = scan.kinds.get(member)
        if kind is None:
            raise _refuse(member, f"listed in {MANIFEST_NAME} but missing from the archive")
        if kind not in (_FILE, _HARDLINK):
            raise _refuse(member, f"listed in {MANIFEST_NAME} as a file but is a {kind}")
        actual = scan.hashes[member]
        if actual != files[rel]:
            raise _refuse(member, f"sha256 {actual} does not match {MANIFEST_NAME} ({files[rel]})")
    for member in sorted(scan.kinds):
        rel = member[len(top) + 1:]
        if scan.kinds[member] in (_FILE, _HARDLINK) and rel != MANIFEST_NAME and rel not in files:
            raise _refuse(member, f"not listed in {MANIFEST_NAME}")

    if VERSION_NAME not in files:
        raise ReleaseArchiveError(f"{MANIFEST_NAME} does not list the {VERSION_NAME} file")
    written = scan.contents.get(VERSION_NAME, b"").decode("utf-8", "replace").strip()
    if written != version:
        raise _refuse(f"{top}/{VERSION_NAME}", f"says {_q(written)}, expected {version}")
    return manifest


def _make_writable(root: str) -> None:
    # A release may ship read-only folders; without this, cleaning up a failed extraction as an ordinary
    # user would stop at them.
    for folder, _dirs, _files in os.walk(root):
        try:
            os.chmod(folder, stat.S_IRWXU)
        except OSError:
            pass


def safe_extract(path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Unpack the top folder's content of a release archive into ``dest``, which must not exist.

    ``dest`` receives what is inside ``<name>-<version>/`` (VERSION, public/, ..., MANIFEST.json), not the
    top folder itself. Members are checked first (check_members); checksums are not: call verify() for
    that. Extraction happens in a hidden sibling folder renamed to ``dest`` at the end, so ``dest`` is
    either complete or absent. Files are created exclusively and without following links, symlinks last;
    ownership is not restored (files belong to whoever runs this), and modes keep at most rwxr-xr-x:
    setuid, setgid, sticky and group/other write bits are dropped.
    """
    dest = os.path.abspath(os.fspath(dest))
    if os.path.lexists(dest):
        raise ReleaseArchiveError(f"destination {_q(dest)} already exists")
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise ReleaseArchiveError(f"destination's folder {_q(parent)} does not exist")

    with _open(path) as tar:
        try:
            _scan(tar)
            members = tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ReleaseArchiveError(f"{os.fspath(path)}: unreadable archive ({exc})") from None

        work = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.", suffix=".partial", dir=parent)
        real_work = os.path.realpath(work)
        try:
            # mkdtemp makes it 0700; a release is read by the web server too. The top folder's own mode,
            # when the archive has it, replaces this at the end.
            os.chmod(work, 0o755)
            _extract_members(tar, members, work, real_work)
            if os.path.lexists(dest):
                raise ReleaseArchiveError(f"destination {_q(dest)} appeared during extraction")
            os.rename(work, dest)
        except BaseException as exc:
            _make_writable(work)
            shutil.rmtree(work, ignore_errors=True)
            if isinstance(exc, (OSError, tarfile.TarError, EOFError)):
                raise ReleaseArchiveError(f"{os.fspath(path)}: extraction failed ({exc})") from None
            raise


def _extract_members(tar: tarfile.TarFile, members: list[tarfile.TarInfo], work: str, real_work: str) -> None:
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    folder_modes: list[tuple[str, int]] = []
    links: list[tuple[str, str]] = []
    for member in members:
        rel = [part for part in member.name.split("/") if part not in ("", ".")][1:]
        target = os.path.join(work, *rel)
        if member.isdir():
            os.makedirs(target, 0o755, exist_ok=True)
            folder_modes.append((target, (member.mode & 0o755) | 0o700))
            continue
        if member.issym():
            links.append((target, member.linkname))
            continue
        folder = os.path.dirname(target)
        os.makedirs(folder, 0o755, exist_ok=True)
        # Defence in depth: check_members already guarantees no member sits under a link.
        if os.path.realpath(folder) != os.path.join(real_work, *rel[:-1]):
            raise _refuse(member.name, "would be written outside the destination")
        if member.islnk():
            link_rel = [part for part in member.linkname.split("/") if part not in ("", ".")][1:]
            os.link(os.path.join(work, *link_rel), target)
            continue
        source = tar.extractfile(member)
        if source is None:
            raise _refuse(member.name, "cannot be read")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
        with source, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
        os.chmod(target, (member.mode & 0o755) | 0o400)
        os.utime(target, (member.mtime, member.mtime))
    # Links last: once they exist nothing more is written, so nothing can be written through them.
    for target, linkname in links:
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        os.symlink(linkname, target)
    # Folder modes last (deepest first) so that a read-only folder does not block its own content.
    for folder, mode in sorted(folder_modes, key=lambda item: item[0].count(os.sep), reverse=True):
        os.chmod(folder, mode)
