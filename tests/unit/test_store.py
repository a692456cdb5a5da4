"""The data folder: cluster files, names, keys and their modes, site lookup."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sec_wrapper import store
from sec_wrapper.errors import SecError

KEY_TEXT = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


pytestmark = pytest.mark.usefixtures("home")  # a data folder of each test's own (tests/unit/conftest.py)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_file(tmp_path: Path, mode: int = 0o600, text: str = KEY_TEXT) -> Path:
    path = tmp_path / "id_test"
    path.write_text(text)
    path.chmod(mode)
    return path


def _cluster(name: str = "studio", site_names: tuple[str, ...] = ("prod.teststudio.com",)) -> store.Cluster:
    sites = [store.Site(name=n, reverse_name="_".join(reversed(n.split("."))), site_dir=f"/var/rails/{n}",
                        version="8.1.2", database=store.Database(host="db1", port=5432, name="db", user="sg"),
                        app_hosts=["app1"]) for n in site_names]
    return store.Cluster(name=name, hosts=[store.Host(name="app1", address="10.0.0.1", roles=["app"])],
                         sites=sites)


@pytest.mark.parametrize("name", ["a", "studio", "Studio-2.prod_x", "9lives", "x" * 63])
def test_valid_names(name: str) -> None:
    assert store.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", ".hidden", "a b", "a:b", "x" * 64, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(SecError, match="not valid"):
        store.validate_name(name)


def test_slash_in_name_names_the_fix() -> None:
    with pytest.raises(SecError, match="slash"):
        store.validate_name("a/b")
    with pytest.raises(SecError, match="slash"):
        store.save_cluster(store.Cluster(name="../evil"))


def test_save_load_round_trip(home: Path) -> None:
    cluster = _cluster()
    cluster.settings = {"ssh_known_hosts": "/etc/ssh/ssh_known_hosts"}
    path = store.save_cluster(cluster, new=True)
    assert path == home / "clusters" / "studio.json"
    assert _mode(path) == 0o600
    assert _mode(home / "clusters") == 0o700
    loaded = store.load_cluster("studio")
    assert loaded == cluster
    assert loaded.created and loaded.updated
    assert json.loads(path.read_text())["format"] == store.FORMAT
    assert [p.name for p in path.parent.iterdir()] == ["studio.json"]  # no temp file left behind


def test_existing_name_is_refused_for_a_new_cluster() -> None:
    store.save_cluster(_cluster(), new=True)
    before = store.cluster_path("studio").read_text()
    with pytest.raises(SecError, match="exists.*sec cluster remove studio"):
        store.save_cluster(_cluster(), new=True)
    with pytest.raises(SecError, match="exists"):
        store.ensure_new_cluster_name("studio")
    assert store.cluster_path("studio").read_text() == before


def test_update_keeps_created() -> None:
    cluster = _cluster()
    store.save_cluster(cluster, new=True)
    created = cluster.created
    cluster.sites[0].role = "staging"
    store.save_cluster(cluster)
    loaded = store.load_cluster("studio")
    assert loaded.created == created
    assert loaded.sites[0].role == "staging"


def test_list_and_remove(home: Path, tmp_path: Path) -> None:
    store.save_cluster(_cluster("b"), new=True)
    store.save_cluster(_cluster("a"), new=True)
    store.import_key(_key_file(tmp_path), "a", "app1")
    assert [c.name for c in store.list_clusters()] == ["a", "b"]
    store.remove_cluster("a")
    assert [c.name for c in store.list_clusters()] == ["b"]
    assert not (home / "keys" / "a").exists()
    with pytest.raises(SecError, match="no cluster a"):
        store.remove_cluster("a")
    with pytest.raises(SecError, match="no cluster a"):
        store.load_cluster("a")


def test_corrupt_file_is_named() -> None:
    store.clusters_dir().joinpath("bad.json").write_text("{not json")
    with pytest.raises(SecError, match="bad.json"):
        store.load_cluster("bad")


def test_secrets_are_never_stored() -> None:
    cluster = _cluster()
    cluster.settings = {"db_password": "hunter2"}
    with pytest.raises(SecError, match="settings.db_password"):
        store.save_cluster(cluster, new=True)
    cluster.settings = {"note": KEY_TEXT}
    with pytest.raises(SecError, match="key material"):
        store.save_cluster(cluster, new=True)
    assert not store.cluster_exists("studio")


def test_database_password_is_dropped_on_load() -> None:
    site = store.Site.from_dict({"name": "a.b", "reverse_name": "b_a", "site_dir": "/x",
                                 "database": {"host": "db", "name": "n", "user": "u", "password": "hunter2"}})
    assert "hunter2" not in json.dumps(site.to_dict())
    assert site.database == store.Database(host="db", port=5432, name="n", user="u")


def test_import_key(home: Path, tmp_path: Path) -> None:
    name = store.import_key(_key_file(tmp_path), "studio", "app1")
    assert name == "studio/app1"
    copied = home / "keys" / "studio" / "app1"
    assert copied.read_text() == KEY_TEXT
    assert _mode(copied) == 0o600
    assert _mode(home / "keys") == 0o700
    assert _mode(home / "keys" / "studio") == 0o700
    assert store.key_path(name) == copied.resolve()


def test_import_refuses_a_readable_key(home: Path, tmp_path: Path) -> None:
    src = _key_file(tmp_path, 0o644)
    with pytest.raises(SecError, match=f"chmod 600 {src}"):
        store.import_key(src, "studio", "app1")
    assert not (home / "keys" / "studio").exists()


def test_import_refuses_a_public_key(tmp_path: Path) -> None:
    with pytest.raises(SecError, match="not a private key"):
        store.import_key(_key_file(tmp_path, text="ssh-ed25519 AAAA me@host\n"), "studio", "app1")


def test_import_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SecError, match="does not exist"):
        store.import_key(tmp_path / "nope", "studio", "app1")


def test_loose_keys_folder_is_refused(home: Path, tmp_path: Path) -> None:
    (home / "keys").mkdir(parents=True)
    (home / "keys").chmod(0o755)
    with pytest.raises(SecError, match="chmod 700"):
        store.import_key(_key_file(tmp_path), "studio", "app1")


def test_loose_key_file_is_refused_at_use(home: Path, tmp_path: Path) -> None:
    name = store.import_key(_key_file(tmp_path), "studio", "app1")
    (home / "keys" / "studio" / "app1").chmod(0o644)
    with pytest.raises(SecError, match="chmod 600"):
        store.key_path(name)


def test_key_path_stays_inside_keys(tmp_path: Path) -> None:
    store.import_key(_key_file(tmp_path), "studio", "app1")
    with pytest.raises(SecError, match="outside"):
        store.key_path("../clusters/studio.json")
    with pytest.raises(SecError, match="missing"):
        store.key_path("studio/nope")


def test_find_site_by_name_and_reverse_name() -> None:
    store.save_cluster(_cluster("a", ("prod.teststudio.com", "staging.teststudio.com")), new=True)
    cluster, site = store.find_site("prod.teststudio.com")
    assert (cluster.name, site.reverse_name) == ("a", "com_teststudio_prod")
    assert store.find_site("com_teststudio_staging")[1].name == "staging.teststudio.com"
    with pytest.raises(SecError, match="no site nope"):
        store.find_site("nope")


def test_ambiguous_site_asks_for_cluster() -> None:
    store.save_cluster(_cluster("a"), new=True)
    store.save_cluster(_cluster("b"), new=True)
    with pytest.raises(SecError, match="clusters a, b: add --cluster"):
        store.find_site("prod.teststudio.com")
    assert store.find_site("prod.teststudio.com", cluster="b")[0].name == "b"


def test_cluster_helpers() -> None:
    cluster = _cluster()
    assert cluster.host("app1").address == "10.0.0.1"
    assert [h.name for h in cluster.hosts_with_role("app")] == ["app1"]
    assert cluster.hosts_with_role("db") == []
    with pytest.raises(SecError, match="no host db9"):
        cluster.host("db9")


def test_site_keeps_fields_it_does_not_know() -> None:
    cluster = _cluster()
    cluster.sites[0].extra = {"php_version": None, "vhost_file": "/etc/httpd/conf.d/prod.conf"}
    store.save_cluster(cluster, new=True)
    site = store.load_cluster("studio").sites[0]
    assert site.extra == {"php_version": None, "vhost_file": "/etc/httpd/conf.d/prod.conf"}
    assert site.to_dict()["vhost_file"] == "/etc/httpd/conf.d/prod.conf"


def test_secret_in_a_site_field_is_refused() -> None:
    cluster = _cluster()
    cluster.sites[0].extra = {"admin_password": "hunter2"}
    with pytest.raises(SecError, match=r"sites\[0\].admin_password"):
        store.save_cluster(cluster, new=True)


def test_reads_what_discovery_builds() -> None:
    """The collection's cluster_from_discovery output is a cluster file's hosts and sites as they are."""
    from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import cluster_from_discovery

    found = {"name": "prod.teststudio.com", "reverse_name": "com_teststudio_prod", "site_dir": "/s/prod",
             "role": "production", "version": "8.1.2", "aliases": ["prod"], "ssl": True, "ports": [443],
             "database": {"host": "127.0.0.1", "port": 5432, "name": "prod", "user": "sg"}}
    built = cluster_from_discovery([{"name": "app1", "address": "10.0.0.1", "port": 22, "user": "root",
                                     "key": None}], {"app1": {"sites": [found]}})
    cluster = store.Cluster.from_dict({"name": "studio", **built})
    assert cluster.host("app1").roles == ["app", "db"]
    site = cluster.sites[0]
    assert (site.app_hosts, site.db_host, site.aliases, site.ssl) == (["app1"], "app1", ["prod"], True)
    store.save_cluster(cluster, new=True)
    assert store.load_cluster("studio") == cluster


def test_a_database_yml_without_port_or_host_loads() -> None:
    # Discovery reports null for what database.yml leaves out (a Unix socket, the default port).
    site = store.Site.from_dict({"name": "a.b", "reverse_name": "b_a", "site_dir": "/x",
                                 "database": {"host": None, "port": None, "name": "n", "user": None}})
    assert site.database == store.Database(host="", port=5432, name="n", user="")
