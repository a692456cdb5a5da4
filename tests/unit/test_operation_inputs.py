"""Inputs refused before an operation is recorded: one line that names the fix."""

from __future__ import annotations

import datetime

import pytest

from sec_wrapper.errors import SecError
from sec_wrapper.operation_inputs import MAX_TEXT, check

TODAY = datetime.datetime.now(datetime.UTC).date()


@pytest.mark.parametrize(("playbook", "values", "fix"), [
    ("backup.yml", {"label": "{{ 7 * 7 }}"}, "letters, digits"),
    ("backup.yml", {"label": "a_b"}, "no underscore"),
    ("backup.yml", {"keep": -1}, "from 0 to 9999"),
    ("backup.yml", {"keep_safety": "x"}, "whole number"),
    ("restore.yml", {"backup": "/var/rails/x/db_backup/b"}, "not a path"),
    ("restore.yml", {"backup": "a..b"}, "not a path"),
    ("trim_events.yml", {"before": "2023-02-30"}, "calendar date"),
    ("trim_events.yml", {"before": "yesterday"}, "YYYY-MM-DD"),
    ("trim_events.yml", {"before": str(TODAY + datetime.timedelta(days=2))}, "in the future"),
    ("trim_events.yml", {"before": str(TODAY - datetime.timedelta(days=3))}, "--keep-days"),
    ("trim_events.yml", {"before": "2020-01-01", "batch_size": 0}, "from 1 to"),
    ("maintenance.yml", {"message": "x" * 5000}, "at most 4096"),
    ("site_settings.yml", {"settings": {"site_name": "x" * (MAX_TEXT + 1)}}, "site_name: "),
    ("site_settings.yml", {"settings_json": "[" * 5000}, "not valid JSON"),
    ("site_settings.yml", {"settings": {"favourite_colour": "blue"}}, "use force"),
    ("site_settings.yml", {"settings": {"smtp_port": "99999"}}, "smtp_port"),
    ("restore.yml", {"backup": "b", "force": "maybe"}, "true or false"),
    ("backup.yml", {"operation_id": "a b"}, "operation id"),
    ("backup.yml", {"keep_copies": "{{ 7 * 7 }}"}, "keep-copies"),
    ("backup.yml", {"keep_days": 100000}, "from 0 to 99999"),
    ("drill.yml", {"backup": "{{ 7 * 7 }}"}, "not a path"),
    ("drill.yml", {"backup": "../other_site/db_backup/b"}, "not a path"),
    ("backups.yml", {"pin": "{% raw %}"}, "pin "),
    ("backups.yml", {"unpin": "a/b"}, "unpin "),
])
def test_refused_with_one_line_that_names_the_fix(playbook: str, values: dict, fix: str) -> None:
    with pytest.raises(SecError) as refused:
        check(playbook, values)
    assert fix in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("playbook", "values"), [
    ("backup.yml", {"keep": 5, "label": "before-upgrade"}),
    ("backup.yml", {"label": ""}),
    ("restore.yml", {"backup": "com_teststudio_prod_20240101T000000Z_web", "force": False}),
    ("trim_events.yml", {"before": "2020-02-29", "keep_days": 30, "vacuum": True}),
    ("trim_events.yml", {"before": str(TODAY), "keep_days": 0}),
    ("maintenance.yml", {"state": "on", "message": "{{ shown as typed }}"}),
    ("discover.yml", {"apache_env": {"A": "b"}}),
    ("backup.yml", {"keep_copies": 3, "keep_days": "", "no_copy": True}),
    ("drill.yml", {"backup": None}),
    ("drill.yml", {"backup": "20240501T120000Z_8.0.0"}),
    ("backups.yml", {"pin": "20240501T120000Z_8.0.0", "check_files": False}),
])
def test_good_inputs_pass(playbook: str, values: dict) -> None:
    check(playbook, values)


def test_a_long_refusal_keeps_its_fix_when_cut_to_one_line() -> None:
    """Issue 22: a trim refusal after a restore was cut at "move the file asi..." before its fix."""
    from sec_wrapper.history import one_line

    path = "/var/rails/com_teststudio_staging/db_backup/" + "x" * 700 + ".csv"
    text = f"cannot tell whether the last batch of {path} was deleted; move the file aside after checking it"
    line = one_line(text)
    assert len(line) <= 600 and line.endswith("move the file aside after checking it")
    assert line.startswith("cannot tell whether the last batch of") and "\n" not in line
    assert one_line("short and whole") == "short and whole"
