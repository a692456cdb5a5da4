"""The Apache configuration reader (module_utils/apache_config.py), on a RHEL and a Debian corpus."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import apache_config
from ansible_collections.fpt.sec.plugins.module_utils.apache_config import (
    ApacheConfigError,
    module_id,
    parse_apache_config,
    split_args,
)
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import read_envvars

from tests.unit.fixtures.apache.corpus import DEBIAN_MODS, debian_host, install, rhel_host

MODULE_UTILS = Path(apache_config.__file__).resolve().parent
OURS = ("apache_config.py", "apache_locate.py", "site_model.py", "discovery.py")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def by_name(config: apache_config.ApacheConfig) -> dict[str, list[apache_config.VirtualHost]]:
    out: dict[str, list[apache_config.VirtualHost]] = {}
    for vhost in config.vhosts:
        out.setdefault(vhost.server_name or "", []).append(vhost)
    return out


# -- words and lines -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("DocumentRoot /var/www/html", ["DocumentRoot", "/var/www/html"]),
        ('DocumentRoot "/srv/my site/public"', ["DocumentRoot", "/srv/my site/public"]),
        ("ServerAlias  a.example   'b c.example'\t d", ["ServerAlias", "a.example", "b c.example", "d"]),
        (r'LogFormat "%h \"%r\" %>s" common', ["LogFormat", '%h "%r" %>s', "common"]),
        (r"Path C:\\dir\x", ["Path", "C:\\dir\\x"]),
        ('Header "unclosed quote runs on', ["Header", "unclosed quote runs on"]),
        ("", []),
    ],
)
def test_split_args_follows_httpd_quoting(text: str, words: list[str]) -> None:
    assert split_args(text) == words


@pytest.mark.parametrize(
    ("name", "ident"),
    [
        ("mod_ssl.c", "ssl_module"),
        ("ssl_module", "ssl_module"),
        ("http_core.c", "http_module"),
        ("core.c", "core_module"),
    ],
)
def test_module_id(name: str, ident: str) -> None:
    assert module_id(name) == ident


def test_continuation_joins_lines_and_a_commented_line_swallows_its_continuation(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        "# a comment that goes on \\\n"
        "<VirtualHost *:80>\n"  # swallowed by the comment, exactly as httpd does
        "<VirtualHost *:80 \\\n"
        "   *:8080>\n"
        "  ServerName one.example\\\n"
        ".com\n"
        "  ServerAlias a.example \\ \n"  # a space after the backslash: not a continuation
        "</VirtualHost>\n",
    )
    config = parse_apache_config(str(conf))
    [vhost] = config.vhosts
    assert vhost.line == 3
    assert vhost.ports == [80, 8080]
    assert vhost.server_name == "one.example.com"
    assert vhost.server_aliases == ["a.example", "\\"]


def test_crlf_line_endings(tmp_path: Path) -> None:
    conf = write(tmp_path / "httpd.conf", "<VirtualHost *:80>\r\n  ServerName crlf.example\r\n</VirtualHost>\r\n")
    assert parse_apache_config(str(conf)).vhosts[0].server_name == "crlf.example"


# -- the RHEL corpus -------------------------------------------------------------------------------------
def test_rhel_corpus(tmp_path: Path) -> None:
    conf = rhel_host(tmp_path)
    config = parse_apache_config(str(conf))
    httpd = tmp_path / "etc" / "httpd"
    rails = tmp_path / "var" / "rails"

    assert config.server_root == str(httpd)
    assert config.server_name == "app01.teststudio.com"  # ":80" dropped
    assert config.listen == [
        {"address": None, "port": 80, "protocol": None},
        {"address": None, "port": 443, "protocol": "https"},
    ]
    assert {"ssl_module", "passenger_module", "rewrite_module", "mpm_event_module"} <= config.modules
    assert config.warnings == []
    # conf.d/*.conf only, in order: the .disabled file is not read.
    assert [os.path.relpath(f, httpd) for f in config.files] == [
        "conf/httpd.conf",
        "conf.modules.d/00-base.conf",
        "conf.modules.d/00-mpm.conf",
        "conf.modules.d/00-ssl.conf",
        "conf.modules.d/10-passenger.conf",
        "conf.d/com_teststudio_prod.conf",
        "conf.d/com_teststudio_staging.conf",
        "conf.d/ssl.conf",
        "conf.d/welcome.conf",
        "conf.d/zz_legacy.conf",
    ]

    summary = [(os.path.basename(v.file), v.line, v.server_name, v.ports, v.ssl) for v in config.vhosts]
    assert summary == [
        ("com_teststudio_prod.conf", 3, "prod.teststudio.com", [80], False),
        ("com_teststudio_prod.conf", 11, "prod.teststudio.com", [443], True),
        ("com_teststudio_staging.conf", 2, "staging.teststudio.com", [443, 8443], True),
        ("com_teststudio_staging.conf", 14, "staging.teststudio.com", [80], False),
        ("ssl.conf", 16, None, [443], True),
    ]
    prod_http, prod_ssl, staging, staging_http, default_ssl = config.vhosts
    assert prod_http.redirects == ["https://%{HTTP_HOST}$1"] and prod_http.redirects_to_https
    assert prod_http.document_root is None
    assert prod_ssl.document_root == str(rails / "com_teststudio_prod" / "current" / "public")
    assert prod_ssl.server_aliases == ["shotgun.teststudio.com"]
    # The maintenance rule ("RewriteRule ^ - [R=503]") is not a redirect to anywhere.
    assert prod_ssl.redirects == []
    assert staging.server_aliases == ["staging-a.teststudio.com", "staging-b.teststudio.com"]
    assert staging.passenger_app_root == str(rails / "com_teststudio_staging" / "current")
    assert [(a.host, a.port) for a in staging.addresses] == [("*", 443), ("*", 8443)]
    assert staging_http.redirects == ["https://staging.teststudio.com/"]
    assert default_ssl.addresses[0].host == "_default_"
    # Commented out, behind <IfModule !ssl_module>, behind <IfDefine DR_SITE>: not there.
    assert not {"legacy.teststudio.com", "clear.teststudio.com", "dr.teststudio.com", "old.teststudio.com"} & set(
        by_name(config)
    )


def test_rhel_corpus_with_a_define_from_the_command_line(tmp_path: Path) -> None:
    config = parse_apache_config(str(rhel_host(tmp_path)), defines=["DR_SITE"])
    [dr] = by_name(config)["dr.teststudio.com"]
    assert dr.line == 21 and dr.ssl
    assert dr.document_root == str(tmp_path / "var/rails/com_teststudio_dr/current/public")


def test_relative_config_file_is_relative_to_server_root(tmp_path: Path) -> None:
    rhel_host(tmp_path)
    config = parse_apache_config("conf/httpd.conf", server_root=str(tmp_path / "etc" / "httpd"))
    assert config.config_file == str(tmp_path / "etc/httpd/conf/httpd.conf")
    assert len(config.vhosts) == 5


# -- the Debian corpus -----------------------------------------------------------------------------------
def test_debian_corpus(tmp_path: Path) -> None:
    conf = debian_host(tmp_path)
    apache_dir = tmp_path / "etc" / "apache2"
    shotgun = tmp_path / "srv" / "shotgun"
    config = parse_apache_config(str(conf), env=read_envvars(str(apache_dir)))

    assert config.server_root == str(apache_dir)  # no ServerRoot directive: the config's folder
    assert config.defines["SHOTGUN_ROOT"] == str(shotgun)
    assert config.pid_file == str(tmp_path / "var/run/apache2/apache2.pid")  # ${APACHE_PID_FILE} from envvars
    assert config.warnings == []
    assert [entry["port"] for entry in config.listen] == [80, 443]
    # Files as httpd names them: through the sites-enabled symlinks; default-ssl and dev are not enabled.
    read = [os.path.relpath(f, apache_dir) for f in config.files]
    assert "sites-enabled/com_studio_prod.conf" in read and "sites-enabled/com_studio_staging.conf" in read
    assert not any("default-ssl" in f or "com_studio_dev" in f or f.startswith("sites-available") for f in read)

    summary = [(os.path.relpath(v.file, apache_dir), v.line, v.server_name, v.ports, v.ssl) for v in config.vhosts]
    assert summary == [
        ("sites-enabled/000-default.conf", 1, None, [80], False),
        ("sites-enabled/com_studio_prod.conf", 2, "tracker.studio.example", [443], True),
        ("sites-enabled/com_studio_prod.conf", 18, "tracker.studio.example", [80], False),
        ("sites-enabled/com_studio_prod.conf", 26, "shotgun.studio.example", [80], False),
        ("sites-enabled/com_studio_staging.conf", 2, "staging.studio.example", [80], False),
    ]
    _default, tracker, twin, old_name, staging = config.vhosts
    assert [(a.host, a.port) for a in tracker.addresses] == [("10.0.0.5", 443), ("[2001:db8::5]", 443)]
    # The quoted, Define'd DocumentRoot.
    assert tracker.document_root == str(shotgun / "com_studio_prod" / "current" / "public")
    # A Redirect inside <Location> does not make the vhost a redirect.
    assert tracker.redirects == []
    assert twin.redirects == ["https://%{SERVER_NAME}%{REQUEST_URI}"]
    assert old_name.redirects == ["https://tracker.studio.example/$1"]
    # PassengerAppRoot inside <IfModule mod_passenger.c> counts, since passenger.load is enabled.
    assert staging.passenger_app_root == str(shotgun / "com_studio_staging")
    assert staging.document_root is None


def test_debian_without_ssl_or_passenger_enabled(tmp_path: Path) -> None:
    mods = tuple(m for m in DEBIAN_MODS if not m.startswith(("ssl", "passenger")))
    conf = debian_host(tmp_path, mods=mods)
    config = parse_apache_config(str(conf), env=read_envvars(str(conf.parent)))
    names = by_name(config)
    # The SSL vhost sits in <IfModule mod_ssl.c>; ports.conf's "Listen 443" in <IfModule ssl_module>.
    assert [v.ports for v in names["tracker.studio.example"]] == [[80]]
    assert [entry["port"] for entry in config.listen] == [80]
    assert names["staging.studio.example"][0].passenger_app_root is None


def test_undefined_variable_stays_literal_with_a_warning(tmp_path: Path) -> None:
    conf = debian_host(tmp_path)
    config = parse_apache_config(str(conf))  # no envvars: ${APACHE_...} are unknown
    assert config.pid_file == "${APACHE_PID_FILE}"
    assert f"{conf}:16: variable ${{APACHE_PID_FILE}} is not defined" in config.warnings
    # Defines still resolve.
    assert by_name(config)["tracker.studio.example"][0].document_root.startswith(str(tmp_path / "srv"))


@pytest.mark.skipif(not (shutil.which("apache2") or shutil.which("httpd")), reason="no httpd binary here")
def test_debian_corpus_matches_httpd_itself(tmp_path: Path) -> None:
    """httpd -S on the same files must list the same vhosts at the same file:line, ports and names."""
    binary = shutil.which("apache2") or shutil.which("httpd")
    modules_dir = Path("/usr/lib/apache2/modules")
    mods = tuple(m for m in DEBIAN_MODS if not m.startswith("passenger"))  # not installed on test machines
    needed = [modules_dir / f"mod_{m[:-5]}.so" for m in mods if m.endswith(".load")]
    if not all(p.exists() for p in needed):
        pytest.skip("the Debian module files are not installed")
    conf = debian_host(tmp_path, mods=mods)
    env = read_envvars(str(conf.parent))
    for key in ("APACHE_RUN_DIR", "APACHE_LOG_DIR", "APACHE_LOCK_DIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [binary, "-d", str(conf.parent), "-f", str(conf), "-S"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    theirs: dict[tuple[str, int], set[int]] = {}
    names: dict[tuple[str, int], str] = {}
    for line in proc.stdout.splitlines():
        match = re.search(r"(?:port (\d+) namevhost|:(\d+)\s+)\s*(\S+) \((.+):(\d+)\)$", line)
        if match:
            key = (match.group(4), int(match.group(5)))
            theirs.setdefault(key, set()).add(int(match.group(1) or match.group(2)))
            names[key] = match.group(3)
    pid = re.search(r'^PidFile: "(.+)"$', proc.stdout, re.M)

    config = parse_apache_config(str(conf), server_root=str(conf.parent), env=env)
    ours = {(v.file, v.line): set(v.ports) for v in config.vhosts}
    assert ours == theirs
    for vhost in config.vhosts:
        if vhost.server_name:
            assert names[(vhost.file, vhost.line)] == vhost.server_name
    assert pid and config.pid_file == pid.group(1)


# -- Include / IncludeOptional ---------------------------------------------------------------------------
def test_include_resolves_against_server_root_not_the_including_file(tmp_path: Path) -> None:
    root = tmp_path / "srv" / "web"
    write(root / "vhosts" / "a.conf", "<VirtualHost *:80>\nServerName a.example\n</VirtualHost>\n")
    conf = write(tmp_path / "elsewhere" / "main.conf", f'ServerRoot "{root}"\nInclude vhosts/a.conf\n')
    assert [v.server_name for v in parse_apache_config(str(conf)).vhosts] == ["a.example"]


def test_include_of_a_folder_reads_it_recursively_in_order(tmp_path: Path) -> None:
    for rel, name in (("b.conf", "b"), ("a/z.conf", "az"), ("a/y.txt", "ay"), ("c", "c")):
        write(tmp_path / "inc" / rel, f"<VirtualHost *:80>\nServerName {name}\n</VirtualHost>\n")
    conf = write(tmp_path / "httpd.conf", "Include inc\n")
    assert [v.server_name for v in parse_apache_config(str(conf)).vhosts] == ["ay", "az", "b", "c"]


def test_include_wildcards_in_folder_and_file_parts_skip_dot_files(tmp_path: Path) -> None:
    for rel in (
        "sites/one/vhost.conf",
        "sites/two/vhost.conf",
        "sites/two/.vhost.conf.swp",
        "sites/.hidden/vhost.conf",
    ):
        name = rel.split("/")[1]
        write(tmp_path / rel, f"<VirtualHost *:80>\nServerName {name}\n</VirtualHost>\n")
    write(tmp_path / "sites" / "two" / ".x.conf", "<VirtualHost *:80>\nServerName dotfile\n</VirtualHost>\n")
    conf = write(tmp_path / "httpd.conf", "Include sites/*/*.conf\n")
    assert [v.server_name for v in parse_apache_config(str(conf)).vhosts] == ["one", "two"]


def test_missing_include_is_an_error_naming_the_including_line(tmp_path: Path) -> None:
    conf = write(tmp_path / "httpd.conf", "Listen 80\n\nInclude conf/extra.conf\n")
    with pytest.raises(ApacheConfigError) as caught:
        parse_apache_config(str(conf))
    assert caught.value.path == str(conf) and caught.value.line == 3
    assert str(caught.value).startswith(f"{conf}:3: cannot read {tmp_path}/conf/extra.conf")


def test_include_wildcard_matching_nothing_is_an_error(tmp_path: Path) -> None:
    conf = write(tmp_path / "httpd.conf", "Include conf.d/*.conf\n")
    with pytest.raises(ApacheConfigError, match=r":1: Include conf.d/\*.conf: no file matches"):
        parse_apache_config(str(conf))


def test_include_optional_tolerates_missing_files_and_empty_wildcards(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        "IncludeOptional conf.d/*.conf\nIncludeOptional nothere.conf\nIncludeOptional missing/*/x.conf\n"
        "<VirtualHost *:80>\nServerName still.example\n</VirtualHost>\n",
    )
    assert [v.server_name for v in parse_apache_config(str(conf)).vhosts] == ["still.example"]


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "b.conf", "Include a.conf\n")
    conf = write(tmp_path / "a.conf", "Include b.conf\n")
    with pytest.raises(ApacheConfigError, match=r"b\.conf:1: Include loop"):
        parse_apache_config(str(conf))


def test_include_inside_a_vhost_adds_to_that_vhost(tmp_path: Path) -> None:
    write(tmp_path / "site-root.conf", "DocumentRoot /srv/x/current/public\n")
    conf = write(tmp_path / "httpd.conf", "<VirtualHost *:80>\nServerName x\nInclude site-root.conf\n</VirtualHost>\n")
    assert parse_apache_config(str(conf)).vhosts[0].document_root == "/srv/x/current/public"


# -- errors ----------------------------------------------------------------------------------------------
def test_broken_corpus_names_the_file_and_line_of_the_unclosed_vhost(tmp_path: Path) -> None:
    install("broken", tmp_path)
    with pytest.raises(ApacheConfigError) as caught:
        parse_apache_config(str(tmp_path / "etc/httpd/conf/httpd.conf"))
    error = caught.value
    assert error.path == str(tmp_path / "etc/httpd/conf.d/b_hand_edited.conf")
    assert error.line == 2
    assert str(error) == f"{error.path}:2: <VirtualHost> was not closed"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("<VirtualHost *:80>\n<Directory /x>\n</VirtualHost>\n", 3, "Expected </Directory> but saw </VirtualHost>"),
        ("Listen 80\n</VirtualHost>\n", 2, "</VirtualHost> without matching <VirtualHost> section"),
        ("<VirtualHost *:80\nServerName x\n</VirtualHost>\n", 1, "<VirtualHost> directive missing closing '>'"),
        ("<VirtualHost *:80>\n<VirtualHost *:81>\n</VirtualHost>\n</VirtualHost>\n", 2, "cannot occur within"),
        ("<VirtualHost>\n</VirtualHost>\n", 1, "needs at least one address"),
        ("<IfDefine NOPE>\n<VirtualHost *:80>\n</IfDefine>\n", 3, "Expected </VirtualHost> but saw </IfDefine>"),
        ("\n<IfDefine NOPE>\n<VirtualHost *:80>\n</VirtualHost>\n", 2, "<IfDefine> was not closed"),
        ("Use Missing a b\n", 1, "undefined macro Missing"),
    ],
)
def test_structural_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    conf = write(tmp_path / "httpd.conf", text)
    with pytest.raises(ApacheConfigError) as caught:
        parse_apache_config(str(conf))
    assert (caught.value.path, caught.value.line) == (str(conf), line)
    assert message in str(caught.value)


def test_a_section_cannot_close_in_another_file(tmp_path: Path) -> None:
    write(tmp_path / "closer.conf", "</VirtualHost>\n")
    conf = write(tmp_path / "httpd.conf", "<VirtualHost *:80>\nInclude closer.conf\n</VirtualHost>\n")
    with pytest.raises(ApacheConfigError, match=r"closer\.conf:1: </VirtualHost> without matching"):
        parse_apache_config(str(conf))


def test_unreadable_included_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "conf.d" / "secret.conf", "Listen 81\n")
    conf = write(tmp_path / "httpd.conf", "Listen 80\nInclude conf.d/secret.conf\n")
    real = apache_config._read_text

    def deny(path: str) -> str:
        if path.endswith("secret.conf"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(apache_config, "_read_text", deny)
    with pytest.raises(ApacheConfigError) as caught:
        parse_apache_config(str(conf))
    assert str(caught.value) == f"{conf}:2: cannot read {tmp_path}/conf.d/secret.conf: Permission denied"


def test_missing_main_config(tmp_path: Path) -> None:
    with pytest.raises(ApacheConfigError) as caught:
        parse_apache_config(str(tmp_path / "nope.conf"))
    assert str(caught.value) == f"{tmp_path}/nope.conf: cannot read the configuration: No such file or directory"


# -- conditionals, variables, macros ---------------------------------------------------------------------
def test_conditionals(tmp_path: Path) -> None:
    write(tmp_path / "exists.txt", "")
    conf = write(
        tmp_path / "httpd.conf",
        "LoadModule rewrite_module modules/mod_rewrite.so\n"
        "Define WITH_A\n"
        "<IfDefine WITH_A>\n<VirtualHost *:1>\nServerName a\n</VirtualHost>\n</IfDefine>\n"
        "<IfDefine !WITH_A>\n<VirtualHost *:2>\nServerName not-a\n</VirtualHost>\n</IfDefine>\n"
        "<IfDefine FROM_CLI>\n<VirtualHost *:3>\nServerName cli\n</VirtualHost>\n</IfDefine>\n"
        "<IfModule mod_rewrite.c>\n<VirtualHost *:4>\nServerName rewrite\n</VirtualHost>\n</IfModule>\n"
        "<IfModule !rewrite_module>\n<VirtualHost *:5>\nServerName no-rewrite\n</VirtualHost>\n</IfModule>\n"
        "<IfModule log_config_module>\n<VirtualHost *:6>\nServerName builtin\n</VirtualHost>\n</IfModule>\n"
        "<IfModule mod_security2.c>\n<VirtualHost *:7>\nServerName unloaded\n</VirtualHost>\n</IfModule>\n"
        "<IfFile exists.txt>\n<VirtualHost *:8>\nServerName file\n</VirtualHost>\n</IfFile>\n"
        "<IfFile !exists.txt>\n<VirtualHost *:9>\nServerName no-file\n</VirtualHost>\n</IfFile>\n"
        "<IfVersion >= 2.4>\n<VirtualHost *:10>\nServerName version\n</VirtualHost>\n</IfVersion>\n"
        "UnDefine WITH_A\n"
        "<IfDefine WITH_A>\n<VirtualHost *:11>\nServerName undefined-again\n</VirtualHost>\n</IfDefine>\n",
    )
    binary = {"version": "2.4.62", "compiled_modules": ["core.c", "mod_so.c", "mod_log_config.c"]}
    names = [v.server_name for v in parse_apache_config(str(conf), defines=["FROM_CLI"], **binary).vhosts]
    assert names == ["a", "cli", "rewrite", "builtin", "file", "version"]
    assert "cli" not in [v.server_name for v in parse_apache_config(str(conf), **binary).vhosts]
    # Without a binary: nothing compiled in beyond core/http/so, and no version to test against.
    without = parse_apache_config(str(conf), defines=["FROM_CLI"])
    assert [v.server_name for v in without.vhosts] == ["a", "cli", "rewrite", "file"]
    assert any("<IfVersion >= 2.4> not evaluated: no httpd/apache2 binary" in w for w in without.warnings)
    reasons = {s.server_name: s.reason for s in without.skipped_vhosts}
    assert reasons["builtin"] == (
        f"inside <IfModule log_config_module> at {conf}:28, false: log_config_module is not loaded"
    )
    assert reasons["version"].endswith("not evaluated: no httpd/apache2 binary to read the version from")
    assert reasons["undefined-again"].endswith("false: WITH_A is not defined")
    assert reasons["no-file"].endswith(f"false: {tmp_path}/exists.txt exists")


def test_false_branch_is_skipped_unread(tmp_path: Path) -> None:
    conf = write(tmp_path / "httpd.conf", "<IfDefine NOPE>\nInclude /does/not/exist.conf\n${UNSET}\n</IfDefine>\n")
    config = parse_apache_config(str(conf))
    assert config.files == [str(conf)] and config.warnings == []


def test_variables_defines_before_environment(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        'Define ROOT "/srv/sites"\n'
        "<VirtualHost ${ADDR}:80>\n"
        "ServerName ${NAME}\n"
        "DocumentRoot ${ROOT}/com_a/current/public\n"
        "</VirtualHost>\n",
    )
    config = parse_apache_config(str(conf), env={"ADDR": "10.1.1.1", "NAME": "a.example", "ROOT": "/env/loses"})
    [vhost] = config.vhosts
    assert vhost.addresses[0].host == "10.1.1.1"
    assert vhost.server_name == "a.example"
    assert vhost.document_root == "/srv/sites/com_a/current/public"


def test_macro_use_expands_one_vhost_per_use(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        "<Macro Site $name $dir>\n"
        "<VirtualHost *:443>\n"
        "  ServerName $name\n"
        "  DocumentRoot $dir/current/public\n"
        "  SSLEngine on\n"
        "</VirtualHost>\n"
        "</Macro>\n"
        "Use Site a.example /srv/a\n"
        "Use Site b.example /srv/b\n"
        "UndefMacro Site\n",
    )
    vhosts = parse_apache_config(str(conf)).vhosts
    assert [(v.server_name, v.document_root, v.line, v.ssl) for v in vhosts] == [
        ("a.example", "/srv/a/current/public", 8, True),
        ("b.example", "/srv/b/current/public", 9, True),
    ]


def test_command_line_directives(tmp_path: Path) -> None:
    write(tmp_path / "extra.conf", "<VirtualHost *:80>\nServerName extra\n</VirtualHost>\n")
    conf = write(
        tmp_path / "httpd.conf", "<IfDefine EARLY>\n<VirtualHost *:81>\nServerName early\n</VirtualHost>\n</IfDefine>\n"
    )
    config = parse_apache_config(
        str(conf), pre_directives=["Define EARLY"], post_directives=[f"Include {tmp_path}/extra.conf"]
    )
    assert [v.server_name for v in config.vhosts] == ["early", "extra"]


# -- vhost details ---------------------------------------------------------------------------------------
def test_server_name_forms_and_addresses(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        "<VirtualHost [::1]:8443 127.0.0.1 *:* host.example:80>\n"
        "ServerName https://Tracker.Example.COM:8443\n"
        "ServerAlias One.example\n"
        "ServerAlias two.example one.example\n"
        "SSLEngine optional\n"
        "</VirtualHost>\n",
    )
    [vhost] = parse_apache_config(str(conf)).vhosts
    assert [(a.host, a.port) for a in vhost.addresses] == [
        ("[::1]", 8443),
        ("127.0.0.1", None),
        ("*", None),
        ("host.example", 80),
    ]
    assert vhost.server_name == "tracker.example.com"
    assert vhost.server_aliases == ["one.example", "two.example"]
    assert vhost.ssl is False  # only "on" serves TLS on its own


@pytest.mark.parametrize(
    ("directive", "redirects"),
    [
        ("Redirect / https://x.example/", ["https://x.example/"]),
        ("Redirect 301 / https://x.example/", ["https://x.example/"]),
        ("RedirectPermanent / https://x.example/", ["https://x.example/"]),
        ("Redirect /old https://x.example/new", []),
        ("RedirectMatch ^/(.*)$ https://x.example/$1", ["https://x.example/$1"]),
        ("RedirectMatch permanent ^/old/(.*) https://x.example/$1", []),
        ("RewriteRule ^/?(.*) https://%{SERVER_NAME}/$1 [R,L]", ["https://%{SERVER_NAME}/$1"]),
        ("RewriteRule ^/(.*)$ http://127.0.0.1:8000/$1 [P,L]", []),
        ("RewriteRule ^/api/(.*) https://api.example/$1 [R,L]", []),
        ("RewriteRule !^/health https://x.example/ [R,L]", []),
        ("RewriteRule ^ - [R=503,L]", []),
        ("<Location />\nRedirect / https://inner.example/\n</Location>", []),
    ],
)
def test_whole_site_redirects(tmp_path: Path, directive: str, redirects: list[str]) -> None:
    conf = write(tmp_path / "httpd.conf", f"<VirtualHost *:80>\nServerName x\n{directive}\n</VirtualHost>\n")
    assert parse_apache_config(str(conf)).vhosts[0].redirects == redirects


def test_passenger_app_root_in_a_location_is_a_fallback(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        "<VirtualHost *:80>\n<Location /app>\nPassengerAppRoot /srv/inner\n</Location>\n</VirtualHost>\n"
        "<VirtualHost *:81>\n<Location /app>\nPassengerAppRoot /srv/inner\n</Location>\n"
        "PassengerAppRoot /srv/outer\n</VirtualHost>\n",
    )
    assert [v.passenger_app_root for v in parse_apache_config(str(conf)).vhosts] == ["/srv/inner", "/srv/outer"]


def test_main_server_directives_inside_a_vhost_do_not_leak(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "httpd.conf",
        "ServerName main.example\nPidFile run/httpd.pid\n"
        "<VirtualHost *:80>\nServerName v.example\nDocumentRoot htdocs\n</VirtualHost>\n",
    )
    config = parse_apache_config(str(conf))
    assert config.server_name == "main.example"
    assert config.pid_file == str(tmp_path / "run" / "httpd.pid")
    assert config.vhosts[0].document_root == str(tmp_path / "htdocs")  # relative: against ServerRoot


def test_to_dict_is_plain_data(tmp_path: Path) -> None:
    import json

    config = parse_apache_config(str(rhel_host(tmp_path)))
    data = json.loads(json.dumps(config.to_dict()))
    assert data["vhosts"][0]["redirects"] == ["https://%{HTTP_HOST}$1"]
    assert data["modules"] == sorted(data["modules"])
