"""Folding discovery's answers into a cluster: the sites found, and the Python that ran discovery on each App
server, which later runs use instead of Ansible's interpreter discovery."""

from __future__ import annotations

import pytest
from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import (
    cluster_from_discovery,
    inventory_from_cluster,
)

from sec_wrapper import store
from sec_wrapper.cluster_discovery import (
    check_defines,
    parse_apache_env,
    print_skipped,
    refreshed,
    require_sites,
    skipped_sites,
)
from sec_wrapper.errors import SecError

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


LEGACY = {"name": "legacy.teststudio.com", "file": "/etc/httpd/conf.d/legacy.conf", "line": 2,
          "site_dir": "/s/legacy", "reason": "Apache does not load it: inside <IfVersion < 2.4> at "
          "/etc/httpd/conf.d/legacy.conf:1, false for Apache 2.4.62"}


def test_skipped_sites_are_listed_with_their_app_server_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    answers = {"app1": {"sites": [SITE], "apache": [], "skipped_sites": [LEGACY]}, "app2": {"sites": []}}
    listed = skipped_sites(answers)
    assert listed == [{**LEGACY, "app_server": "app1"}]
    print_skipped(listed)
    assert capsys.readouterr().out == (
        "\nnot taken as sites (1):\n  app1: legacy.teststudio.com (/etc/httpd/conf.d/legacy.conf:2) not taken as a "
        "site: Apache does not load it: inside <IfVersion < 2.4> at /etc/httpd/conf.d/legacy.conf:1, false for "
        "Apache 2.4.62\n"
    )
    print_skipped([])
    assert capsys.readouterr().out == ""
    assert cluster_from_discovery([app_server()], answers)["skipped_sites"] == {"app1": [LEGACY]}


def test_no_site_found_names_the_skipped_vhosts() -> None:
    with pytest.raises(SecError) as caught:
        require_sites({"app1": {"sites": [], "apache": [{"config": "/etc/httpd/conf/httpd.conf"}],
                                "skipped_sites": [LEGACY]}}, "app1:22")
    assert "legacy.teststudio.com (/etc/httpd/conf.d/legacy.conf:2) not taken as a site: Apache does not" in str(
        caught.value)


def test_apache_env_and_defines_from_the_command_line() -> None:
    assert parse_apache_env(["SITES=/srv/a=b", "EMPTY="]) == {"SITES": "/srv/a=b", "EMPTY": ""}
    assert parse_apache_env(None) == {}
    with pytest.raises(SecError, match="--apache-env takes NAME=VALUE"):
        parse_apache_env(["no-equals"])
    with pytest.raises(SecError, match="--apache-env takes NAME=VALUE"):
        parse_apache_env(["1BAD=x"])
    assert check_defines(["SSL", "DR_SITE"]) == ["SSL", "DR_SITE"]
    with pytest.raises(SecError, match="--apache-define takes a -D name"):
        check_defines(["-DSSL"])


def _on(host: str, root: str, port: int) -> dict:
    return {**SITE, "site_dir": f"{root}/prod", "media_dir": f"{root}/prod/media",
            "backup_dir": f"{root}/prod/db_backup", "health_url": f"http://{host}:{port}/status", "ports": [port],
            "database": {**SITE["database"], "host": "10.0.0.14"}}


def test_each_web_head_keeps_its_own_site_dir_and_vhost_and_app_servers_come_first() -> None:
    servers = [{"name": n, "address": a, "port": 22, "user": "root", "key": None}
               for n, a in (("app2", "10.0.0.12"), ("app1", "10.0.0.11"))]
    api = [{"name": "api1", "address": "10.0.0.13", "port": 22, "user": "root", "key": None}]
    discoveries = {"app1": {"sites": [_on("10.0.0.11", "/a1", 81)]}, "app2": {"sites": [_on("10.0.0.12", "/a2", 82)]},
                   "api1": {"sites": [_on("10.0.0.13", "/api", 83)]}}
    db = [{"name": "db1", "address": "10.0.0.14", "port": 2222, "user": "dba", "key": "db1_key"}]
    cluster = cluster_from_discovery(servers, discoveries, api, db)
    assert {h["name"]: h["roles"] for h in cluster["hosts"]} == {"app1": ["app"], "app2": ["app"], "api1": ["api"],
                                                                 "db1": ["db"]}
    assert next(h for h in cluster["hosts"] if h["name"] == "db1")["port"] == 2222  # its own SSH settings
    (site,) = cluster["sites"]
    assert site["app_hosts"] == ["app1", "app2"] and site["db_host"] == "db1"
    inventory = inventory_from_cluster(cluster)
    # App servers first, then the API server: a play's run_once steps land on the first App server.
    assert inventory["groups"]["com_teststudio_prod"] == ["app1", "app2", "api1"]
    seen = {h: inventory["hosts"][h]["sec_sites"]["com_teststudio_prod"] for h in ("app1", "app2", "api1")}
    assert {h: s["site_dir"] for h, s in seen.items()} == {"app1": "/a1/prod", "app2": "/a2/prod", "api1": "/api/prod"}
    assert seen["api1"]["health_url"] == "http://10.0.0.13:83/status"
    assert "on_hosts" not in seen["app1"] and "app_hosts" not in seen["app1"]


def test_a_registered_db_server_is_not_found_again_under_its_address() -> None:
    app1 = store.Host(name="app1", address="10.0.0.11", roles=["app"])
    db1 = store.Host(name="db1", address="10.0.0.14", port=2222, roles=["db"])
    cluster = store.Cluster(name="c", hosts=[app1, db1])
    found = {"app1": {"sites": [_on("10.0.0.11", "/a1", 81)]}}
    cluster, notes = refreshed(cluster, found)
    assert [h.name for h in cluster.hosts] == ["app1", "db1"] and cluster.hosts[1].port == 2222
    assert cluster.sites[0].db_host == "db1" and not [n for n in notes if "new host" in n]
