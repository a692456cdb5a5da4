"""The site model (module_utils/site_model.py): which vhosts are sites, and what each site is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.apache_config import VirtualHost, parse_apache_config
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import read_envvars
from ansible_collections.fpt.sec.plugins.module_utils.site_model import (
    DatabaseConfigError,
    build_sites,
    find_site,
    looks_like_site_dir,
    parse_simple_yaml,
    read_database_config,
    read_database_password,
    read_running_version,
    reverse_name,
    site_dir_for_vhost,
    site_role,
)

from tests.unit.fixtures.apache.corpus import database_yml, debian_host, make_site_dir, rhel_host

SITE_KEYS = {
    "name",
    "aliases",
    "reverse_name",
    "site_dir",
    "ports",
    "ssl",
    "version",
    "state",
    "current_release",
    "database",
    "media_dir",
    "backup_dir",
    "health_url",
    "role",
    "hosts",
    "vhosts",
}


def sites_of(conf: Path, **kwargs) -> tuple[list[dict], list[str]]:
    warnings: list[str] = []
    config = parse_apache_config(str(conf), **kwargs)
    return build_sites(config, warnings), warnings


def write_conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "httpd.conf"
    path.write_text(text)
    return path


# -- names -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "reverse"),
    [
        ("prod.teststudio.com", "com_teststudio_prod"),
        ("staging.target.teststudio.com", "com_teststudio_target_staging"),
        ("Tracker.Studio.Example.", "example_studio_tracker"),
        ("localhost", "localhost"),
    ],
)
def test_reverse_name(name: str, reverse: str) -> None:
    assert reverse_name(name) == reverse


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("staging.teststudio.com", "staging"),
        ("prod-STAGING2.example", "staging"),
        ("prod.teststudio.com", "production"),
        ("stage.teststudio.com", "production"),
    ],
)
def test_role_is_production_unless_the_name_says_staging(name: str, role: str) -> None:
    assert site_role(name) == role


# -- what a site dir is ----------------------------------------------------------------------------------
def test_site_dir_from_document_root_or_passenger(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a", "8.0.0")
    assert looks_like_site_dir(str(site))

    def vhost(**kwargs: str) -> VirtualHost:
        return VirtualHost(file="x.conf", line=1, **kwargs)

    assert site_dir_for_vhost(vhost(document_root=f"{site}/current/public")) == str(site)
    assert site_dir_for_vhost(vhost(document_root=f"{site}/current/public/")) == str(site)
    assert site_dir_for_vhost(vhost(passenger_app_root=f"{site}/current")) == str(site)
    assert site_dir_for_vhost(vhost(passenger_app_root=str(site))) == str(site)
    # Anything else is not a site: another folder, the release itself, a plain web root.
    assert site_dir_for_vhost(vhost(document_root=f"{site}/current")) is None
    assert site_dir_for_vhost(vhost(document_root=f"{site}/releases/8.0.0/public")) is None
    assert site_dir_for_vhost(vhost(document_root="/var/www/html")) is None
    assert site_dir_for_vhost(vhost()) is None


def test_a_folder_without_shared_is_not_a_site_dir(tmp_path: Path) -> None:
    (tmp_path / "app" / "current" / "public").mkdir(parents=True)
    vhost = VirtualHost(file="x.conf", line=1, document_root=f"{tmp_path}/app/current/public")
    assert not looks_like_site_dir(str(tmp_path / "app"))
    assert site_dir_for_vhost(vhost) is None
    (tmp_path / "app" / "shared").mkdir()
    assert site_dir_for_vhost(vhost) == str(tmp_path / "app")


def test_a_dangling_current_still_marks_a_site_dir(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a", "8.0.0")
    (site / "current").unlink()
    (site / "current").symlink_to("releases/9.9.9")
    assert looks_like_site_dir(str(site))
    assert read_running_version(str(site)) == (None, str(site / "releases" / "9.9.9"))


# -- running version -------------------------------------------------------------------------------------
def test_version_from_the_version_file_of_the_current_release(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a", "8.1.2", releases=("8.0.0", "8.2.0"))
    # The VERSION file wins over the folder name.
    (site / "releases" / "8.1.2" / "VERSION").write_text("8.1.2-hotfix\nbuilt by ci\n")
    assert read_running_version(str(site)) == ("8.1.2-hotfix", str(site / "releases" / "8.1.2"))


def test_version_from_the_release_folder_name(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a", "8.1.2", version_file=False)
    assert read_running_version(str(site)) == ("8.1.2", str(site / "releases" / "8.1.2"))


def test_version_with_an_absolute_current_link(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a", "8.1.2", releases=("8.3.0",))
    (site / "current").unlink()
    (site / "current").symlink_to(site / "releases" / "8.3.0")
    assert read_running_version(str(site)) == ("8.3.0", str(site / "releases" / "8.3.0"))


def test_version_when_current_is_a_plain_folder(tmp_path: Path) -> None:
    site = tmp_path / "com_a"
    (site / "current").mkdir(parents=True)
    assert read_running_version(str(site)) == (None, str(site / "current"))
    (site / "current" / "VERSION").write_text("7.9.0\n")
    assert read_running_version(str(site)) == ("7.9.0", str(site / "current"))
    assert read_running_version(str(tmp_path / "nothing")) == (None, None)


# -- database.yml ----------------------------------------------------------------------------------------
RAILS_YML = """\
# Rails database configuration
default: &default
  adapter: postgresql
  encoding: unicode
  host: db01.teststudio.com   # the DB server
  port: 5432
  pool: 5

