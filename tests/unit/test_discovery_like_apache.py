"""Discovery evaluates what Apache evaluates (issue 15): every conditional section, every variable source,
on real-world-shaped trees, and the real ``apache2 -S`` as the judge of which vhosts are loaded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import apache_locate
from ansible_collections.fpt.sec.plugins.module_utils.apache_config import ApacheConfigError, parse_apache_config
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import binary_facts, service_environment
from ansible_collections.fpt.sec.plugins.module_utils.discovery import discover_sites

from tests.unit.fixtures.apache.corpus import debian_stock_host, fedora_env_host, machine_module_dir, rhel_macro_host

# What Debian's apache2 -l prints (mod_version is compiled in there, loaded by LoadModule on RHEL).
DEBIAN_COMPILED = "Compiled in modules:\n  core.c\n  mod_so.c\n  mod_watchdog.c\n  http_core.c\n  mod_log_config.c\n" \
                  "  mod_logio.c\n  mod_version.c\n  mod_unixd.c\n"
APACHE2 = shutil.which("apache2") or ("/usr/sbin/apache2" if os.access("/usr/sbin/apache2", os.X_OK) else None)


class FakeBinary:
    """An httpd/apache2 answering ``-v`` and ``-l`` as a Debian build does; remembers what was run."""

    def __init__(self, version: str = "2.4.62") -> None:
        self.version = version
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[1:] == ["-v"]:
            return 0, f"Server version: Apache/{self.version} (Debian)\nServer built:   2024-07-17T18:57:26\n", ""
        if argv[1:] == ["-l"]:
            return 0, DEBIAN_COMPILED, ""
        return 1, "", "unexpected"


@pytest.fixture
def sbin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding an ``apache2`` that FakeBinary answers for; the machine's own stays out."""
    monkeypatch.setattr(apache_locate, "EXTRA_BIN_DIRS", ())
    folder = tmp_path / "sbin"
    folder.mkdir()
    (folder / "apache2").write_text("#!/bin/sh\nexit 0\n")
    (folder / "apache2").chmod(0o755)
    return folder


def discover(conf: Path, root: Path, sbin: Path | None, run: Callable | None = None, **options: object) -> dict:
    proc = root / "no-proc"
    proc.mkdir(exist_ok=True)
    return discover_sites(str(conf), environ={}, proc_root=str(proc), run=run or FakeBinary(),
                          search_path=str(sbin) if sbin else "", system_root=str(root), **options)


def names(found: dict) -> set[str]:
    return {site["name"] for site in found["sites"]}


def skipped(found: dict) -> dict[str, str]:
    return {entry["name"]: entry["reason"] for entry in found["skipped_sites"]}


# -- the three trees, as discovery reads them ------------------------------------------------------------
def test_debian_stock_tree(tmp_path: Path, sbin: Path) -> None:
    conf = debian_stock_host(tmp_path)
    found = discover(conf, tmp_path, sbin)
    # A site whose current names a missing release is listed, broken: the one an administrator must see.
    assert names(found) == {"prod.shotgun.example", "proxied.shotgun.example", "staging.shotgun.example",
                            "broken.other.example"}
    broken = next(s for s in found["sites"] if s["name"] == "broken.other.example")
    assert broken["state"] == "broken: current -> releases/9.9.9 is missing" and broken["version"] is None
    assert {s["state"] for s in found["sites"] if s is not broken} == {"ok"}
    [apache] = found["apache"]
    assert apache["version"] == "2.4.62" and apache["binary"] == str(sbin / "apache2")
    assert apache["env_sources"] == [str(conf.parent / "envvars")]
    why = skipped(found)
    legacy = conf.parent / "sites-enabled" / "com_example_shotgun_legacy.conf"
    assert why["legacy.shotgun.example"] == (
        f"Apache does not load it: inside <IfVersion < 2.4> at {legacy}:2, false for Apache 2.4.62"
    )
    assert why["legacy22.shotgun.example"].endswith("false for Apache 2.4.62")
    assert why["passenger.shotgun.example"].endswith("false: no loaded module provides PassengerAppRoot")
    assert why["md.shotgun.example"].endswith("false: no loaded module provides <MDomain>")
    qa_shared = tmp_path / "srv/shotgun/com_example_shotgun_qa/shared"
    assert why["qa.shotgun.example"].endswith(f"false: {qa_shared} exists")
    assert set(why) == {"legacy.shotgun.example", "legacy22.shotgun.example", "passenger.shotgun.example",
                        "md.shotgun.example", "qa.shotgun.example"}
    # Define (SHOTGUN_ROOT) and envvars (APACHE_LOG_DIR) resolved everything: no undefined variable.
    assert not [w for w in found["warnings"] if "is not defined" in w]


