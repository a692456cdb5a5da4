# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGTERM/SIGHUP as an exception. A module that leaves something behind while it works (a temporary folder,
a fresh database, a running rsync) installs this handler, so that a killed task (AWX cancel, a lost SSH
session) unwinds through its ``except``/``finally`` and cleans up instead of dying on the spot."""

from __future__ import annotations

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
