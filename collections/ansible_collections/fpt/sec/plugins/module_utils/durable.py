# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Making a rename durable: the one fsync of a folder that backups, releases, the upgrade journal and the
runtime config all need after they rename a file into place."""

from __future__ import annotations

import os


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