def test_rhel_macro_tree_with_httpd_service_and_sysconfig(tmp_path: Path, sbin: Path) -> None:
    conf = rhel_macro_host(tmp_path)
    found = discover(conf, tmp_path, sbin)
    assert names(found) == {"prod.shotgun.example", "staging.shotgun.example", "dr.shotgun.example",
                            "v24.shotgun.example"}
    [apache] = found["apache"]
    # The unit's EnvironmentFile gave OPTIONS; its ExecStart "httpd $OPTIONS -DFOREGROUND" gave the -D names.
    assert apache["defines"] == ["SHOTGUN_DR", "FOREGROUND"]
    assert apache["env_sources"] == [str(tmp_path / "usr/lib/systemd/system/httpd.service"), "/etc/sysconfig/httpd"]
    why = skipped(found)
    assert set(why) == {"old.shotgun.example", "pre246.shotgun.example", "passenger.shotgun.example"}
    shotgun_conf = conf.parent.parent / "conf.d" / "shotgun.conf"
    assert why["pre246.shotgun.example"] == (
        f"Apache does not load it: inside <IfVersion !>= 2.4.6> at {shotgun_conf}:34, false for Apache 2.4.62"
    )
    assert why["passenger.shotgun.example"].endswith("false: mod_passenger.c is not loaded")


def test_sysconfig_httpd_without_a_unit(tmp_path: Path, sbin: Path) -> None:
    conf = rhel_macro_host(tmp_path)
    (tmp_path / "usr/lib/systemd/system/httpd.service").unlink()
    found = discover(conf, tmp_path, sbin)
    assert found["apache"][0]["env_sources"] == ["/etc/sysconfig/httpd"]
    assert found["apache"][0]["defines"] == ["SHOTGUN_DR"]
    assert "dr.shotgun.example" in names(found)
    # Without either, the DR site is not served: listed with the section that says so.
    (tmp_path / "etc/sysconfig/httpd").unlink()
    found = discover(conf, tmp_path, sbin)
    assert "dr.shotgun.example" not in names(found)
    assert skipped(found)["dr.shotgun.example"].endswith("false: SHOTGUN_DR is not defined")


def test_fedora_tree_from_the_units_environment(tmp_path: Path, sbin: Path) -> None:
    conf = fedora_env_host(tmp_path)
    found = discover(conf, tmp_path, sbin)
    assert names(found) == {"fedora.shotgun.example", "review.shotgun.example"}
    [fedora] = [s for s in found["sites"] if s["name"] == "fedora.shotgun.example"]
    assert fedora["site_dir"] == str(tmp_path / "srv/shotgun/com_example_shotgun_fedora")
    assert fedora["ports"] == [8081]
    [apache] = found["apache"]
    assert apache["defines"] == ["REVIEW_SITE", "FOREGROUND"]
    assert apache["env_sources"] == [
        str(tmp_path / "usr/lib/systemd/system/httpd.service"),
        str(tmp_path / "etc/systemd/system/httpd.service.d/shotgun.conf"),
        "/etc/sysconfig/shotgun",
    ]
    why = skipped(found)
    assert why["wsgi.shotgun.example"].endswith("false: no loaded module provides WSGIDaemonProcess")
    assert why["macro.shotgun.example"].endswith("false: no loaded module provides <Macro>")


