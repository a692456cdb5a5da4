"""Two sites in one operation (sec_wrapper/site_pair.py): the refusals that need no host, and one inventory
holding both sites, within a cluster and between clusters."""

from __future__ import annotations

from pathlib import Path

import pytest

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.site_pair import SitePair, check_db_target, check_distinct, pair_inventory


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEC_HOME", str(tmp_path))
    return tmp_path


def site(name: str, role: str, version: str = "8.0.0", hosts: tuple[str, ...] = ("app1",)) -> store.Site:
    reverse = "_".join(reversed(name.split(".")))
    return store.Site(name=name, reverse_name=reverse, site_dir=f"/var/rails/{reverse}", role=role, version=version,
                      app_hosts=list(hosts))


def cluster(name: str, sites: list[store.Site], hosts: tuple[str, ...] = ("app1",),
            address: str = "10.0.0.1") -> store.Cluster:
    return store.Cluster(name=name, sites=sites,
                         hosts=[store.Host(name=h, address=address, port=22, roles=["app", "db"]) for h in hosts])


PROD = site("prod.teststudio.com", "production")
STAGING = site("staging.teststudio.com", "staging")


def test_a_production_target_is_refused_and_told_how_to_change_its_role() -> None:
    one = cluster("c", [PROD, STAGING])
    with pytest.raises(SecError, match=r"production site.*sec site role prod.teststudio.com staging"):
        check_db_target(SitePair(one, STAGING, one, PROD))


def test_the_same_site_twice_is_refused() -> None:
    one = cluster("c", [PROD, STAGING])
    with pytest.raises(SecError, match="same site"):
        check_db_target(SitePair(one, STAGING, one, STAGING))
    with pytest.raises(SecError, match="same site"):
        check_distinct(SitePair(one, PROD, one, PROD))


def test_an_older_target_is_refused_and_told_to_upgrade() -> None:
    newer = site("prod.teststudio.com", "production", version="8.1.0")
    one = cluster("c", [newer, STAGING])
    told = r"older than prod.teststudio.com \(8.1.0\).*Upgrade staging.teststudio.com to 8.1.0"
    with pytest.raises(SecError, match=told):
        check_db_target(SitePair(one, newer, one, STAGING))
    # A newer target, or an unknown version (the playbook reads the real ones), is left to the playbook.
    check_db_target(SitePair(one, PROD, one, site("staging.teststudio.com", "staging", version="8.0.1")))
    check_db_target(SitePair(one, PROD, one, site("staging.teststudio.com", "staging", version="")))


def test_one_cluster_gives_its_own_inventory() -> None:
    one = cluster("c", [PROD, STAGING])
    inventory = pair_inventory(SitePair(one, PROD, one, STAGING))
    children = inventory["all"]["children"]
    assert children["com_teststudio_prod"]["hosts"] == {"app1": None}
    assert children["com_teststudio_staging"]["hosts"] == {"app1": None}
    assert set(inventory["all"]["hosts"]["app1"]["sec_sites"]) == {"com_teststudio_prod", "com_teststudio_staging"}


def test_two_clusters_give_one_inventory_with_each_site_on_its_own_hosts() -> None:
    source = cluster("prodcluster", [PROD, site("other.teststudio.com", "production")], hosts=("app1",),
                     address="10.0.0.1")
    staging = site("staging.teststudio.com", "staging", hosts=("app1", "app2"))
    target = cluster("stagecluster", [staging], hosts=("app1", "app2"), address="10.0.9.9")
    inventory = pair_inventory(SitePair(source, PROD, target, staging))
    hosts = inventory["all"]["hosts"]
    # app1 is a name in both clusters: two hosts, told apart by their cluster.
    assert set(hosts) == {"app1@prodcluster", "app1@stagecluster", "app2"}
    assert hosts["app1@prodcluster"]["ansible_host"] == "10.0.0.1"
    assert hosts["app1@stagecluster"]["ansible_host"] == "10.0.9.9"
    # Each host describes only the site it serves in this sync.
    assert set(hosts["app1@prodcluster"]["sec_sites"]) == {"com_teststudio_prod"}
    assert set(hosts["app2"]["sec_sites"]) == {"com_teststudio_staging"}
    children = inventory["all"]["children"]
    assert set(children["com_teststudio_prod"]["hosts"]) == {"app1@prodcluster"}
    assert set(children["com_teststudio_staging"]["hosts"]) == {"app1@stagecluster", "app2"}
    assert set(children["app_servers"]["hosts"]) == set(hosts)
    assert set(children["production"]["hosts"]) == {"app1@prodcluster"}
    assert "other.teststudio.com" not in str(inventory)


def test_two_sites_of_one_name_in_two_clusters_are_refused() -> None:
    a, b = cluster("a", [PROD]), cluster("b", [site("prod.teststudio.com", "staging")])
    with pytest.raises(SecError, match="both named prod.teststudio.com"):
        check_distinct(SitePair(a, PROD, b, b.sites[0]))


def test_same_host_is_decided_as_the_playbooks_do() -> None:
    one = cluster("c", [PROD, STAGING])
    assert SitePair(one, PROD, one, STAGING).same_host()
    other = cluster("d", [site("staging.teststudio.com", "staging")], address="10.0.0.1")
    assert SitePair(one, PROD, other, other.sites[0]).same_host()  # same address and port
    far = cluster("e", [site("staging.teststudio.com", "staging")], address="10.0.0.2")
    assert not SitePair(one, PROD, far, far.sites[0]).same_host()
