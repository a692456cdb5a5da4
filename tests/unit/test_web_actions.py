"""The console's one mapping of an action (JSON options or a form) to the `sec` command that does it."""

from __future__ import annotations

import pytest

from sec_wrapper.errors import SecError
from sec_wrapper.web.actions import form_options, site_operation_argv

SITE = "prod.teststudio.com"


def test_positional_arguments_options_flags_and_lists() -> None:
    assert site_operation_argv("restore", SITE, {"backup": "b1", "force": True}, confirmed=True) == [
        "restore", SITE, "b1", "--force", "--json", "--yes"]
    assert site_operation_argv("backup", SITE, {"keep": 3, "label": None}, confirmed=False, cluster="studio") == [
        "backup", SITE, "--keep=3", "--cluster=studio", "--json"]
    assert site_operation_argv("settings", SITE, {"set": ["a=1", "b=2"]}, confirmed=False) == [
        "site", "settings", SITE, "--set=a=1", "--set=b=2", "--json"]
    assert site_operation_argv("sync-media", SITE, {"target": "staging", "dry_run": True}, confirmed=False) == [
        "sync-media", SITE, "staging", "--dry-run", "--json"]
    # --yes only for an operation that changes a production site's data, and only when the name was typed.
    assert "--yes" not in site_operation_argv("backup", SITE, {}, confirmed=True)
    assert "--yes" not in site_operation_argv("trim-events", SITE, {"before": "2020-01-01"}, confirmed=False)


@pytest.mark.parametrize("operation, options, words", [
    ("frobnicate", {}, "no operation frobnicate"),
    ("restore", {}, "restore needs backup"),
    ("trim-events", {"yes": True}, "no option 'yes'"),
    ("upgrade", {"plan": True}, "no option 'plan'"),
    ("backup", {"json": False}, "no option 'json'"),
    ("backup", {"Keep; rm": 1}, "no option"),
    ("backup", {"label": "--json"}, "is not a valid value"),
    ("backup", {"label": "a\nb"}, "is not a valid value"),
    ("backup", {"label": {"a": 1}}, "give a single value"),
    ("restore", {"backup": "-x"}, "is not a valid value"),
])
def test_what_could_change_the_command_is_refused(operation: str, options: dict, words: str) -> None:
    with pytest.raises(SecError, match=words):
        site_operation_argv(operation, SITE, options, confirmed=False)


def test_form_fields_become_options() -> None:
    form = {"csrf": "t", "confirm": SITE, "before": "2020-01-01", "vacuum": "on", "batch_size": " "}
    assert form_options("trim-events", form) == {"before": "2020-01-01", "vacuum": True}