def test_fedora_tree_without_its_environment_names_the_variable_and_the_options_fill_it(
    tmp_path: Path, sbin: Path
) -> None:
    conf = fedora_env_host(tmp_path)
    shutil.rmtree(tmp_path / "etc/systemd/system/httpd.service.d")
    found = discover(conf, tmp_path, sbin)
    assert names(found) == set()
    [entry] = [e for e in found["skipped_sites"] if e["name"] == "${SHOTGUN_NAME}"]
    assert entry["site_dir"] == "${SHOTGUN_ROOT}/${SHOTGUN_REVERSE}"
    assert "uses ${SHOTGUN_ROOT}, which is not defined" in entry["reason"]
    assert "apache_env option" in entry["reason"]
    assert any("variable ${SHOTGUN_PORT} is not defined" in w for w in found["warnings"])

    given = discover(conf, tmp_path, sbin, apache_env={"SHOTGUN_PORT": "8082", "SHOTGUN_NAME": "f.shotgun.example",
                                                       "SHOTGUN_ROOT": str(tmp_path / "srv/shotgun"),
                                                       "SHOTGUN_REVERSE": "com_example_shotgun_fedora"},
                     apache_defines=["REVIEW_SITE"])
    assert names(given) == {"f.shotgun.example", "review.shotgun.example"}
    assert given["apache"][0]["env_sources"][-2:] == ["apache_env option", "apache_defines option"]
    assert given["apache"][0]["defines"] == ["FOREGROUND", "REVIEW_SITE"]


def running_httpd(tmp_path: Path, pid: int) -> Path:
    """A /proc with the Fedora host's httpd running as `pid` (`-DFOREGROUND` on its command line)."""
    conf = fedora_env_host(tmp_path)
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    argv = ["/usr/sbin/httpd", "-d", str(conf.parent.parent), "-f", "conf/httpd.conf", "-DFOREGROUND"]
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / str(pid) / "stat").write_text(f"{pid} (httpd) S 1 {pid} {pid} 0 -1 4194560 0 0 0 0\n")
    return proc


def test_the_running_process_environment_and_d_args_win_over_the_unit(tmp_path: Path, sbin: Path) -> None:
    proc = running_httpd(tmp_path, 700)
    environ = {"SHOTGUN_PORT": "9443", "SHOTGUN_NAME": "running.shotgun.example",
               "SHOTGUN_ROOT": str(tmp_path / "srv/shotgun"), "SHOTGUN_REVERSE": "com_example_shotgun_fedora"}
    (proc / "700" / "environ").write_bytes(b"".join(f"{k}={v}\0".encode() for k, v in environ.items()))
    found = discover_sites(environ={}, proc_root=str(proc), run=FakeBinary(), search_path=str(sbin),
                           system_root=str(tmp_path))
    # The process runs without -DREVIEW_SITE (the unit would add it): the review site is not served.
    assert names(found) == {"running.shotgun.example"}
    assert found["sites"][0]["ports"] == [9443]
    assert found["apache"][0]["env_sources"] == ["/proc/700/environ"]
    assert skipped(found)["review.shotgun.example"].endswith("false: REVIEW_SITE is not defined")


def test_service_environment_reads_quoted_environment_and_optional_files(tmp_path: Path) -> None:
    fedora_env_host(tmp_path)
    env, defines, sources = service_environment("httpd", None, str(tmp_path))
    assert env["SHOTGUN_PORT"] == "8081" and env["SHOTGUN_NAME"] == "fedora.shotgun.example"
    assert env["SHOTGUN_REVERSE"] == "com_example_shotgun_fedora" and env["LANG"] == "C"
    assert defines == ["REVIEW_SITE", "FOREGROUND"]
    assert "/etc/sysconfig/shotgun-optional" not in sources  # "-" prefix: may be missing
    # An empty Environment= resets the list, as systemd does.
    dropin = tmp_path / "etc/systemd/system/httpd.service.d/zz-reset.conf"
    dropin.write_text("[Service]\nEnvironment=\nEnvironment=ONLY=this\n")
    env, _defines, _sources = service_environment("httpd", None, str(tmp_path))
    assert env.get("ONLY") == "this" and "SHOTGUN_PORT" not in env and env["SHOTGUN_ROOT"]


# -- conditional sections, one at a time -----------------------------------------------------------------
def vhost_names(tmp_path: Path, body: str, **kwargs: object) -> list[str]:
    conf = tmp_path / "httpd.conf"
    conf.write_text(body)
    return [v.server_name for v in parse_apache_config(str(conf), **kwargs).vhosts]


