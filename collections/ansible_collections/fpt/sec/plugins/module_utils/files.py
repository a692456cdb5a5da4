# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading files and folders: a file's sha256 and a folder's size, for backups, releases and archives alike."""

from __future__ import annotations

import hashlib
import os

_CHUNK = 4 * 1024 * 1024


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lowercase hex sha256 of a file, read in chunks (hashlib releases the GIL on large buffers, so threads
    hash in parallel)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_size(folder: str) -> int:
    """Bytes of the regular files and links under ``folder``; entries that vanish meanwhile count as none."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(folder):
        for entry in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, entry)).st_size
            except OSError:
                pass
    return total
