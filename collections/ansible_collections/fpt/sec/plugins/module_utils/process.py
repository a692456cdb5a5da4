# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a process id is in use on this host: for locks, temporary folders and pid files that name the
process that made them."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process with this id runs, ours or another user's (EPERM). A zombie does not count: it
    has exited and will never finish what it held (a SIGKILLed ansible-playbook whose new parent has not
    reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, it belongs to another user
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to tell: existing is all we know
    return state != "Z"