development:
  <<: *default
  database: shotgun_dev

production:
  <<: *default
  host: "db02.teststudio.com"
  database: 'shotgun_prod'
  username: shotgun
  password: "p#ss: 'w\\"rd"
  schema_search_path:
    - public
    - audit
"""


def test_parse_simple_yaml_with_anchors_merges_quotes_comments_and_lists() -> None:
    data = parse_simple_yaml(RAILS_YML)
    assert data["development"] == {
        "adapter": "postgresql",
        "encoding": "unicode",
        "host": "db01.teststudio.com",
        "port": "5432",
        "pool": "5",
        "database": "shotgun_dev",
    }
    production = data["production"]
    assert production["host"] == "db02.teststudio.com"  # an explicit key beats the merged one
    assert production["port"] == "5432"
    assert production["database"] == "shotgun_prod"
    assert production["password"] == "p#ss: 'w\"rd"
    assert production["schema_search_path"] == ["public", "audit"]


def test_yaml_merge_never_overrides_an_explicit_key_whatever_the_order() -> None:
    data = parse_simple_yaml("base: &base\n  host: merged\n  port: 1\nproduction:\n  host: explicit\n  <<: *base\n")
    assert data["production"] == {"host": "explicit", "port": "1"}


def test_parse_simple_yaml_rejects_what_it_does_not_understand() -> None:
    with pytest.raises(DatabaseConfigError):
        parse_simple_yaml("production:\n  just some words\n")
    with pytest.raises(DatabaseConfigError):
        parse_simple_yaml("production:\n\thost: x\n")


def test_read_database_config_and_password(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a", database_yml=RAILS_YML)
    assert read_database_config(str(site)) == {
        "host": "db02.teststudio.com",
        "port": 5432,
        "name": "shotgun_prod",
        "user": "shotgun",
    }
    assert read_database_config(str(site), "development")["name"] == "shotgun_dev"
    assert read_database_password(str(site)) == "p#ss: 'w\"rd"


def test_database_from_a_url_and_erb_that_cannot_be_evaluated(tmp_path: Path) -> None:
    site = make_site_dir(
        tmp_path / "com_a",
        database_yml="production:\n"
        "  url: postgres://sg%40prod:p%2Fw@db03.example:6543/shotgun\n"
        "  password: <%= ENV['SHOTGUN_DB_PASSWORD'] %>\n"
        "<% if false %>\n"
        "  pool: 1\n"
        "<% end %>\n",
    )
    assert read_database_config(str(site)) == {
        "host": "db03.example",
        "port": 6543,
        "name": "shotgun",
        "user": "sg@prod",
    }
    # ERB is not evaluated, so the password falls back to the URL's.
    assert read_database_password(str(site)) == "p/w"


def test_no_database_yml(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_a")
    assert read_database_config(str(site)) == {"host": None, "port": None, "name": None, "user": None}
    assert read_database_password(str(site)) is None


# -- sites from the corpus -------------------------------------------------------------------------------
def test_rhel_sites(tmp_path: Path) -> None:
    sites, warnings = sites_of(rhel_host(tmp_path))
    rails = tmp_path / "var" / "rails"
    assert warnings == []
    assert [s["name"] for s in sites] == ["prod.teststudio.com", "staging.teststudio.com"]
    prod, staging = sites
    assert set(prod) == SITE_KEYS
    assert prod == {
        "name": "prod.teststudio.com",
        "aliases": ["shotgun.teststudio.com"],
        "reverse_name": "com_teststudio_prod",
        "site_dir": str(rails / "com_teststudio_prod"),
        "ports": [80, 443],
        "ssl": True,
        "version": "8.1.2",
        "state": "ok",
        "current_release": str(rails / "com_teststudio_prod" / "releases" / "8.1.2"),
        "database": {"host": "db01.teststudio.com", "port": 5432, "name": "shotgun_prod", "user": "shotgun"},
        "media_dir": str(rails / "com_teststudio_prod" / "media"),
        "health_url": "https://127.0.0.1/status",
        "backup_dir": str(rails / "com_teststudio_prod" / "db_backup"),
        "role": "production",
        "hosts": {"db": ["db01.teststudio.com"]},
        "vhosts": [
            {
                "file": str(tmp_path / "etc/httpd/conf.d/com_teststudio_prod.conf"),
                "line": 11,
                "ports": [443],
                "ssl": True,
                "redirect_only": False,
            },
            {
                "file": str(tmp_path / "etc/httpd/conf.d/com_teststudio_prod.conf"),
                "line": 3,
                "ports": [80],
                "ssl": False,
                "redirect_only": True,
            },
        ],
    }
    assert staging["role"] == "staging"
    assert staging["ports"] == [80, 443, 8443]
    assert staging["aliases"] == ["staging-a.teststudio.com", "staging-b.teststudio.com"]
    assert staging["version"] == "8.2.0"  # no VERSION file: the release folder's name
    assert staging["database"] == {"host": "localhost", "port": 5433, "name": "shotgun_staging", "user": "shotgun"}
    assert staging["hosts"] == {"db": ["localhost"]}  # a local database: this App server
    assert [v["redirect_only"] for v in staging["vhosts"]] == [False, True]


def test_rhel_sites_with_the_dr_define(tmp_path: Path) -> None:
    sites, _ = sites_of(rhel_host(tmp_path), defines=["DR_SITE"])
    assert [s["reverse_name"] for s in sites] == ["com_teststudio_prod", "com_teststudio_staging", "com_teststudio_dr"]


def test_the_password_is_never_in_a_site(tmp_path: Path) -> None:
    conf = rhel_host(tmp_path)
    sites, _ = sites_of(conf)
    assert "s3cret" not in json.dumps(sites)
    assert all("password" not in site["database"] for site in sites)
    assert read_database_password(sites[0]["site_dir"]) == "s3cret"


def test_debian_sites(tmp_path: Path) -> None:
    conf = debian_host(tmp_path)
    sites, warnings = sites_of(conf, env=read_envvars(str(conf.parent)))
    shotgun = tmp_path / "srv" / "shotgun"
    assert warnings == []
    assert [s["name"] for s in sites] == ["tracker.studio.example", "staging.studio.example"]
    tracker, staging = sites
    # The SSL vhost, its certbot-style twin (same name) and the old name redirecting to it: one site.
    assert tracker["aliases"] == ["tracker", "shotgun.studio.example"]
    assert tracker["ports"] == [80, 443]
    assert tracker["ssl"] is True
    assert [(v["line"], v["redirect_only"]) for v in tracker["vhosts"]] == [(2, False), (18, True), (26, True)]
    assert tracker["site_dir"] == str(shotgun / "com_studio_prod")
    assert tracker["reverse_name"] == "example_studio_tracker"
    assert tracker["version"] == "9.0.1"
    assert tracker["database"] == {"host": "pg.studio.example", "port": 6432, "name": "tracker", "user": "shotgun"}
    assert tracker["hosts"] == {"db": ["pg.studio.example"]}
    assert tracker["role"] == "production"
    # Passenger pointed at the site dir itself.
    assert staging["site_dir"] == str(shotgun / "com_studio_staging")
    assert staging["ssl"] is False and staging["ports"] == [80]
    assert staging["role"] == "staging"


def test_same_site_dir_twice_is_one_site(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "rails" / "com_x", database_yml=database_yml("x"))
    (tmp_path / "link").symlink_to(tmp_path / "rails")
    conf = write_conf(
        tmp_path,
        "<VirtualHost *:80>\nServerName www.x.example\n"
        f"DocumentRoot {tmp_path}/link/com_x/current/public\n</VirtualHost>\n"
        "<VirtualHost *:443>\nServerName x.example\nSSLEngine on\n"
        f"DocumentRoot {site}/current/public\n</VirtualHost>\n",
    )
    sites, _ = sites_of(conf)
    assert len(sites) == 1
    # The SSL vhost names the site even though the plain one came first.
    assert sites[0]["name"] == "x.example" and sites[0]["aliases"] == ["www.x.example"]
    assert sites[0]["ports"] == [80, 443]
    assert sites[0]["site_dir"] == f"{tmp_path}/link/com_x"  # as the configuration first spelled it


def test_unrelated_or_non_redirect_vhosts_are_not_merged(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_x", database_yml=database_yml("x"))
    (tmp_path / "www").mkdir()
    conf = write_conf(
        tmp_path,
        f"<VirtualHost *:443>\nServerName x.example\nSSLEngine on\nDocumentRoot {site}/current/public\n</VirtualHost>\n"
        f"<VirtualHost *:80>\nServerName x.example\nDocumentRoot {tmp_path}/www\n</VirtualHost>\n"
        "<VirtualHost *:80>\nServerName y.example\nRedirect / https://z.example/\n</VirtualHost>\n",
    )
    sites, _ = sites_of(conf)
    assert len(sites) == 1
    assert sites[0]["ports"] == [443] and len(sites[0]["vhosts"]) == 1


def test_vhost_without_server_name_uses_the_main_one_else_is_skipped(tmp_path: Path) -> None:
    site = make_site_dir(tmp_path / "com_x", database_yml=database_yml("x"))
    body = f"<VirtualHost *:80>\nDocumentRoot {site}/current/public\n</VirtualHost>\n"
    sites, _ = sites_of(write_conf(tmp_path, "ServerName main.example:80\n" + body))
    assert [s["name"] for s in sites] == ["main.example"]
    sites, warnings = sites_of(write_conf(tmp_path, body))
    assert sites == []
    assert warnings == [f"{tmp_path}/httpd.conf:1: vhost for {site} has no ServerName; skipped"]


def test_database_problems_are_warnings_not_failures(tmp_path: Path) -> None:
    good = make_site_dir(tmp_path / "com_good", database_yml=database_yml("good"))
    bad = make_site_dir(tmp_path / "com_bad", database_yml="production:\n  what is this\n")
    none = make_site_dir(tmp_path / "com_none")
    conf = write_conf(
        tmp_path,
        "".join(
            f"<VirtualHost *:80>\nServerName {name}.example\nDocumentRoot {path}/current/public\n</VirtualHost>\n"
            for name, path in (("good", good), ("bad", bad), ("none", none))
        ),
    )
    sites, warnings = sites_of(conf)
    assert [s["database"]["name"] for s in sites] == ["good", None, None]
    assert sites[1]["hosts"] == {"db": ["localhost"]}
    assert len(warnings) == 3
    assert warnings[0].startswith(f"site bad.example: {bad}/shared/config/database.yml: cannot understand line")
    assert warnings[2] == f"site none.example: no production database in {none}/shared/config/database.yml"


def test_find_site(tmp_path: Path) -> None:
    sites, _ = sites_of(rhel_host(tmp_path))
    assert find_site(sites, "prod.teststudio.com")["reverse_name"] == "com_teststudio_prod"
    assert find_site(sites, "COM_TESTSTUDIO_STAGING")["name"] == "staging.teststudio.com"
    assert find_site(sites, "shotgun.teststudio.com")["name"] == "prod.teststudio.com"  # an alias
    assert find_site(sites, "nope.teststudio.com") is None
    # A site's own name wins over another site's alias.
    other = dict(sites[1], name="other.example", reverse_name="example_other", aliases=["prod.teststudio.com"])
    assert find_site([other, sites[0]], "prod.teststudio.com") is sites[0]


def test_health_url_prefers_plain_http_on_the_vhost_address() -> None:
    from ansible_collections.fpt.sec.plugins.module_utils.apache_config import Address, VirtualHost
    from ansible_collections.fpt.sec.plugins.module_utils.site_model import health_url

    plain = VirtualHost(file="a.conf", line=1, addresses=[Address("127.0.0.1", 8080)])
    secure = VirtualHost(file="a.conf", line=9, addresses=[Address("*", 443)], ssl=True)
    assert health_url([secure, plain]) == "http://127.0.0.1:8080/status"
    assert health_url([secure]) == "https://127.0.0.1/status"
    assert health_url([VirtualHost(file="b", line=1, addresses=[Address("*", None)])]) == "http://127.0.0.1/status"
    assert health_url([]) is None
