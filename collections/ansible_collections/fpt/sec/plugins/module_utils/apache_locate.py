# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the Apache httpd configuration(s) of a host, without assuming where Apache lives.

Pure standard library, Python 3.8 compatible (shipped to managed hosts with the modules).

In order, the first that gives an answer wins:

1. an explicit path (a config file, or a ServerRoot folder holding one);
2. the running master processes: ``/proc/*/cmdline`` of ``httpd``/``apache2`` whose parent is not one,
   with their ``-d`` (ServerRoot), ``-f`` (config; relative to ``-d``), ``-D`` and ``-C``/``-c``; what
   the command line leaves out comes from the binary's compiled-in defaults (``<bin> -V``);
3. the binaries on the PATH (plus ``/usr/sbin``, ``/usr/local/apache2/bin``...) and their ``-V``
   (HTTPD_ROOT, SERVER_CONFIG_FILE).

The environment httpd runs with (for ``${VAR}``) and its ``-D`` names: a running master's own
``/proc/<pid>/environ`` and command line; otherwise what would start it: the ``httpd``/``apache2`` systemd
unit's ``Environment=``/``EnvironmentFile=`` (drop-ins included) and the ``-D`` of its ``ExecStart=``, else
``/etc/sysconfig/httpd`` (its ``OPTIONS``), then Debian's ``envvars`` (which ``apache2ctl`` sources last).
`binary_facts` reads the binary's version (``-v``) and compiled-in modules (``-l``).

The ``/proc`` root, the command runner and the search PATH are parameters, so tests fake them.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: subscripting collections.abc.Callable fails on Python 3.8
    from collections.abc import Callable

    # A runner takes an argv list and returns (exit code, stdout, stderr), like AnsibleModule.run_command.
    Runner = Callable[[list[str]], tuple[int, str, str]]

__all__ = [
    "ApacheInstance",
    "ApacheNotFoundError",
    "EXTRA_BIN_DIRS",
    "binary_facts",
    "binary_for_config",
    "compiled_defaults",
    "find_binaries",
    "locate_apache",
    "parse_httpd_args",
    "read_envvars",
    "running_masters",
    "service_environment",
]

BINARY_NAMES = ("httpd", "apache2")
# Where distributions and source builds put the binary when it is not on a non-login PATH.
EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/local/apache2/bin", "/opt/rh/httpd24/root/usr/sbin")
# Used when ``-V`` cannot be run: the layouts the two families ship.
FALLBACK_DEFAULTS = {
    "httpd": {"HTTPD_ROOT": "/etc/httpd", "SERVER_CONFIG_FILE": "conf/httpd.conf"},
    "apache2": {"HTTPD_ROOT": "/etc/apache2", "SERVER_CONFIG_FILE": "apache2.conf"},
}
# httpd, apache2, and RHEL's old per-MPM binaries (httpd.worker, httpd.event).
_BINARY_RE = re.compile(r"^(httpd|apache2)(\.(worker|event|prefork|itk))?$")
_DEFINE_RE = re.compile(r'^\s*-D\s+([A-Z_]+)(?:="(.*)")?\s*$')
_CONFIG_NAMES = ("httpd.conf", "apache2.conf", os.path.join("conf", "httpd.conf"))
# Where systemd looks for units, highest priority first (relative to the system root).
UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system",
             "lib/systemd/system")
SYSCONFIG_HTTPD = "etc/sysconfig/httpd"
_SERVER_VERSION_RE = re.compile(r"^Server version:\s*[^/\s]+/(\d+(?:\.\d+)*)", re.M)
_SHELL_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class ApacheNotFoundError(Exception):
    """No Apache configuration could be found on this host."""


@dataclass
class ApacheInstance:
    """One Apache to read: where its configuration is and how it was found.

    ``env`` is the environment httpd runs with (for ``${VAR}``); it stays out of `to_dict` because a
    process environment may hold secrets.
    """

    config: str
    server_root: str | None = None
    binary: str | None = None
    pid: int | None = None
    defines: list[str] = field(default_factory=list)
    pre_directives: list[str] = field(default_factory=list)
    post_directives: list[str] = field(default_factory=list)
    source: str = "explicit"
    env: dict[str, str] = field(default_factory=dict, repr=False)
    # Where ``env`` and the defines came from (file paths, "process <pid>"): the names only, never values.
    env_sources: list[str] = field(default_factory=list)
    version: str | None = None
    compiled_modules: list[str] | None = None

    def to_dict(self) -> dict:
        return {
            "binary": self.binary,
            "server_root": self.server_root,
            "config": self.config,
            "pid": self.pid,
            "defines": list(self.defines),
            "source": self.source,
            "version": self.version,
            "env_sources": list(self.env_sources),
        }


def default_runner(argv: list) -> tuple:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def parse_httpd_args(argv: list[str]) -> dict:
    """The parts of an httpd command line that decide its configuration.

    ``["/usr/sbin/httpd", "-d", "/srv/web", "-f", "conf/x.conf", "-DFOREGROUND"]`` ->
    {"server_root": "/srv/web", "config": "conf/x.conf", "defines": ["FOREGROUND"], "pre": [], "post": []}.
    Options take their value attached or as the next word, as httpd's getopt allows.
    """
    result: dict = {"server_root": None, "config": None, "defines": [], "pre": [], "post": []}
    with_value = {"d": "server_root", "f": "config", "D": "defines", "C": "pre", "c": "post"}
    # Options of httpd that take a value we do not need; skipping it keeps the next word an option.
    other_with_value = set("ekEgnR")
    i = 1
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or len(word) < 2:
            continue
        letter = word[1]
        if letter not in with_value and letter not in other_with_value:
            continue
        value = word[2:]
        if not value and i < len(argv):
            value = argv[i]
            i += 1
        if letter not in with_value:
            continue
        key = with_value[letter]
        if isinstance(result[key], list):
            result[key].append(value)
        else:
            result[key] = value
    return result


def compiled_defaults(binary: str, run: Runner | None = None) -> dict:
    """``<binary> -V``'s compiled-in settings: {"HTTPD_ROOT": ..., "SERVER_CONFIG_FILE": ..., ...}.

    Falls back to the distribution layout when the binary cannot be run (empty dict if unknown).
    """
    run = run or default_runner
    values: dict = {}
    try:
        _rc, out, _err = run([binary, "-V"])
    except OSError:
        out = ""
    # -V prints the settings even when it also complains about the config, so the exit code is ignored.
    for line in (out or "").splitlines():
        match = _DEFINE_RE.match(line)
        if match and match.group(2) is not None:
            values[match.group(1)] = match.group(2)
    if "HTTPD_ROOT" not in values or "SERVER_CONFIG_FILE" not in values:
        fallback = FALLBACK_DEFAULTS.get(_family(binary), {})
        for key, value in fallback.items():
            values.setdefault(key, value)
    return values


def binary_facts(binary: str | None, run: Runner | None = None) -> tuple[str | None, list[str] | None]:
    """(version, compiled-in modules) of an httpd binary, from ``-v`` and ``-l``; (None, None) without one."""
    if not binary:
        return None, None
    run = run or default_runner
    try:
        _rc, out, _err = run([binary, "-v"])
    except OSError:
        out = ""
    match = _SERVER_VERSION_RE.search(out or "")
    if not match:
        return None, None
    try:
        _rc, out, _err = run([binary, "-l"])
    except OSError:
        out = ""
    modules = [line.strip() for line in (out or "").splitlines() if line.strip().endswith(".c")]
    return match.group(1), modules or None


def binary_for_config(config: str, search_path: str | None = None) -> str | None:
    """The binary that would serve a configuration found by path: ``apache2`` for ``apache2.conf``, else
    ``httpd``, else whichever is there."""
    found = find_binaries(search_path)
    wanted = "apache2" if "apache2" in os.path.basename(config) or "/apache2/" in config else "httpd"
    return next((b for b in found if _family(b) == wanted), found[0] if found else None)


def _family(binary: str) -> str:
    match = _BINARY_RE.match(os.path.basename(binary))
    return match.group(1) if match else ""


def _resolve_config(server_root: str | None, config: str | None, defaults: Mapping[str, str]) -> tuple[str, str]:
    root = server_root or defaults.get("HTTPD_ROOT") or "/"
    path = config or defaults.get("SERVER_CONFIG_FILE") or "conf/httpd.conf"
    if not os.path.isabs(path):
        path = os.path.join(root, path)
    return os.path.normpath(root), os.path.normpath(path)


def find_binaries(search_path: str | None = None, names: Iterable[str] = BINARY_NAMES) -> list[str]:
    """``which httpd apache2`` over PATH and `EXTRA_BIN_DIRS`: every distinct executable, PATH order."""
    if search_path is None:
        search_path = os.environ.get("PATH", "")
    dirs = [d for d in search_path.split(os.pathsep) if d] + list(EXTRA_BIN_DIRS)
    found: list[str] = []
    seen: set[str] = set()
    for name in names:
        for directory in dirs:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                real = os.path.realpath(candidate)
                if real not in seen:
                    seen.add(real)
                    found.append(candidate)
    return found


def _read_proc(proc_root: str, pid: str, name: str) -> bytes | None:
    try:
        with open(os.path.join(proc_root, pid, name), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _argv(proc_root: str, pid: str) -> list[str]:
    data = _read_proc(proc_root, pid, "cmdline")
    if not data:
        return []
    return [part.decode("utf-8", "replace") for part in data.split(b"\0") if part]


def _ppid(proc_root: str, pid: str) -> str | None:
    data = _read_proc(proc_root, pid, "stat")
    if not data:
        return None
    # The command name in parentheses may itself hold spaces or ")"; fields resume after the last ")".
    fields = data.decode("utf-8", "replace").rsplit(")", 1)[-1].split()
    return fields[1] if len(fields) > 1 else None


def _is_httpd(argv: list[str]) -> bool:
    return bool(argv) and _BINARY_RE.match(os.path.basename(argv[0])) is not None


def running_masters(proc_root: str = "/proc") -> list[dict]:
    """The httpd/apache2 master processes: [{pid, binary, argv, env}], lowest pid first.

    A master is an httpd process whose parent is not httpd (workers are its children). ``binary`` is
    the ``exe`` link when readable, else argv[0]; ``env`` is the process environment when readable
    (root or same user), else empty.
    """
    try:
        pids = sorted((p for p in os.listdir(proc_root) if p.isdigit()), key=int)
    except OSError:
        return []
    masters = []
    for pid in pids:
        argv = _argv(proc_root, pid)
        if not _is_httpd(argv):
            continue
        parent = _ppid(proc_root, pid)
        if parent and _is_httpd(_argv(proc_root, parent)):
            continue
        try:
            binary = os.readlink(os.path.join(proc_root, pid, "exe"))
        except OSError:
            binary = argv[0]
        if binary.endswith(" (deleted)"):  # the package was upgraded under the running server
            binary = binary[: -len(" (deleted)")]
        env: dict[str, str] = {}
        raw_env = _read_proc(proc_root, pid, "environ")
        for entry in (raw_env or b"").split(b"\0"):
            key, sep, value = entry.decode("utf-8", "replace").partition("=")
            if sep and key:
                env[key] = value
        masters.append({"pid": int(pid), "binary": binary, "argv": argv, "env": env})
    return masters


def read_envvars(server_root: str) -> dict[str, str]:
    """The variables Debian's ``<ServerRoot>/envvars`` exports (apache2ctl sources it before starting).

    Only plain ``[export] NAME=value`` lines with ``$NAME``/``${NAME}`` references are understood; a
    value using other shell expansions is left out rather than guessed.
    """
    values: dict[str, str] = {}
    try:
        with open(os.path.join(server_root, "envvars"), encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return values
    assign = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
    for line in lines:
        match = assign.match(line)
        if not match:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if re.search(r"\$\{[^}]*[^A-Za-z0-9_}][^}]*\}|`|\$\(", value):
            continue
        values[match.group(1)] = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), ""), value
        )
    return values


def _read_lines(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return None


def _expand(text: str, env: Mapping[str, str]) -> str:
    return _SHELL_VAR_RE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def read_environment_file(path: str) -> dict[str, str] | None:
    """A systemd ``EnvironmentFile`` (RHEL's ``/etc/sysconfig/httpd``): ``NAME=value`` lines, ``#``/``;``
    comments, quotes removed. None when the file cannot be read."""
    lines = _read_lines(path)
    if lines is None:
        return None
    values: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        name, value = line.split("=", 1)
        name = name.strip()
        if name.startswith("export "):
            name = name[len("export "):].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            values[name] = value
    return values


def _unit_files(unit: str, system_root: str) -> list[str]:
    """The unit file systemd would use, then its drop-ins (``<unit>.d/*.conf``, by file name)."""
    main = None
    drop_ins: dict[str, str] = {}
    for directory in UNIT_DIRS:
        base = os.path.join(system_root, directory)
        candidate = os.path.join(base, unit)
        if main is None and os.path.isfile(candidate):
            main = candidate
        try:
            names = sorted(os.listdir(candidate + ".d"))
        except OSError:
            names = []
        for name in names:
            if name.endswith(".conf"):
                drop_ins.setdefault(name, os.path.join(candidate + ".d", name))
    if main is None:
        return []
    return [main] + [drop_ins[name] for name in sorted(drop_ins)]


def _unit_settings(files: list[str]) -> tuple[list[str], list[str], str | None]:
    """(Environment= assignments, EnvironmentFile= paths, last ExecStart=) of a unit's [Service] section."""
    assignments: list[str] = []
    env_files: list[str] = []
    exec_start: str | None = None
    for path in files:
        section = ""
        for line in _read_lines(path) or []:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section != "[Service]" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "Environment":
                try:
                    words = shlex.split(value)
                except ValueError:
                    words = value.split()
                assignments = assignments + words if words else []  # an empty assignment resets the list
            elif key == "EnvironmentFile":
                env_files = env_files + [value] if value else []
            elif key == "ExecStart":
                exec_start = value or None
    return assignments, env_files, exec_start


def _defines_from_words(words: list[str]) -> list[str]:
    return parse_httpd_args(["httpd"] + words)["defines"]


def service_environment(
    family: str, server_root: str | None, system_root: str = "/"
) -> tuple[dict[str, str], list[str], list[str]]:
    """(environment, -D names, sources) httpd gets when its service starts it, for a server not running.

    ``family`` (``httpd`` or ``apache2``) says which unit is looked for first; ``system_root`` is ``/``
    except in tests. Sources are file paths, for the report; values may be secrets and stay out of it.
    """
    env: dict[str, str] = {}
    defines: list[str] = []
    sources: list[str] = []
    units = ["apache2.service", "httpd.service"] if family == "apache2" else ["httpd.service", "apache2.service"]
    unit_files: list[str] = []
    for unit in units:
        unit_files = _unit_files(unit, system_root)
        if unit_files:
            break
    if unit_files:
        assignments, env_files, exec_start = _unit_settings(unit_files)
        sources.extend(unit_files)
        for assignment in assignments:
            name, sep, value = assignment.partition("=")
            if sep and name:
                env[name] = value
        # systemd: EnvironmentFile= wins over Environment=; a leading "-" means the file may be missing.
        for entry in env_files:
            path = entry[1:] if entry.startswith("-") else entry
            values = read_environment_file(os.path.join(system_root, path.lstrip("/")))
            if values is not None:
                env.update(values)
                sources.append(path)
        if exec_start:
            try:
                words = shlex.split(_expand(exec_start.lstrip("-@:+!"), env))
            except ValueError:
                words = []
            if words and _BINARY_RE.match(os.path.basename(words[0])):
                defines.extend(_defines_from_words(words[1:]))
    else:
        values = read_environment_file(os.path.join(system_root, SYSCONFIG_HTTPD))
        if values is not None:
            env.update(values)
            sources.append("/" + SYSCONFIG_HTTPD)
            # The stock httpd.service runs "httpd $OPTIONS -DFOREGROUND".
            defines.extend(_defines_from_words(shlex.split(values.get("OPTIONS", ""))))
    if server_root:
        envvars = read_envvars(server_root)
        if envvars:
            # apache2ctl sources envvars last, over what the unit set; it passes $APACHE_ARGUMENTS to apache2.
            env.update(envvars)
            sources.append(os.path.join(server_root, "envvars"))
    if env.get("APACHE_ARGUMENTS"):
        defines.extend(_defines_from_words(shlex.split(env["APACHE_ARGUMENTS"])))
    return env, [d for i, d in enumerate(defines) if d not in defines[:i]], sources


def _explicit(path: str) -> ApacheInstance:
    path = os.path.normpath(os.path.abspath(path))
    if os.path.isdir(path):
        for name in _CONFIG_NAMES:
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return ApacheInstance(config=candidate, server_root=path)
        raise ApacheNotFoundError(f"{path} is a folder without httpd.conf, apache2.conf or conf/httpd.conf")
    return ApacheInstance(config=path)


def _with_service_environment(instance: ApacheInstance, system_root: str) -> ApacheInstance:
    # A running binary names its family; otherwise the configuration's name does (apache2.conf, httpd.conf).
    if instance.pid and instance.binary:
        family = _family(instance.binary)
    else:
        family = "apache2" if "apache2" in instance.config else "httpd"
    env, defines, sources = service_environment(family, instance.server_root, system_root)
    instance.env = env
    if instance.pid is None:
        # A running server's -D names are its command line's, which is always readable.
        instance.defines = instance.defines + [d for d in defines if d not in instance.defines]
    instance.env_sources = sources
    return instance


def locate_apache(
    explicit: str | None = None,
    proc_root: str = "/proc",
    run: Runner | None = None,
    search_path: str | None = None,
    source: str = "explicit",
    system_root: str = "/",
) -> list[ApacheInstance]:
    """Every Apache configuration to read on this host (see the module docstring for the order).

    ``explicit`` is a path given by the user (``source`` says where it came from, for the report). When
    a running master uses that same file, its pid, binary, ``-D`` names and environment are attached.
    Several masters with distinct configurations give several instances. Raises `ApacheNotFoundError`
    when nothing is found.
    """
    run = run or default_runner
    masters = running_masters(proc_root)
    instances: list[ApacheInstance] = []
    skipped: list[str] = []
    for master in masters:
        args = parse_httpd_args(master["argv"])
        defaults: Mapping[str, str] = {}
        if not args["server_root"] or not args["config"]:
            defaults = compiled_defaults(master["binary"], run)
        root, config = _resolve_config(args["server_root"], args["config"], defaults)
        if not os.path.isfile(config):
            # Seen from here the file is not there (another mount namespace, a container): not ours to read.
            skipped.append(f"pid {master['pid']}: {config}")
            continue
        if any(i.config == config and i.defines == args["defines"] for i in instances):
            continue
        instance = ApacheInstance(
            config=config,
            server_root=root,
            binary=master["binary"],
            pid=master["pid"],
            defines=args["defines"],
            pre_directives=args["pre"],
            post_directives=args["post"],
            source="process",
            env=master["env"],
            env_sources=[f"/proc/{master['pid']}/environ"] if master["env"] else [],
        )
        if not master["env"]:
            # Not readable (another user's process, without become): what its service would give it.
            _with_service_environment(instance, system_root)
        instances.append(instance)

    if explicit:
        wanted = _explicit(explicit)
        for instance in instances:
            if os.path.realpath(instance.config) == os.path.realpath(wanted.config):
                instance.source = source
                return [instance]
        wanted.server_root = wanted.server_root or os.path.dirname(wanted.config)
        wanted.binary = binary_for_config(wanted.config, search_path)
        wanted.source = source
        return [_with_service_environment(wanted, system_root)]

    if instances:
        return instances

    tried = []
    for binary in find_binaries(search_path):
        defaults = compiled_defaults(binary, run)
        root, config = _resolve_config(None, None, defaults)
        tried.append(f"{binary} -> {config}")
        if not os.path.isfile(config) or any(i.config == config for i in instances):
            continue
        instance = ApacheInstance(config=config, server_root=root, binary=binary, source="binary")
        instances.append(_with_service_environment(instance, system_root))
    if instances:
        return instances

    detail = []
    if skipped:
        detail.append("running httpd with unreadable config: " + ", ".join(skipped))
    if tried:
        detail.append("binaries whose config is missing: " + ", ".join(tried))
    if not masters and not tried:
        detail.append("no running httpd/apache2 process and no httpd/apache2 binary on the PATH")
    raise ApacheNotFoundError(f"no Apache configuration found ({'; '.join(detail)})")
