# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""UTC time stamps, written one way everywhere sec writes one on a host: ``2026-12-07T00:59:18Z`` in files and
results, ``20261207T005918Z`` in names (backups, operation ids).

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import datetime
import time

ISO = "%Y-%m-%dT%H:%M:%SZ"
COMPACT = "%Y%m%dT%H%M%SZ"
_UTC = datetime.timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+, this file runs on 3.8 hosts)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(_UTC)


def iso_utc(epoch: float | None = None) -> str:
    """``epoch`` (default: now) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime(ISO, time.gmtime(time.time() if epoch is None else epoch))


def compact_utc(moment: datetime.datetime | None = None) -> str:
    """``moment`` (default: now) as ``YYYYMMDDTHHMMSSZ``, for names that sort by time."""
    return (moment or utc_now()).strftime(COMPACT)


def epoch_of_iso(text: str) -> float | None:
    """Seconds since the epoch of a time stamp written by `iso_utc` (or ISO 8601 with an offset); None when
    it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=_UTC)).timestamp()
