# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGTERM/SIGHUP as an exception. A module that leaves something behind while it works (a temporary folder,
a fresh database, a running rsync) installs this handler, so that a killed task (AWX cancel, a lost SSH
session) unwinds through its ``except``/``finally`` and cleans up instead of dying on the spot."""

from __future__ import annotations

import select
import signal


class Interrupted(Exception):
    """Raised by the handler that :func:`raise_on_signals` installs, with the signal's number in the message."""


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(f"interrupted by signal {signum}")


def raise_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> None:
    """From now on, each of ``signals`` raises :class:`Interrupted` ("interrupted by signal 15") in the main
    thread."""
    for signum in signals:
        signal.signal(signum, _on_signal)


def controller_gone(fd: int = 1) -> bool:
    """Whether nobody reads this module's result any more: its stdout (the SSH channel, or ansible's pipe) was
    closed at the other end, as when the controller was killed while the module worked on. A module that
    prepared something for a later task (a fresh database to swap in) drops it then: no task will come."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
        return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False
