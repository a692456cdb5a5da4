"""An operation's options, checked once by its spec for every front end: the CLI's arguments are built from
it, the console's JSON and forms are typed by it, and what could change a command is refused as data."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sec_wrapper import store
from sec_wrapper.commands.operation_args import add_operation, request_of
from sec_wrapper.errors import SecError
from sec_wrapper.operations import service
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.web import forms

SITE = "prod.teststudio.com"


def test_options_are_typed_with_their_defaults() -> None:
    assert service.spec_of("backup").typed({"keep": "3", "label": None}) == {
        "keep": 3, "keep_safety": None, "label": None, "no_copy": False, "keep_copies": None, "keep_days": None}
    assert service.spec_of("restore").typed({"backup": "b1", "switch_release": "on"}) == {
        "backup": "b1", "force": False, "switch_release": True, "undo": False, "short_window": False,
        "safety_backup": False, "keep_replaced": 1}
    assert service.spec_of("site settings").typed({"set": "a=1"})["set"] == ["a=1"]


@pytest.mark.parametrize("operation, options, words", [
    ("restore", {"backup": "b1", "keep_replaced": -1}, "keep-replaced -1: give 0 or more"),
    ("trim-events", {"bogus": True}, "no option 'bogus'"),
    ("backup", {"keep": "three"}, "keep 'three': give a whole number"),
    ("upgrade", {"to": "8.1.0", "keep_releases": 0}, "keep-releases 0: give 1 or more"),
    ("backup", {"label": {"a": 1}}, "give a single value"),
    ("backup", {"label": ["a"]}, "give a single value"),
    ("backup", {"label": "a\x00b"}, "NUL"),
    ("maintenance", {"state": "sideways"}, "invalid choice: 'sideways'"),
    ("maintenance", {"state": "on", "message": "m" * 70_000}, "more than an operation takes"),
    ("redeploy", {"force": "maybe"}, "give true or false"),
])
def test_what_the_spec_refuses(operation: str, options: dict, words: str) -> None:
    with pytest.raises(SecError, match=words):
        service.spec_of(operation).typed(options)


def test_an_unknown_operation_is_refused_with_the_choices() -> None:
    with pytest.raises(SecError, match="no operation frobnicate: choose one of .*backup"):
        service.spec_of("frobnicate")


def test_the_cli_arguments_are_the_specs() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    for name in ("restore", "trim-events", "sync-db", "backup"):
        add_operation(sub, service.spec_of(name))
    args = parser.parse_args(["restore", SITE, "b1", "--switch-release", "--yes", "--cluster", "studio"])
    assert request_of(args) == OperationRequest("restore", site=SITE, cluster="studio", confirmed=True, options={
        "backup": "b1", "force": False, "switch_release": True, "undo": False, "short_window": False,
        "safety_backup": False, "keep_replaced": 1})
    assert request_of(parser.parse_args(["restore", SITE, "--undo"])).options["backup"] is None
    args = parser.parse_args(["sync-db", "prod", "staging", "--keep-backup", "--yes"])
    assert request_of(args).options["source"] == "prod" and request_of(args).options["target"] == "staging"
    assert parser.parse_args(["backup", SITE, "--keep-safety", "2"]).keep_safety == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["backup", SITE, "--yes"])  # a backup changes no data: it asks no confirmation


def test_a_typed_name_confirms_only_that_name() -> None:
    assert OperationRequest("restore", typed_name=f" {SITE} ").confirms(SITE)
    assert not OperationRequest("restore", typed_name="prod").confirms(SITE)
    assert not OperationRequest("restore").confirms(SITE)
    assert OperationRequest("restore", confirmed=True).confirms(SITE)


def test_the_consoles_words_become_a_request() -> None:
    wanted = forms.site_request("settings", SITE, {"set": ["a=1"], "cluster": "studio", "confirm": SITE})
    assert wanted == OperationRequest("site settings", site=SITE, cluster="studio", typed_name=SITE,
                                      options={"set": ["a=1"]})
    assert forms.site_request("repair", SITE, {}).operation == "site repair"
    for reserved in ("yes", "json", "plan"):
        with pytest.raises(SecError, match=f"no option '{reserved}' here"):
            forms.site_request("trim-events", SITE, {reserved: True})
    with pytest.raises(SecError, match="no operation frobnicate"):
        forms.site_request("frobnicate", SITE, {})
    form = {"csrf": "t", "confirm": SITE, "before": "2020-01-01", "vacuum": "on", "batch_size": " "}
    assert forms.form_options(form) == {"confirm": SITE, "before": "2020-01-01", "vacuum": "on"}


def test_a_cluster_form_takes_only_a_stored_key_and_an_address_ssh_cannot_mistake(tmp_path: Path) -> None:
    wanted = forms.cluster_create_request({"name": "studio", "app_server": "app1.lan", "key": "studio/app1"},
                                          ["studio/app1"], tmp_path)
    assert wanted.options == {"name": "studio", "app_server": "app1.lan", "port": "22", "user": "root",
                              "key": str(tmp_path / "studio/app1")}
    with pytest.raises(SecError, match="no key '/etc/shadow'"):
        forms.cluster_create_request({"name": "x", "app_server": "a", "key": "/etc/shadow"}, [], tmp_path)
    with pytest.raises(SecError, match="app_server"):
        forms.cluster_create_request({"name": "x"}, [], tmp_path)
    for address, user in (("-oProxyCommand=x", "root"), ("app1 -v", "root"), ("app1", "-lroot")):
        with pytest.raises(SecError, match="is not a"):
            store.check_connection(address, user)
    store.check_connection("10.0.0.5", "deploy", 22)
    store.check_connection("[::1]", "root")
