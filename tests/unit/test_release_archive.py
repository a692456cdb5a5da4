"""Release tarballs: member checks, manifest verification and safe extraction (module_utils/release_archive.py).

Every archive is built here with tarfile, so each hostile shape is exactly the one named by the test.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import release_archive
from ansible_collections.fpt.sec.plugins.module_utils.files import sha256_file
from ansible_collections.fpt.sec.plugins.module_utils.release_archive import (
    ReleaseArchiveError,
    check_members,
    read_manifest,
    safe_extract,
    split_archive_name,
    verify,
)

NAME = "site"
VERSION = "8.1.2"
TOP = f"{NAME}-{VERSION}"
MIGRATION = "20240101_add_shots.sql"

GOOD_FILES: dict[str, bytes] = {
    "VERSION": f"{VERSION}\n".encode(),
    "public/index.html": b"<html><body>site 8.1.2</body></html>\n",
    "public/app.js": b"console.log('8.1.2');\n",
    "config/app.yml": b"name: site\n",
    f"db/migrate/{MIGRATION}": b"ALTER TABLE shots ADD COLUMN note text;\n",
}

Member = tuple[tarfile.TarInfo, "bytes | None"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_member(name: str, data: bytes, mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    return info, data


def dir_member(name: str, mode: int = 0o755) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def special_member(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


def good_manifest(files: dict[str, bytes] | None = None) -> dict:
    files = GOOD_FILES if files is None else files
    return {
        "name": NAME,
        "version": VERSION,
        "migrations": [MIGRATION],
        "files": {rel: sha(data) for rel, data in files.items()},
    }


def build(
    folder: Path,
    *,
    files: dict[str, bytes] | None = None,
    manifest: dict | bytes | None = None,
    edit: Callable[[dict], None] | None = None,
    extra: list[Member] = (),  # type: ignore[assignment]
    top: str = TOP,
    archive_name: str | None = None,
    with_manifest: bool = True,
) -> Path:
    """Write a release archive: top folder, MANIFEST.json first, the files (with folder entries), extra."""
    files = GOOD_FILES if files is None else files
    if manifest is None:
        manifest = good_manifest(files)
    if edit is not None and isinstance(manifest, dict):
        edit(manifest)
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=1).encode()
    members: list[Member] = [dir_member(top)]
    if with_manifest:
        members.append(file_member(f"{top}/MANIFEST.json", raw))
    folders: set[str] = set()
    for rel in sorted(files):
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            sub = "/".join(parts[:depth])
            if sub not in folders:
                folders.add(sub)
                members.append(dir_member(f"{top}/{sub}"))
        members.append(file_member(f"{top}/{rel}", files[rel]))
    members.extend(extra)
    path = folder / (archive_name or f"{top}.tar.gz")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def refused(path: Path, member: str) -> None:
    """The archive is refused, naming the member, by every entry point, and nothing is written."""
    with tarfile.open(path, "r:gz") as tar, pytest.raises(ReleaseArchiveError) as info:
        check_members(tar)
    assert repr(member) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ReleaseArchiveError) as info:
        verify(path)
    assert repr(member) in str(info.value)
    dest = path.parent / "dest"
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(ReleaseArchiveError) as info:
        safe_extract(path, dest)
    assert repr(member) in str(info.value)
    assert not dest.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == before


@pytest.mark.parametrize("module", ["release_archive"])
def test_module_parses_as_python_3_8(module: str) -> None:
    ast.parse(Path(release_archive.__file__).read_text(), feature_version=(3, 8))


# --- the good archive ------------------------------------------------------------------------------


def test_good_archive_verifies_and_returns_the_manifest(tmp_path: Path) -> None:
    path = build(tmp_path)
    assert verify(path) == good_manifest()
    assert read_manifest(path) == good_manifest()
    with tarfile.open(path, "r:gz") as tar:
        assert check_members(tar) is None


def test_internal_symlinks_and_hardlinks_are_accepted(tmp_path: Path) -> None:
    files = dict(GOOD_FILES)
    listed = dict(files)
    listed["public/copy.html"] = files["public/index.html"]  # a hard link is content: it is listed
    extra = [
        link_member(f"{TOP}/public/current.html", "index.html"),
        link_member(f"{TOP}/public/cfg", "../config"),
        link_member(f"{TOP}/self", "."),
        link_member(f"{TOP}/public/copy.html", f"{TOP}/public/index.html", tarfile.LNKTYPE),
    ]
    path = build(tmp_path, files=files, manifest=good_manifest(listed), extra=extra)
    assert verify(path)["version"] == VERSION


def test_archive_made_with_dot_prefix_is_accepted(tmp_path: Path) -> None:
    # `tar -C parent -czf x.tar.gz ./site-8.1.2` writes "./site-8.1.2/..." and a "." entry.
    path = tmp_path / f"{TOP}.tar.gz"
    manifest = json.dumps(good_manifest()).encode()
    with tarfile.open(path, "w:gz") as tar:
        for info, data in [dir_member("."), dir_member(f"./{TOP}"), file_member(f"./{TOP}/MANIFEST.json", manifest)] + [
            file_member(f"./{TOP}/{rel}", data) for rel, data in GOOD_FILES.items()
        ]:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    assert verify(path)["name"] == NAME


# --- members that escape or are not plain -----------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "expect"),
    [
        ("../evil.sh", "'..'"),
        (f"{TOP}/../evil.sh", "'..'"),
        (f"{TOP}/public/../../evil.sh", "'..'"),
        ("/etc/cron.d/evil", "absolute"),
        (f"/{TOP}/public/evil.js", "absolute"),
    ],
)
def test_escaping_paths_are_refused(tmp_path: Path, member: str, expect: str) -> None:
    path = build(tmp_path, extra=[file_member(member, b"#!/bin/sh\nrm -rf ~\n")])
    refused(path, member)
    with pytest.raises(ReleaseArchiveError, match=expect):
        verify(path)
    assert not (tmp_path.parent / "evil.sh").exists()


@pytest.mark.parametrize(
    "target",
    ["/etc/passwd", "../../../etc/passwd", "../..", f"../../{TOP}-other", "x/../../../y", "./../../", "../../."],
)
def test_symlink_out_of_the_tree_is_refused(tmp_path: Path, target: str) -> None:
    # Relative to public/: one ".." is the top folder, two leave it.
    member = f"{TOP}/public/out"
    path = build(tmp_path, extra=[link_member(member, target)])
    refused(path, member)


def test_top_level_symlink_to_the_parent_is_refused(tmp_path: Path) -> None:
    path = build(tmp_path, extra=[link_member(f"{TOP}/up", "..")])
    refused(path, f"{TOP}/up")


def test_symlink_escaping_through_another_symlink_is_refused(tmp_path: Path) -> None:
    # sub/up -> ".." is the top folder (fine); esc -> "sub/up/.." looks like "sub" on paper but is the
    # parent of the top folder once the links exist.
    extra = [dir_member(f"{TOP}/sub"), link_member(f"{TOP}/sub/up", ".."), link_member(f"{TOP}/esc", "sub/up/..")]
    path = build(tmp_path, extra=extra)
    refused(path, f"{TOP}/esc")


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    extra = [link_member(f"{TOP}/a", "b"), link_member(f"{TOP}/b", "a")]
    path = build(tmp_path, extra=extra)
    with pytest.raises(ReleaseArchiveError, match="loops"):
        verify(path)


def test_member_written_through_a_symlink_is_refused(tmp_path: Path) -> None:
    # Even an inward link: "lnk/x" would be written wherever lnk points.
    member = f"{TOP}/lnk/x.html"
    path = build(tmp_path, extra=[link_member(f"{TOP}/lnk", "public"), file_member(member, b"x")])
    refused(path, member)


@pytest.mark.parametrize(
    "target",
    ["/etc/passwd", f"{TOP}/../outside", "../outside", "other/file", f"{TOP}/public/later.html", f"{TOP}/public"],
)
def test_hardlink_out_of_the_tree_or_to_no_earlier_file_is_refused(tmp_path: Path, target: str) -> None:
    member = f"{TOP}/public/hard"
    extra = [link_member(member, target, tarfile.LNKTYPE), file_member(f"{TOP}/public/later.html", b"later")]
    path = build(tmp_path, extra=extra)
    refused(path, member)


@pytest.mark.parametrize(
    ("kind", "word"), [(tarfile.CHRTYPE, "device"), (tarfile.BLKTYPE, "device"), (tarfile.FIFOTYPE, "FIFO")]
)
def test_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes, word: str) -> None:
    member = f"{TOP}/public/null"
    path = build(tmp_path, extra=[special_member(member, kind)])
    refused(path, member)
    with pytest.raises(ReleaseArchiveError, match=word):
        verify(path)


def test_second_top_folder_is_refused(tmp_path: Path) -> None:
    path = build(tmp_path, extra=[dir_member("other"), file_member("other/file", b"x")])
    refused(path, "other")
    with pytest.raises(ReleaseArchiveError, match="more than one top folder"):
        verify(path)


def test_top_level_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / f"{TOP}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info, data = file_member("README", b"hello")
        tar.addfile(info, io.BytesIO(data))
    refused(path, "README")


def test_duplicate_member_is_refused(tmp_path: Path) -> None:
    member = f"{TOP}/public/app.js"
    path = build(tmp_path, extra=[file_member(member, b"evil()")])
    refused(path, member)


def test_empty_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / f"{TOP}.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(ReleaseArchiveError, match="empty"):
        verify(path)


# --- content against the manifest -------------------------------------------------------------------


def test_one_flipped_byte_is_a_checksum_mismatch(tmp_path: Path) -> None:
    tampered = dict(GOOD_FILES)
    data = bytearray(tampered["public/app.js"])
    data[3] ^= 0x01
    tampered["public/app.js"] = bytes(data)
    path = build(tmp_path, files=tampered, manifest=good_manifest(GOOD_FILES))
    with pytest.raises(ReleaseArchiveError, match="sha256") as info:
        verify(path)
    assert repr(f"{TOP}/public/app.js") in str(info.value)
    assert sha(bytes(data)) in str(info.value)


def test_listed_file_missing_from_the_archive(tmp_path: Path) -> None:
    listed = dict(GOOD_FILES)
    listed["public/gone.css"] = b"body{}"
    path = build(tmp_path, manifest=good_manifest(listed))
    with pytest.raises(ReleaseArchiveError, match="missing from the archive") as info:
        verify(path)
    assert repr(f"{TOP}/public/gone.css") in str(info.value)


def test_listed_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    listed = dict(GOOD_FILES)
    listed["public/current.html"] = GOOD_FILES["public/index.html"]
    extra = [link_member(f"{TOP}/public/current.html", "index.html")]
    path = build(tmp_path, manifest=good_manifest(listed), extra=extra)
    with pytest.raises(ReleaseArchiveError, match="is a symlink") as info:
        verify(path)
    assert repr(f"{TOP}/public/current.html") in str(info.value)


def test_unlisted_file_is_refused(tmp_path: Path) -> None:
    member = f"{TOP}/public/extra.js"
    path = build(tmp_path, extra=[file_member(member, b"steal()")])
    with pytest.raises(ReleaseArchiveError, match="not listed") as info:
        verify(path)
    assert repr(member) in str(info.value)


def test_unlisted_hardlink_is_refused(tmp_path: Path) -> None:
    member = f"{TOP}/public/copy.html"
    path = build(tmp_path, extra=[link_member(member, f"{TOP}/public/index.html", tarfile.LNKTYPE)])
    with pytest.raises(ReleaseArchiveError, match="not listed") as info:
        verify(path)
    assert repr(member) in str(info.value)


def test_missing_manifest(tmp_path: Path) -> None:
    path = build(tmp_path, with_manifest=False)
    with pytest.raises(ReleaseArchiveError, match="no MANIFEST.json"):
        verify(path)
    with pytest.raises(ReleaseArchiveError, match="no MANIFEST.json"):
        read_manifest(path)


def test_manifest_not_json(tmp_path: Path) -> None:
    path = build(tmp_path, manifest=b"{not json")
    with pytest.raises(ReleaseArchiveError, match="not valid JSON"):
        verify(path)
    with pytest.raises(ReleaseArchiveError, match="not valid JSON"):
        read_manifest(path)


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda m: m.pop("files"), "missing key 'files'"),
        (lambda m: m.pop("migrations"), "missing key 'migrations'"),
        (lambda m: m.update(name=""), "'name'"),
        (lambda m: m.update(version="8.1"), "MAJOR.MINOR.PATCH"),
        (lambda m: m.update(files=[]), "'files' must be"),
        (lambda m: m["files"].update({"VERSION": "abc"}), "sha256"),
        (lambda m: m["files"].update({"VERSION": "A" * 64}), "sha256"),
        (lambda m: m["files"].update({"../x": "0" * 64}), "'../x'"),
        (lambda m: m["files"].update({"/etc/x": "0" * 64}), "'/etc/x'"),
        (lambda m: m["files"].update({"MANIFEST.json": "0" * 64}), "itself"),
        (lambda m: m.update(migrations="x.sql"), "'migrations' must be"),
        (lambda m: m.update(migrations=["../x.sql"]), "not a file name"),
        (lambda m: m.update(migrations=[MIGRATION, MIGRATION]), "twice"),
        (lambda m: m.update(migrations=[MIGRATION, "2025_absent.sql"]), "'2025_absent.sql'"),
        (lambda m: m.update(migrations=[]), f"'db/migrate/{MIGRATION}' is not listed in 'migrations'"),
        (lambda m: m.update(version="8.1.3"), "says version 8.1.3 but the file name says 8.1.2"),
        (lambda m: m.update(name="other"), "says name 'other'"),
    ],
)
def test_invalid_manifest_is_refused(tmp_path: Path, edit: Callable[[dict], None], expect: str) -> None:
    path = build(tmp_path, edit=edit)
    with pytest.raises(ReleaseArchiveError) as info:
        verify(path)
    assert expect in str(info.value)


def test_version_file_must_hold_the_version(tmp_path: Path) -> None:
    files = dict(GOOD_FILES)
    files["VERSION"] = b"8.1.1\n"
    path = build(tmp_path, files=files)
    with pytest.raises(ReleaseArchiveError, match="'8.1.1', expected 8.1.2") as info:
        verify(path)
    assert repr(f"{TOP}/VERSION") in str(info.value)


def test_version_file_must_be_listed(tmp_path: Path) -> None:
    files = {rel: data for rel, data in GOOD_FILES.items() if rel != "VERSION"}
    path = build(tmp_path, files=files)
    with pytest.raises(ReleaseArchiveError, match="does not list the VERSION file"):
        verify(path)


def test_top_folder_must_match_the_file_name(tmp_path: Path) -> None:
    path = build(tmp_path, top="site-8.1.1", archive_name=f"{TOP}.tar.gz")
    with pytest.raises(ReleaseArchiveError, match="top folder should be 'site-8.1.2'") as info:
        verify(path)
    assert "'site-8.1.1'" in str(info.value)


@pytest.mark.parametrize(
    "name", ["site-8.1.tar.gz", "site.tar.gz", "site-8.1.2.tgz", "site-8.1.2.tar", "-8.1.2.tar.gz"]
)
def test_bad_file_names_are_refused(tmp_path: Path, name: str) -> None:
    path = build(tmp_path, archive_name=name)
    with pytest.raises(ReleaseArchiveError, match="is not <name>-<MAJOR.MINOR.PATCH>.tar.gz"):
        verify(path)


def test_split_archive_name() -> None:
    assert split_archive_name("/r/site-8.1.2.tar.gz") == ("site", "8.1.2")
    assert split_archive_name("my-app-10.0.3.tar.gz") == ("my-app", "10.0.3")
    with pytest.raises(ReleaseArchiveError):
        split_archive_name("site-08.1.2.tar.gz")


def test_not_a_gzip_tar(tmp_path: Path) -> None:
    path = tmp_path / f"{TOP}.tar.gz"
    path.write_bytes(b"this is not an archive")
    for call in (verify, read_manifest):
        with pytest.raises(ReleaseArchiveError, match="not a readable .tar.gz archive"):
            call(path)


def test_file_sha256(tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)  # spans several read chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


# --- extraction --------------------------------------------------------------------------------------


def test_safe_extract_unpacks_the_top_folder_content(tmp_path: Path) -> None:
    listed = dict(GOOD_FILES)
    listed["public/copy.html"] = GOOD_FILES["public/index.html"]
    listed["bin/run"] = b"#!/bin/sh\n"
    extra = [
        file_member(f"{TOP}/bin/run", b"#!/bin/sh\n", mode=0o775),  # no folder entry for bin/
        link_member(f"{TOP}/public/current.html", "index.html"),
        link_member(f"{TOP}/public/copy.html", f"{TOP}/public/index.html", tarfile.LNKTYPE),
        file_member(f"{TOP}/public/suid", b"x", mode=0o4777),
        dir_member(f"{TOP}/shared", mode=0o2777),
    ]
    listed["public/suid"] = b"x"
    path = build(tmp_path, manifest=good_manifest(listed), extra=extra)
    assert verify(path)
    dest = tmp_path / "releases" / VERSION
    dest.parent.mkdir()
    safe_extract(path, dest)

    for rel, data in GOOD_FILES.items():
        assert (dest / rel).read_bytes() == data
    assert json.loads((dest / "MANIFEST.json").read_text())["version"] == VERSION
    assert os.readlink(dest / "public/current.html") == "index.html"
    assert (dest / "public/copy.html").read_bytes() == GOOD_FILES["public/index.html"]
    assert os.stat(dest / "public/copy.html").st_ino == os.stat(dest / "public/index.html").st_ino
    # setuid/setgid and group/other write are dropped.
    assert stat.S_IMODE(os.stat(dest / "public/suid").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "shared").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "VERSION").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(dest / "bin/run").st_mode) == 0o755
    assert (dest / "bin").is_dir()
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755
    # Nothing but dest was created next to it.
    assert [p.name for p in dest.parent.iterdir()] == [VERSION]


def test_safe_extract_refuses_an_existing_destination(tmp_path: Path) -> None:
    path = build(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(ReleaseArchiveError, match="already exists"):
        safe_extract(path, dest)
    assert [p.name for p in dest.iterdir()] == ["keep"]
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ReleaseArchiveError, match="already exists"):
        safe_extract(path, link)
    assert not (tmp_path / "nowhere").exists()


def test_safe_extract_refuses_a_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(ReleaseArchiveError, match="does not exist"):
        safe_extract(build(tmp_path), tmp_path / "no" / "dest")


def test_failed_extraction_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(tmp_path, extra=[dir_member(f"{TOP}/ro", mode=0o555), link_member(f"{TOP}/public/cur", "index.html")])
    target = tmp_path / "out"
    target.mkdir()

    def broken_symlink(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(release_archive.os, "symlink", broken_symlink)
    with pytest.raises(ReleaseArchiveError, match="extraction failed"):
        safe_extract(path, target / "dest")
    assert list(target.iterdir()) == []