# Checked against the real apache2 2.4.71 -S (see test_ifversion_operators_agree_with_apache2).
IFVERSION_CASES = [
    ("= 2.4", False), ("2.4.71", True), ("= 2.4.71", True), ("== 2.4.71", True), ("< 2.4", False),
    (">= 2.4", True), ("> 2.4.70", True), ("<= 2.4.71", True), ("~ ^2\\.4", True), ("!~ ^2\\.2", True),
    ("/^2\\.4/", True), ("= /^2\\.4/", True), ("!= 2.4.71", False), ("!< 2.4", True), ("!= /^2\\.4/", False),
    (">= 2", True), ("2", False), ("> 2.4.71", False),
]


@pytest.mark.parametrize(("test", "loaded"), IFVERSION_CASES)
def test_ifversion_operators(tmp_path: Path, test: str, loaded: bool) -> None:
    body = f"<IfVersion {test}>\n<VirtualHost *:80>\nServerName yes\n</VirtualHost>\n</IfVersion>\n"
    assert vhost_names(tmp_path, body, version="2.4.71", compiled_modules=["core.c"]) == (["yes"] if loaded else [])


def test_ifversion_without_a_binary_is_skipped_and_said(tmp_path: Path) -> None:
    conf = tmp_path / "httpd.conf"
    conf.write_text("<IfVersion >= 2.4>\n<VirtualHost *:80>\nServerName a\n</VirtualHost>\n</IfVersion>\n"
                    "<IfVersion < 2.4>\n<VirtualHost *:80>\nServerName b\n</VirtualHost>\n</IfVersion>\n")
    config = parse_apache_config(str(conf))
    assert config.vhosts == []
    assert [s.server_name for s in config.skipped_vhosts] == ["a", "b"]
    assert config.warnings[0] == (
        f"{conf}:1: <IfVersion >= 2.4> not evaluated: no httpd/apache2 binary to read the version from; "
        "its content is skipped"
    )


def test_ifversion_bad_operator_is_apaches_error(tmp_path: Path) -> None:
    with pytest.raises(ApacheConfigError, match=r"httpd\.conf:1: unrecognized operator '!' in <IfVersion>"):
        vhost_names(tmp_path, "<IfVersion ! 2.4>\n</IfVersion>\n", version="2.4.71")


def test_ifmodule_uses_loadmodule_and_the_binarys_compiled_in_modules(tmp_path: Path) -> None:
    body = ("LoadModule rewrite_module modules/mod_rewrite.so\n"
            "<IfModule mod_rewrite.c>\n<VirtualHost *:1>\nServerName loaded\n</VirtualHost>\n</IfModule>\n"
            "<IfModule version_module>\n<VirtualHost *:2>\nServerName compiled\n</VirtualHost>\n</IfModule>\n"
            "<IfModule !mod_ssl.c>\n<VirtualHost *:3>\nServerName no-ssl\n</VirtualHost>\n</IfModule>\n")
    assert vhost_names(tmp_path, body, compiled_modules=["core.c", "mod_version.c"]) == ["loaded", "compiled", "no-ssl"]
    # RHEL's httpd -l has no mod_version: it must be loaded.
    assert vhost_names(tmp_path, body, compiled_modules=["core.c", "mod_so.c", "http_core.c"]) == ["loaded", "no-ssl"]


def test_ifdirective_and_ifsection_follow_the_loaded_modules(tmp_path: Path) -> None:
    body = ("<IfDirective DocumentRoot>\n<VirtualHost *:1>\nServerName core\n</VirtualHost>\n</IfDirective>\n"
            "<IfDirective RewriteEngine>\n<VirtualHost *:2>\nServerName rewrite\n</VirtualHost>\n</IfDirective>\n"
            "<IfDirective !PassengerAppRoot>\n<VirtualHost *:3>\nServerName no-passenger\n</VirtualHost>\n"
            "</IfDirective>\n"
            "<IfSection VirtualHost>\n<VirtualHost *:4>\nServerName section\n</VirtualHost>\n</IfSection>\n"
            "<IfSection Proxy>\n<VirtualHost *:5>\nServerName proxy\n</VirtualHost>\n</IfSection>\n"
            "<IfDirective Frobnicate>\n<VirtualHost *:6>\nServerName unknown\n</VirtualHost>\n</IfDirective>\n")
    assert vhost_names(tmp_path, body, compiled_modules=["core.c"]) == ["core", "no-passenger", "section"]
    loaded = "LoadModule rewrite_module x.so\nLoadModule proxy_module y.so\nLoadModule passenger_module z.so\n"
    assert vhost_names(tmp_path, loaded + body, compiled_modules=["core.c"]) == ["core", "rewrite", "section", "proxy"]


