# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Long copies (dumps, restores' reads, rsync) run at low CPU and I/O priority, so that the live site on the
same host keeps the CPU and disk it needs."""

from __future__ import annotations

import shutil
import subprocess

_priority_cache: list[str] | None = None


def low_priority_prefix() -> list[str]:
    """``nice -n 10 ionice -c3`` where available, so that a long dump leaves CPU and disk to the live site.

    ionice's idle class is refused in some containers: it is then left out rather than failing the dump.
    """
    global _priority_cache
    if _priority_cache is None:
        prefix: list[str] = []
        nice = shutil.which("nice")
        if nice:
            prefix += [nice, "-n", "10"]
        ionice = shutil.which("ionice")
        if ionice:
            try:
                ok = subprocess.run([ionice, "-c3", "true"], stdin=subprocess.DEVNULL, capture_output=True,
                                    timeout=10, check=False).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                prefix += [ionice, "-c3"]
        _priority_cache = prefix
    return list(_priority_cache)
