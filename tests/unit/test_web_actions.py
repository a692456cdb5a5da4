"""The console's one mapping of an action (JSON options or a form) to the `sec` command that does it."""

from __future__ import annotations

import pytest

from sec_wrapper.errors import SecError
from sec_wrapper.web.actions import cluster_create_argv, form_options, host_argv, site_operation_argv

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


def test_the_restore_form_switches_the_release_when_its_box_is_ticked() -> None:
    ticked = form_options("restore", {"csrf": "t", "backup": "b1", "switch_release": "on"})
    assert site_operation_argv("restore", SITE, ticked, confirmed=True) == [
        "restore", SITE, "b1", "--switch-release", "--json", "--yes"]
    assert form_options("restore", {"backup": "b1"}) == {"backup": "b1"}


def test_cluster_and_host_forms_become_cli_commands(tmp_path) -> None:
    keys = ["studio/app1"]
    assert cluster_create_argv({"name": "studio", "app_server": "app1.lan", "key": "studio/app1"}, keys,
                               tmp_path) == ["cluster", "create", "studio", "--app-server", "app1.lan", "--port",
                                             "22", "--user", "root", "--key", str(tmp_path / "studio/app1"),
                                             "--json"]
    assert host_argv("add", {"cluster": "studio", "name": "api1", "address": "api1.lan", "port": 2222,
                             "no_check": True}, ["api"], keys, tmp_path) == [
        "host", "add", "studio", "api1", "--address=api1.lan", "--port=2222", "--roles=api", "--no-check"]
    assert host_argv("remove", {"cluster": "studio", "name": "api1", "force": "on"}, [], keys, tmp_path) == [
        "host", "remove", "studio", "api1", "--force"]


@pytest.mark.parametrize("build, words", [
    (lambda d: cluster_create_argv({"name": "x"}, [], d), "app_server"),
    (lambda d: cluster_create_argv({"name": "x", "app_server": "-oProxyCommand=x"}, [], d), "not a valid value"),
    (lambda d: cluster_create_argv({"name": "x", "app_server": "a", "key": "/etc/shadow"}, [], d), "no key"),
    (lambda d: host_argv("add", {"cluster": "c"}, [], [], d), "host's name"),
    (lambda d: host_argv("add", {"cluster": "c", "name": "h", "user": "-x"}, [], [], d), "not a valid value"),
    (lambda d: host_argv("add", {"cluster": "c", "name": "h"}, ["-x"], [], d), "not a valid value"),
    (lambda d: host_argv("reboot", {"cluster": "c", "name": "h"}, [], [], d), "no host action"),
])
def test_cluster_and_host_input_that_could_change_the_command_is_refused(build, words: str, tmp_path) -> None:
    with pytest.raises(SecError, match=words):
        build(tmp_path)
