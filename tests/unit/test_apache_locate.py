"""Finding Apache on a host (module_utils/apache_locate.py), discovery end to end, and the site_facts module.

/proc, the command runner and the PATH are faked, so these tests do not depend on what runs here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.fpt.sec.plugins.module_utils import apache_locate
from ansible_collections.fpt.sec.plugins.module_utils.apache_config import ApacheConfigError
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import (
    ApacheNotFoundError,
    compiled_defaults,
    find_binaries,
    locate_apache,
    parse_httpd_args,
    read_envvars,
    running_masters,
)
from ansible_collections.fpt.sec.plugins.module_utils.discovery import discover_sites
from ansible_collections.fpt.sec.plugins.modules import site_facts

from tests.unit.fixtures.apache.corpus import debian_host, install, rhel_host

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_BIN_DIRS = apache_locate.EXTRA_BIN_DIRS  # before any test replaces it


def dash_v(root: str, config: str) -> str:
    """``httpd -V`` as a RHEL or Debian build prints it."""
    return (
        "Server version: Apache/2.4.57 (Unix)\n"
        "Server built:   Mar 12 2024 00:00:00\n"
        "Server compiled with....\n"
        " -D APR_HAS_SENDFILE\n"
        " -D DYNAMIC_MODULE_LIMIT=256\n"
        f' -D HTTPD_ROOT="{root}"\n'
        ' -D SUEXEC_BIN="/usr/sbin/suexec"\n'
        ' -D DEFAULT_PIDLOG="run/httpd.pid"\n'
        f' -D SERVER_CONFIG_FILE="{config}"\n'
    )


class FakeRunner:
    """Answers ``<binary> -V`` from a table; remembers what was run."""

    def __init__(self, outputs: dict[str, str] | None = None) -> None:
        self.outputs = outputs or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[0] in self.outputs and argv[1:] == ["-V"]:
            return 0, self.outputs[argv[0]], ""
        return 127, "", f"{argv[0]}: not found"


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "self").mkdir()  # non-numeric entries exist in a real /proc
        (root / "meminfo").write_text("MemTotal: 1 kB\n")

    def add(
        self,
        pid: int,
        argv: list[str],
        ppid: int = 1,
        exe: str | None = None,
        environ: dict[str, str] | None = None,
        comm: str | None = None,
    ) -> None:
        folder = self.root / str(pid)
        folder.mkdir()
        (folder / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
        name = comm if comm is not None else (Path(argv[0]).name[:15] if argv else "kworker/0:1")
        (folder / "stat").write_text(f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0\n")
        if exe:
            (folder / "exe").symlink_to(exe)
        if environ is not None:
            (folder / "environ").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in environ.items()))

    @property
    def path(self) -> str:
        return str(self.root)


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


@pytest.fixture(autouse=True)
def no_system_bin_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine running the tests may have its own httpd in /usr/sbin: keep it out of every test here.
    monkeypatch.setattr(apache_locate, "EXTRA_BIN_DIRS", ())


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


# -- command lines and /proc -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/sbin/httpd", "-DFOREGROUND"], {"server_root": None, "config": None, "defines": ["FOREGROUND"]}),
        (["/usr/sbin/apache2", "-k", "start"], {"server_root": None, "config": None, "defines": []}),
        (
            ["/usr/sbin/httpd", "-d", "/srv/web", "-f", "conf/x.conf", "-D", "SSL", "-DDR", "-e", "debug", "-X"],
            {"server_root": "/srv/web", "config": "conf/x.conf", "defines": ["SSL", "DR"]},
        ),
        (
            ["httpd", "-f/etc/httpd-b/conf/httpd.conf", "-d/etc/httpd-b"],
            {"server_root": "/etc/httpd-b", "config": "/etc/httpd-b/conf/httpd.conf", "defines": []},
        ),
    ],
)
def test_parse_httpd_args(argv: list[str], expected: dict) -> None:
    parsed = parse_httpd_args(argv)
    assert {k: parsed[k] for k in expected} == expected


def test_parse_httpd_args_keeps_command_line_directives() -> None:
    parsed = parse_httpd_args(["httpd", "-C", "Define EARLY", "-c", "Include extra.conf"])
    assert (parsed["pre"], parsed["post"]) == (["Define EARLY"], ["Include extra.conf"])


def test_running_masters_skips_workers_and_other_processes(proc: FakeProc) -> None:
    proc.add(1, ["/sbin/init"])
    proc.add(2, [], comm="kthreadd")  # kernel thread: empty cmdline
    proc.add(100, ["/usr/sbin/httpd", "-DFOREGROUND"], exe="/usr/sbin/httpd (deleted)", environ={"LANG": "C"})
    proc.add(101, ["/usr/sbin/httpd", "-DFOREGROUND"], ppid=100)
    proc.add(102, ["/usr/sbin/httpd", "-DFOREGROUND"], ppid=100)
    proc.add(200, ["/usr/sbin/sshd", "-D"])
    proc.add(300, ["/usr/local/bin/httpd-exporter", "--port", "9117"])
    proc.add(399, ["/bin/sh", "/usr/sbin/apache2ctl", "start"])
    proc.add(400, ["/usr/sbin/apache2", "-k", "start"], ppid=399, comm="apache2) S 1 (x")
    proc.add(401, ["/usr/sbin/apache2", "-k", "start"], ppid=400, comm="apache2) S 1 (x")
    proc.add(500, ["/usr/sbin/httpd.worker"], ppid=1)
    masters = running_masters(proc.path)
    assert [(m["pid"], m["binary"]) for m in masters] == [
        (100, "/usr/sbin/httpd"),  # the exe link, with " (deleted)" dropped after a package upgrade
        (400, "/usr/sbin/apache2"),
        (500, "/usr/sbin/httpd.worker"),
    ]
    assert masters[0]["env"] == {"LANG": "C"}
    assert masters[1]["env"] == {}  # environ unreadable (here: absent)


def test_running_masters_without_proc(tmp_path: Path) -> None:
    assert running_masters(str(tmp_path / "no-proc")) == []


# -- compiled defaults and binaries ----------------------------------------------------------------------
def test_compiled_defaults_from_dash_v() -> None:
    runner = FakeRunner({"/opt/httpd/bin/httpd": dash_v("/opt/httpd", "conf/httpd.conf")})
    values = compiled_defaults("/opt/httpd/bin/httpd", runner)
    assert values["HTTPD_ROOT"] == "/opt/httpd"
    assert values["SERVER_CONFIG_FILE"] == "conf/httpd.conf"
    assert values["DEFAULT_PIDLOG"] == "run/httpd.pid"
    assert runner.calls == [["/opt/httpd/bin/httpd", "-V"]]


def test_compiled_defaults_fall_back_to_the_distribution_layout() -> None:
    assert compiled_defaults("/usr/sbin/apache2", FakeRunner())["HTTPD_ROOT"] == "/etc/apache2"
    assert compiled_defaults("/usr/sbin/httpd", FakeRunner())["SERVER_CONFIG_FILE"] == "conf/httpd.conf"
    assert compiled_defaults("/usr/bin/lighttpd", FakeRunner()) == {}


def test_find_binaries_searches_path_then_the_usual_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = executable(tmp_path / "bin1" / "httpd")
    executable(tmp_path / "bin2" / "httpd")
    (tmp_path / "bin2" / "apache2").write_text("not executable")
    (tmp_path / "same").symlink_to(tmp_path / "bin1")
    extra = executable(tmp_path / "usr-local-apache2-bin" / "apache2")
    monkeypatch.setattr(apache_locate, "EXTRA_BIN_DIRS", (str(extra.parent),))
    search = os.pathsep.join([str(tmp_path / "bin1"), str(tmp_path / "same"), str(tmp_path / "bin2")])
    assert find_binaries(search) == [str(first), str(tmp_path / "bin2" / "httpd"), str(extra)]


def test_the_usual_folders_include_sbin_and_a_source_build() -> None:
    # The autouse fixture blanks the list for the other tests; the module's own value is checked here.
    assert {"/usr/sbin", "/usr/local/apache2/bin"} <= set(SYSTEM_BIN_DIRS)


def test_read_envvars_of_debian(tmp_path: Path) -> None:
    conf = debian_host(tmp_path)
    values = read_envvars(str(conf.parent))
    assert values["APACHE_RUN_USER"] == "www-data"
    assert values["APACHE_PID_FILE"] == f"{tmp_path}/var/run/apache2/apache2.pid"  # $SUFFIX is empty
    assert values["LANG"] == "C"
    assert "HOME" not in values and read_envvars(str(tmp_path / "nowhere")) == {}


# -- locate_apache ---------------------------------------------------------------------------------------
def test_locate_from_a_running_master_with_d_and_relative_f(tmp_path: Path, proc: FakeProc) -> None:
    conf = rhel_host(tmp_path / "host")
    server_root = conf.parent.parent
    proc.add(
        4242,
        ["/usr/sbin/httpd", "-d", str(server_root), "-f", "conf/httpd.conf", "-DDR_SITE"],
        environ={"PATH": "/usr/bin", "SECRET_TOKEN": "x"},
    )
    runner = FakeRunner()
    [instance] = locate_apache(proc_root=proc.path, run=runner, search_path="")
    assert instance.to_dict() == {
        "binary": "/usr/sbin/httpd",
        "server_root": str(server_root),
        "config": str(conf),
        "pid": 4242,
        "defines": ["DR_SITE"],
        "source": "process",
        "version": None,
        "env_sources": ["/proc/4242/environ"],
    }
    assert instance.env["SECRET_TOKEN"] == "x"  # used for ${VAR}, never reported
    assert runner.calls == []  # -d and -f said it all


def test_locate_from_a_master_without_arguments_asks_the_binary(tmp_path: Path, proc: FakeProc) -> None:
    conf = debian_host(tmp_path / "host")
    proc.add(77, ["/usr/sbin/apache2", "-k", "start"])
    runner = FakeRunner({"/usr/sbin/apache2": dash_v(str(conf.parent), "apache2.conf")})
    [instance] = locate_apache(proc_root=proc.path, run=runner, search_path="")
    assert (instance.config, instance.server_root, instance.pid) == (str(conf), str(conf.parent), 77)
    assert runner.calls == [["/usr/sbin/apache2", "-V"]]
    # No readable process environment: Debian's envvars stands in.
    assert instance.env["APACHE_PID_FILE"].endswith("/var/run/apache2/apache2.pid")


def test_several_masters_with_distinct_configs_are_all_returned(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path / "a")
    debian = debian_host(tmp_path / "b")
    proc.add(10, ["/usr/sbin/httpd", "-f", str(rhel)])
    proc.add(11, ["/usr/sbin/httpd", "-f", str(rhel)], ppid=10)
    proc.add(20, ["/usr/sbin/apache2", "-d", str(debian.parent), "-f", str(debian)])
    runner = FakeRunner({"/usr/sbin/httpd": dash_v(str(rhel.parent.parent), "conf/httpd.conf")})
    instances = locate_apache(proc_root=proc.path, run=runner, search_path="")
    assert [(i.pid, i.config) for i in instances] == [(10, str(rhel)), (20, str(debian))]


def test_a_master_whose_config_is_not_visible_is_skipped(tmp_path: Path, proc: FakeProc) -> None:
    # e.g. httpd in a container: its paths are not ours. Then the binaries on the PATH are tried.
    proc.add(30, ["/usr/sbin/httpd", "-d", "/inside/container", "-f", "conf/httpd.conf"])
    conf = rhel_host(tmp_path / "host")
    binary = executable(tmp_path / "bin" / "httpd")
    runner = FakeRunner({str(binary): dash_v(str(conf.parent.parent), "conf/httpd.conf")})
    [instance] = locate_apache(proc_root=proc.path, run=runner, search_path=str(binary.parent))
    assert (instance.source, instance.binary, instance.config, instance.pid) == ("binary", str(binary), str(conf), None)

    with pytest.raises(ApacheNotFoundError, match=r"pid 30: /inside/container/conf/httpd\.conf"):
        locate_apache(proc_root=proc.path, run=runner, search_path="")


def test_locate_from_the_binaries_on_the_path(tmp_path: Path, proc: FakeProc) -> None:
    debian = debian_host(tmp_path / "host")
    apache2 = executable(tmp_path / "sbin" / "apache2")
    httpd = executable(tmp_path / "sbin" / "httpd")  # installed, but its config does not exist
    runner = FakeRunner(
        {
            str(apache2): dash_v(str(debian.parent), "apache2.conf"),
            str(httpd): dash_v(str(tmp_path / "etc" / "httpd"), "conf/httpd.conf"),
        }
    )
    [instance] = locate_apache(
        proc_root=proc.path, run=runner, search_path=str(apache2.parent), system_root=str(tmp_path / "host")
    )
    assert instance.to_dict() == {
        "binary": str(apache2),
        "server_root": str(debian.parent),
        "config": str(debian),
        "pid": None,
        "defines": [],
        "source": "binary",
        "version": None,
        "env_sources": [str(debian.parent / "envvars")],
    }


def test_nothing_found(tmp_path: Path, proc: FakeProc) -> None:
    with pytest.raises(ApacheNotFoundError, match="no running httpd/apache2 process and no httpd/apache2 binary"):
        locate_apache(proc_root=proc.path, run=FakeRunner(), search_path=str(tmp_path))
    httpd = executable(tmp_path / "bin" / "httpd")
    with pytest.raises(ApacheNotFoundError, match=f"binaries whose config is missing: {httpd} -> /etc/httpd/conf/"):
        locate_apache(proc_root=proc.path, run=FakeRunner(), search_path=str(httpd.parent))


def test_explicit_path_overrides_everything(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path / "a")
    debian = debian_host(tmp_path / "b")
    proc.add(10, ["/usr/sbin/apache2", "-d", str(debian.parent), "-f", str(debian)])
    [instance] = locate_apache(str(rhel), proc_root=proc.path, run=FakeRunner(), search_path="")
    assert (instance.config, instance.pid, instance.source) == (str(rhel), None, "explicit")


def test_explicit_path_of_a_running_config_keeps_its_process_details(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path / "a")
    proc.add(10, ["/usr/sbin/httpd", "-d", str(rhel.parent.parent), "-f", "conf/httpd.conf", "-D", "DR_SITE"])
    [instance] = locate_apache(str(rhel), proc_root=proc.path, run=FakeRunner(), search_path="", source="option")
    assert (instance.pid, instance.defines, instance.source) == (10, ["DR_SITE"], "option")


def test_explicit_server_root_folder(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path / "a")
    [instance] = locate_apache(str(rhel.parent.parent), proc_root=proc.path, run=FakeRunner(), search_path="")
    assert (instance.config, instance.server_root) == (str(rhel), str(rhel.parent.parent))
    with pytest.raises(ApacheNotFoundError, match="is a folder without httpd.conf"):
        locate_apache(str(tmp_path), proc_root=proc.path, run=FakeRunner(), search_path="")


# -- discover_sites --------------------------------------------------------------------------------------
def discover(
    proc: FakeProc,
    apache_config: str | None = None,
    environ: dict[str, str] | None = None,
    runner: Callable | None = None,
) -> dict:
    return discover_sites(apache_config, environ=environ or {}, proc_root=proc.path, run=runner or FakeRunner())


def test_discover_with_the_option(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path)
    found = discover(proc, str(rhel))
    assert [a["source"] for a in found["apache"]] == ["option"]
    assert [s["reverse_name"] for s in found["sites"]] == ["com_teststudio_prod", "com_teststudio_staging"]
    assert found["warnings"] == []
    json.dumps(found)  # plain data all the way down


def test_environment_variable_pins_one_instance_and_the_option_beats_it(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path / "a")
    debian = debian_host(tmp_path / "b")
    proc.add(10, ["/usr/sbin/apache2", "-d", str(debian.parent), "-f", str(debian)])
    assert [s["name"] for s in discover(proc)["sites"]] == ["tracker.studio.example", "staging.studio.example"]

    pinned = discover(proc, environ={"SEC_APACHE_CONFIG": str(rhel)})
    assert [(a["config"], a["source"]) for a in pinned["apache"]] == [(str(rhel), "environment")]
    assert [s["name"] for s in pinned["sites"]] == ["prod.teststudio.com", "staging.teststudio.com"]

    both = discover(proc, apache_config=str(debian), environ={"SEC_APACHE_CONFIG": str(rhel)})
    assert [(a["config"], a["source"], a["pid"]) for a in both["apache"]] == [(str(debian), "option", 10)]


def test_discover_uses_the_running_servers_defines(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path)
    proc.add(10, ["/usr/sbin/httpd", "-d", str(rhel.parent.parent), "-DFOREGROUND", "-DDR_SITE"])
    runner = FakeRunner({"/usr/sbin/httpd": dash_v("/etc/httpd", "conf/httpd.conf")})
    found = discover(proc, runner=runner)
    assert found["apache"][0]["defines"] == ["FOREGROUND", "DR_SITE"]
    assert [s["name"] for s in found["sites"]][-1] == "dr.teststudio.com"


def test_discover_reads_every_running_instance(tmp_path: Path, proc: FakeProc) -> None:
    rhel = rhel_host(tmp_path / "a")
    debian = debian_host(tmp_path / "b")
    proc.add(10, ["/usr/sbin/httpd", "-d", str(rhel.parent.parent), "-f", "conf/httpd.conf"])
    proc.add(20, ["/usr/sbin/apache2", "-d", str(debian.parent), "-f", "apache2.conf"])
    found = discover(proc)
    assert [a["pid"] for a in found["apache"]] == [10, 20]
    assert len(found["sites"]) == 4


def test_the_same_name_from_two_instances_is_reported(tmp_path: Path, proc: FakeProc) -> None:
    first = rhel_host(tmp_path / "a")
    second = rhel_host(tmp_path / "b")
    proc.add(10, ["/usr/sbin/httpd", "-f", str(first), "-d", str(first.parent.parent)])
    proc.add(20, ["/usr/sbin/httpd", "-f", str(second), "-d", str(second.parent.parent)])
    found = discover(proc)
    assert len(found["sites"]) == 4
    assert any(
        w.startswith("site name prod.teststudio.com is served from several site dirs") and "SEC_APACHE_CONFIG" in w
        for w in found["warnings"]
    )


def test_discover_errors(tmp_path: Path, proc: FakeProc) -> None:
    install("broken", tmp_path)
    with pytest.raises(ApacheConfigError, match=r"conf\.d/b_hand_edited\.conf:2: <VirtualHost> was not closed"):
        discover(proc, str(tmp_path / "etc/httpd/conf/httpd.conf"))
    with pytest.raises(ApacheNotFoundError):
        discover_sites(environ={"PATH": str(tmp_path)}, proc_root=proc.path, run=FakeRunner())


# -- the module ------------------------------------------------------------------------------------------
def run_module(args: dict, capsys: pytest.CaptureFixture[str]) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        site_facts.main()
    return json.loads(capsys.readouterr().out)


def test_module_returns_sites_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rhel = rhel_host(tmp_path)
    result = run_module({"apache_config": str(rhel), "_ansible_check_mode": True}, capsys)
    assert result["changed"] is False
    assert "failed" not in result
    assert [s["name"] for s in result["sites"]] == ["prod.teststudio.com", "staging.teststudio.com"]
    assert result["apache"][0]["config"] == str(rhel)
    assert "s3cret" not in json.dumps(result)


def test_module_fails_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install("broken", tmp_path)
    result = run_module({"apache_config": str(tmp_path / "etc/httpd/conf/httpd.conf")}, capsys)
    assert result["failed"] is True
    bad = tmp_path / "etc/httpd/conf.d/b_hand_edited.conf"
    assert result["msg"] == f"Apache configuration: {bad}:2: <VirtualHost> was not closed"


def test_module_without_apache_names_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def nothing(*_args: object, **_kwargs: object) -> dict:
        raise ApacheNotFoundError("no Apache configuration found (no running httpd/apache2 process ...)")

    monkeypatch.setattr(site_facts, "discover_sites", nothing)
    result = run_module({}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("no Apache configuration found")
    assert "apache_config option" in result["msg"]


def test_module_runs_through_ansible_on_python_3_8_or_the_current_one(tmp_path: Path) -> None:
    """The real path: AnsiballZ must ship the module_utils the module imports, and they must run there."""
    ansible = Path(sys.executable).parent / "ansible"
    if not ansible.exists():
        pytest.skip("ansible is not installed next to this python")
    # Managed hosts may have Python 3.8 only: use it when this machine has one (pyenv's shim would not run).
    pyenv = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.8.*/bin/python3.8"))
    interpreter = str(pyenv[0]) if pyenv else sys.executable
    rhel = rhel_host(tmp_path)
    proc = subprocess.run(
        [
            str(ansible),
            "all",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={interpreter}",
            "-m",
            "fpt.sec.site_facts",
            "-a",
            f"apache_config={rhel}",
            "--check",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.split("=>", 1)[1])
    assert result["changed"] is False
    assert [s["reverse_name"] for s in result["sites"]] == ["com_teststudio_prod", "com_teststudio_staging"]


def test_module_options_apache_env_and_defines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rhel = rhel_host(tmp_path)
    plain = run_module({"apache_config": str(rhel)}, capsys)
    assert "dr.teststudio.com" not in [s["name"] for s in plain["sites"]]
    skipped = {e["name"]: e["reason"] for e in plain["skipped_sites"]}
    assert skipped["dr.teststudio.com"].endswith("false: DR_SITE is not defined")
    given = run_module({"apache_config": str(rhel), "apache_defines": ["DR_SITE"],
                        "apache_env": {"UNUSED": "value-never-shown"}}, capsys)
    assert [s["name"] for s in given["sites"]][-1] == "dr.teststudio.com"
    assert given["apache"][0]["env_sources"][-2:] == ["apache_env option", "apache_defines option"]
    assert "value-never-shown" not in json.dumps(given["apache"])  # names of sources only, never values

    bad = run_module({"apache_config": str(rhel), "apache_env": {"1BAD": "x"}, "apache_defines": ["-DSSL"]}, capsys)
    assert bad["failed"] is True
    assert bad["msg"] == ("apache_env/apache_defines: 1BAD, -DSSL is not a variable name "
                          "(letters, digits, _; not starting with a digit)")
