# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing a file so that it is either the old one or the complete new one, even across a crash: the one way
the maintenance page, the upgrade journal, backup manifests and the runtime config are written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable


def fsync_dir(path: str) -> None:
    """fsync the folder ``path`` so a rename in it survives a crash. Best effort: a folder that cannot be
    opened, or a filesystem that refuses fsync on folders, leaves the data itself (already synced) as is."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int | None = None,
                 prepare: Callable[[int], None] | None = None) -> None:
    """Write ``data`` to a temporary file in the same folder (so the rename is atomic and keeps the folder's
    SELinux context), fsync it, rename it over ``path`` and fsync the folder. The temporary file is removed on
    any failure. ``mode`` is set on it (mkstemp makes 0600); without one, the umask's usual mode. ``prepare``
    gets the open descriptor before the fsync, to set ownership say."""
    folder = os.path.dirname(path) or "."
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if mode is None:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.fchmod(handle.fileno(), mode)
            if prepare is not None:
                prepare(handle.fileno())
            os.fsync(handle.fileno())
    except BaseException:
        _remove_quietly(temp)
        raise
    rename_into_place(temp, path)


def rename_into_place(temp: str, path: str) -> None:
    """Rename ``temp`` (a file or a link made beside ``path``) over ``path`` atomically and fsync the folder,
    so that readers see the old or the new, never neither; ``temp`` is removed if the rename fails."""
    try:
        os.replace(temp, path)
    except BaseException:
        _remove_quietly(temp)
        raise
    fsync_dir(os.path.dirname(path) or ".")


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_durably(path: str) -> bool:
    """Remove ``path`` and fsync its folder, so the removal survives a crash; True when there was a file.
    Other OSErrors propagate."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(os.path.dirname(path))
    return True


class UnreadableFile(Exception):
    """A state file that exists but cannot be read or parsed. ``str()`` is one line naming the file."""


def write_state_json(path: str, data: object) -> None:
    """Write a small state file (journal, repair mark) as JSON, atomically and durably (it must survive the
    crash it is there for), creating its folder; world-readable (0644), as the site's other state is."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, 0o755)
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o644)


def read_state_json(path: str, max_bytes: int) -> object | None:
    """The JSON of a small state file written by write_atomic (journal, repair mark); None when there is no
    file. Raises UnreadableFile when it cannot be read or is not JSON: a caller must never take a damaged
    state file for a missing one."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise UnreadableFile(f"{path} is not valid JSON ({exc})") from None
