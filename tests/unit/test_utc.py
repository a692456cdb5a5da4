"""UTC stamps, one way on every host: in files and results, and in names that sort by time."""

from __future__ import annotations

import datetime

from ansible_collections.fpt.sec.plugins.module_utils.utc import compact_utc, iso_utc, utc_now


def test_stamps_are_utc_whatever_the_local_zone(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    moment = datetime.datetime(2026, 12, 7, 0, 59, 18, tzinfo=datetime.timezone.utc)  # noqa: UP017
    assert compact_utc(moment) == "20261207T005918Z"
    assert utc_now().tzinfo is not None and iso_utc().endswith("Z") and len(compact_utc()) == 16