def test_binary_facts_read_v_and_l() -> None:
    assert binary_facts("/usr/sbin/apache2", FakeBinary("2.4.62")) == (
        "2.4.62", ["core.c", "mod_so.c", "mod_watchdog.c", "http_core.c", "mod_log_config.c", "mod_logio.c",
                   "mod_version.c", "mod_unixd.c"])
    assert binary_facts(None, FakeBinary()) == (None, None)
    assert binary_facts("/nope/httpd", lambda argv: (127, "", "not found")) == (None, None)


# -- the judge: the real apache2 -S on the same trees ------------------------------------------------------
@pytest.mark.skipif(APACHE2 is None, reason="no apache2 binary here")
@pytest.mark.parametrize(("_label", "conf_of"), [
    ("debian-stock", debian_stock_host), ("rhel-macro", rhel_macro_host), ("fedora-env", fedora_env_host),
])
def test_sites_agree_with_apache2_dash_s(tmp_path: Path, _label: str, conf_of: Callable[[Path], Path]) -> None:
    """apache2 -S, run with the environment and -D names the tree's service would give it, loads exactly
    the site vhosts discovery reports, at the same file:line, and none of those it reports skipped."""
    conf = conf_of(tmp_path)
    server_root = conf.parent if conf.name == "apache2.conf" else conf.parent.parent
    if not Path(machine_module_dir(), "mod_macro.so").exists():
        pytest.skip("this machine's Apache modules (mod_macro.so) are not installed")
    env, defines = _service_env_by_the_shell(tmp_path, conf)
    machine = {"LANG": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    text = subprocess.run(
        [APACHE2, "-d", str(server_root), "-f", str(conf), *[f"-D{d}" for d in defines], "-S"],
        env={**machine, **env}, capture_output=True, text=True, timeout=60, check=False,
    )
    assert text.returncode == 0, text.stderr
    loaded: dict[tuple[str, int], str] = {}
    for line in text.stdout.splitlines():
        match = re.search(r"(?:port \d+ namevhost|:\d+\s+)\s*(\S+) \((.+):(\d+)\)$", line)
        if not match:
            continue
        # A macro's vhost: (macro 'm' (defined on line 2 of "f") used on line 15 of "f":1) is at f:15.
        used = re.match(r'^macro .* used on line (\d+) of "(.+)"$', match.group(2))
        where = (used.group(2), int(used.group(1))) if used else (match.group(2), int(match.group(3)))
        loaded[where] = match.group(1)

    found = discover_sites(str(conf), environ={}, proc_root=str(tmp_path / "no-proc"), search_path="",
                           system_root=str(tmp_path))
    assert found["apache"][0]["version"]  # the real binary answered -v
    ours = {(v["file"], v["line"]): site["name"] for site in found["sites"] for v in site["vhosts"]}
    assert set(ours.items()) <= set(loaded.items())
    # Every site-shaped vhost Apache loads is a site, or skipped for a reason of its own folder.
    shotgun = {key: name for key, name in loaded.items() if name.endswith(".shotgun.example")}
    assert shotgun == {key: name for key, name in ours.items() if name.endswith(".shotgun.example")}
    for entry in found["skipped_sites"]:
        is_loaded = (entry["file"], entry["line"]) in loaded
        assert is_loaded != entry["reason"].startswith("Apache does not load it"), entry


def _this_machines_modules(conf: Path) -> None:
    """A module this apache2 has compiled in cannot be LoadModule'd (RHEL loads log_config, unixd, version):
    comment those lines out, as the tree would read on a build with the same -l."""
    compiled = {line.strip()[:-2].removeprefix("mod_") + "_module" for line in subprocess.run(
        [APACHE2, "-l"], capture_output=True, text=True, check=True).stdout.splitlines() if line.strip().endswith(".c")}
    for path in conf.parent.parent.glob("conf.modules.d/*.conf"):
        lines = [f"#{line}" if line.startswith("LoadModule ") and line.split()[1] in compiled else line
                 for line in path.read_text().splitlines()]
        path.write_text("\n".join(lines) + "\n")


def _service_env_by_the_shell(root: Path, conf: Path) -> tuple[dict[str, str], list[str]]:
    """The environment and -D names the tree's service starts Apache with, computed by /bin/sh from the
    tree's own files (not by the code under test): Debian's envvars as apache2ctl sources it, RHEL's
    /etc/sysconfig/httpd and its OPTIONS, Fedora's unit drop-in Environment= and EnvironmentFile=."""
    if conf.name == "apache2.conf":
        script = f". {conf.parent}/envvars; env"
        defines: list[str] = []
    elif (root / "etc/sysconfig/shotgun").exists():
        script = f"set -a; SHOTGUN_PORT=8081; SHOTGUN_NAME=fedora.shotgun.example; . {root}/etc/sysconfig/shotgun; env"
        defines = ["REVIEW_SITE", "FOREGROUND"]
    else:
        script = f"set -a; . {root}/etc/sysconfig/httpd; env"
        defines = ["SHOTGUN_DR", "FOREGROUND"]
    out = subprocess.run(["/bin/sh", "-c", script], env={"APACHE_CONFDIR": str(conf.parent)}, capture_output=True,
                         text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for folder in ("APACHE_RUN_DIR", "APACHE_LOG_DIR", "APACHE_LOCK_DIR"):
        if folder in env:
            Path(env[folder]).mkdir(parents=True, exist_ok=True)
    if conf.name == "httpd.conf" and subprocess.run(["id", "apache"], capture_output=True).returncode != 0:
        # RHEL's "User apache" does not exist on this machine: its apache2 refuses to start without it.
        httpd_conf = conf.read_text().replace("User apache\nGroup apache", "User www-data\nGroup www-data")
        conf.write_text(httpd_conf)
    if conf.name == "httpd.conf":
        _this_machines_modules(conf)
    return env, defines


@pytest.mark.skipif(APACHE2 is None, reason="no apache2 binary here")
def test_ifversion_operators_agree_with_apache2(tmp_path: Path) -> None:
    """Each <IfVersion> test, read by the parser with this apache2's -v, and by that apache2 itself."""
    version, compiled = binary_facts(APACHE2)
    assert version
    (tmp_path / "logs").mkdir()
    head = (f"DefaultRuntimeDir {tmp_path}\nServerName judge\nErrorLog logs/error.log\nPidFile {tmp_path}/pid\n"
            f"LoadModule mpm_event_module {machine_module_dir()}/mod_mpm_event.so\nListen 127.0.0.1:1\n")
    tests = [test for test, _loaded in IFVERSION_CASES] + [f"= {version}", f"< {version}", f"!> {version}"]
    for test in tests:
        conf = tmp_path / "httpd.conf"
        conf.write_text(head + f"<IfVersion {test}>\n<VirtualHost *:1>\nServerName yes\n</VirtualHost>\n</IfVersion>\n")
        judged = subprocess.run([APACHE2, "-d", str(tmp_path), "-f", str(conf), "-S"], capture_output=True,
                                text=True, timeout=30, check=False)
        assert judged.returncode == 0, judged.stderr
        config = parse_apache_config(str(conf), version=version, compiled_modules=compiled)
        assert ([v.server_name for v in config.vhosts] == ["yes"]) == (" yes (" in judged.stdout), test


def test_a_running_server_whose_environment_is_unreadable_gets_its_units(tmp_path: Path, sbin: Path) -> None:
    """Without become, /proc/<pid>/environ cannot be read: the unit's environment stands in, while the -D
    names stay those of the command line (always readable), not the unit's."""
    proc = running_httpd(tmp_path, 701)
    found = discover_sites(environ={}, proc_root=str(proc), run=FakeBinary(), search_path=str(sbin),
                           system_root=str(tmp_path))
    assert names(found) == {"fedora.shotgun.example"}
    [apache] = found["apache"]
    assert (apache["pid"], apache["defines"]) == (701, ["FOREGROUND"])
    assert apache["env_sources"][0] == str(tmp_path / "usr/lib/systemd/system/httpd.service")
