"""Folding discovery's answers into a cluster: the sites found, and the Python that ran discovery on each App
server, which later runs use instead of Ansible's interpreter discovery."""

from __future__ import annotations

from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import (
    cluster_from_discovery,
    inventory_from_cluster,
)

from sec_wrapper import store
from sec_wrapper.cluster_discovery import refreshed

SITE = {"name": "prod.teststudio.com", "reverse_name": "com_teststudio_prod", "site_dir": "/s/prod",
        "version": "8.0.0", "database": {"host": "127.0.0.1", "port": 5432, "name": "prod", "user": "prod"}}


def facts(python: str | None) -> dict:
    answer = {"sites": [SITE], "apache": []}
    if python:
        answer["python"] = python
    return {"app1": answer}


def app_server(**extra: str) -> dict:
    return {"name": "app1", "address": "10.0.0.1", "port": 22, "user": "root", "key": None, **extra}


def test_the_python_that_ran_discovery_is_recorded_and_reaches_the_inventory() -> None:
    cluster = cluster_from_discovery([app_server()], facts("/usr/libexec/platform-python"))
    assert cluster["hosts"][0]["python"] == "/usr/libexec/platform-python"
    hostvars = inventory_from_cluster(cluster)["hosts"]["app1"]
    assert hostvars["ansible_python_interpreter"] == "/usr/libexec/platform-python"


def test_a_python_given_for_the_host_wins_over_discovery() -> None:
    cluster = cluster_from_discovery([app_server(python="/opt/py/bin/python3")], facts("/usr/bin/python3"))
    assert cluster["hosts"][0]["python"] == "/opt/py/bin/python3"


def test_no_python_reported_leaves_interpreter_discovery_to_ansible() -> None:
    cluster = cluster_from_discovery([app_server()], facts(None))
    assert "python" not in cluster["hosts"][0]
    assert "ansible_python_interpreter" not in inventory_from_cluster(cluster)["hosts"]["app1"]


def test_refresh_fills_a_missing_python_and_keeps_one_the_user_set() -> None:
    unset = store.Cluster(name="c", hosts=[store.Host(name="app1", address="10.0.0.1", roles=["app"])])
    assert refreshed(unset, facts("/usr/bin/python3"))[0].hosts[0].python == "/usr/bin/python3"

    edited = store.Cluster(name="c", hosts=[store.Host(name="app1", address="10.0.0.1", roles=["app"],
                                                       python="/opt/py/bin/python3")])
    assert refreshed(edited, facts("/usr/bin/python3"))[0].hosts[0].python == "/opt/py/bin/python3"
