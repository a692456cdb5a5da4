"""The inventory built from a cluster file: host vars, role and site groups, ssh options.

The shape is the collection's cluster_inventory (shared with the apache_sites plugin); these tests pin what
the CLI feeds it: stored keys made absolute and checked, and the data folder's known_hosts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sec_wrapper import inventory, store
from sec_wrapper.errors import SecError

KEY_TEXT = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


pytestmark = pytest.mark.usefixtures("home")  # a data folder of each test's own (tests/unit/conftest.py)


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id_test"
    path.write_text(KEY_TEXT)
    path.chmod(0o600)
    return path


@pytest.fixture
def cluster(key: Path) -> store.Cluster:
    hosts = [
        store.Host(name="app1", address="10.0.0.1", port=2201, user="shotgun", roles=["app"],
                   key=store.import_key(key, "studio", "app1")),
        store.Host(name="api1", address="10.0.0.2", roles=["api"]),
        store.Host(name="db1", address="10.0.0.3", roles=["db"]),
        store.Host(name="spare", address="10.0.0.4", roles=["app"]),
    ]
    db = store.Database(host="10.0.0.3", name="prod_db", user="shotgun")
    sites = [
        store.Site(name="prod.teststudio.com", reverse_name="com_teststudio_prod", site_dir="/s/prod",
                   version="8.1.2", database=db, app_hosts=["app1"], db_host="db1",
                   media_dir="/s/prod/media", extra={"discovered_by": "site_facts"}),
        store.Site(name="staging.teststudio.com", reverse_name="com_teststudio_staging", site_dir="/s/stg",
                   role="staging", version="8.2.0", database=db, app_hosts=["app1"], db_host="db1"),
    ]
    return store.Cluster(name="studio", hosts=hosts, sites=sites)


def _members(inv: dict, group: str) -> list[str]:
    return sorted(inv["all"]["children"][group]["hosts"])


def test_host_vars(cluster: store.Cluster, home: Path) -> None:
    inv = inventory.cluster_inventory(cluster)
    app1 = inv["all"]["hosts"]["app1"]
    assert app1["ansible_host"] == "10.0.0.1"
    assert app1["ansible_port"] == 2201
    assert app1["ansible_user"] == "shotgun"
    assert app1["ansible_ssh_private_key_file"] == str((home / "keys" / "studio" / "app1").resolve())
    assert "ansible_ssh_private_key_file" not in inv["all"]["hosts"]["api1"]
    assert inv["all"]["hosts"]["api1"]["ansible_port"] == 22


def test_role_groups(cluster: store.Cluster) -> None:
    inv = inventory.cluster_inventory(cluster)
    assert _members(inv, "app_servers") == ["app1", "spare"]
    assert _members(inv, "api_servers") == ["api1"]
    assert _members(inv, "db_servers") == ["db1"]


def test_site_and_role_groups(cluster: store.Cluster) -> None:
    inv = inventory.cluster_inventory(cluster)
    # App servers serve the sites found on them; API servers serve every site of the cluster.
    assert _members(inv, "com_teststudio_prod") == ["api1", "app1"]
    assert _members(inv, "com_teststudio_staging") == ["api1", "app1"]
    assert _members(inv, "production") == ["api1", "app1"]
    assert _members(inv, "staging") == ["api1", "app1"]
    assert inv["all"]["vars"]["sec_cluster"] == "studio"


def test_sec_sites_per_host(cluster: store.Cluster) -> None:
    hosts = inventory.cluster_inventory(cluster)["all"]["hosts"]
    assert sorted(hosts["app1"]["sec_sites"]) == ["com_teststudio_prod", "com_teststudio_staging"]
    assert sorted(hosts["api1"]["sec_sites"]) == ["com_teststudio_prod", "com_teststudio_staging"]
    assert hosts["db1"]["sec_sites"] == {}
    prod = hosts["app1"]["sec_sites"]["com_teststudio_prod"]
    assert prod["site_dir"] == "/s/prod"
    assert prod["media_dir"] == "/s/prod/media"
    assert prod["db_host"] == "db1"
    assert prod["discovered_by"] == "site_facts"  # a field the store does not know still travels
    assert prod["database"] == {"host": "10.0.0.3", "port": 5432, "name": "prod_db", "user": "shotgun"}


def test_empty_groups_still_exist() -> None:
    inv = inventory.cluster_inventory(store.Cluster(name="empty"))
    for group in ("app_servers", "api_servers", "db_servers", "production", "staging"):
        assert _members(inv, group) == []


def test_ssh_args_use_our_known_hosts(cluster: store.Cluster, home: Path) -> None:
    args = inventory.cluster_inventory(cluster)["all"]["hosts"]["app1"]["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={home / 'known_hosts'}" in args
    assert "StrictHostKeyChecking=accept-new" in args


def test_cluster_known_hosts_setting_overrides(cluster: store.Cluster) -> None:
    cluster.settings["ssh_known_hosts"] = "/etc/ssh/ssh known_hosts"
    args = inventory.cluster_inventory(cluster)["all"]["hosts"]["db1"]["ansible_ssh_common_args"]
    assert "UserKnownHostsFile='/etc/ssh/ssh known_hosts'" in args  # quoted: ansible splits like a shell


def test_loose_key_refused_when_building(cluster: store.Cluster, home: Path) -> None:
    (home / "keys" / "studio" / "app1").chmod(0o640)
    with pytest.raises(SecError, match="chmod 600"):
        inventory.cluster_inventory(cluster)


def test_single_host_inventory(key: Path) -> None:
    inv = inventory.single_host_inventory("127.0.0.1", 2222, "root", key)
    hv = inv["all"]["hosts"]["candidate"]
    assert {k: hv[k] for k in ("ansible_host", "ansible_port", "ansible_user", "ansible_ssh_private_key_file")} \
        == {"ansible_host": "127.0.0.1", "ansible_port": 2222, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key.resolve())}
    assert "ControlPath=none" in hv["ansible_ssh_args"]  # a probe never reuses another login's connection
    assert _members(inv, "app_servers") == ["candidate"]
    assert "accept-new" in hv["ansible_ssh_common_args"]
    assert inventory.endpoints(inv) == {"candidate": "127.0.0.1:2222"}


def test_single_host_inventory_refuses_loose_key(key: Path) -> None:
    key.chmod(0o644)
    with pytest.raises(SecError, match="chmod 600"):
        inventory.single_host_inventory("127.0.0.1", key_file=key)


def test_ansible_reads_it(cluster: store.Cluster, tmp_path: Path) -> None:
    """The dict is a valid YAML/JSON inventory for ansible itself, groups and vars included."""
    tool = Path(sys.executable).parent / "ansible-inventory"
    if not tool.exists() and not shutil.which("ansible-inventory"):
        pytest.skip("ansible-inventory not installed")
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory.cluster_inventory(cluster)))
    out = subprocess.run([str(tool) if tool.exists() else "ansible-inventory", "-i", str(path), "--list"],
                         capture_output=True, text=True, check=True, env={"PATH": str(tool.parent),
                                                                         "ANSIBLE_INVENTORY_ENABLED": "yaml"})
    listed = json.loads(out.stdout)
    assert sorted(listed["com_teststudio_prod"]["hosts"]) == ["api1", "app1"]
    assert "com_teststudio_staging" in listed["_meta"]["hostvars"]["app1"]["sec_sites"]
