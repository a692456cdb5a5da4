# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an Apache httpd configuration the way httpd itself reads it, as far as site discovery needs.

Pure standard library, Python 3.8 compatible: modules ship this file to managed hosts, where only the
system python3 may exist; the controller side (inventory plugin, CLI) imports the same file.

What it follows, in httpd's own order (one pass, so a ``Define`` or ``LoadModule`` only affects the lines
after it, as in httpd):

* ``Include`` / ``IncludeOptional`` of files, directories (recursively, sorted) and globs, relative paths
  against the current ``ServerRoot``; a missing ``Include`` target is an error, a missing
  ``IncludeOptional`` one is not;
* ``Define`` / ``UnDefine``, ``-D`` names given by the caller, and ``${VAR}`` (Defines first, then the
  environment given by the caller; an unknown variable stays literal, with a warning, as httpd does);
* quoting and backslash escapes as ``ap_getword_conf`` does; a backslash as the very last character
  continues the line (a comment too swallows its continuation, as in httpd);
* ``<IfDefine>``, ``<IfModule>``, ``<IfFile>``, ``<IfVersion>``, ``<IfDirective>`` and ``<IfSection>`` are
  evaluated (``!`` negation included) against what the server really has: the ``LoadModule`` lines read
  so far plus the modules compiled into the binary (its ``-l``), and the binary's version (its ``-v``).
  A false branch is skipped unread, as httpd skips it; a vhost inside it is listed in
  ``skipped_vhosts`` with the reason. Without a version, an ``<IfVersion>`` block is skipped with a
  warning rather than guessed;
* ``<Macro>`` / ``Use`` (mod_macro), since some installs stamp their vhosts out of one macro;
* ``<VirtualHost>`` with its addresses, and inside it ``ServerName``, ``ServerAlias``, ``DocumentRoot``,
  ``PassengerAppRoot``, ``SSLEngine`` and whole-site redirects (``Redirect``, ``RedirectMatch``,
  ``RewriteRule`` to an absolute URL);
* from the main server: ``ServerRoot``, ``ServerName``, ``Listen``, ``PidFile``.

Any structural problem (unclosed or mismatched section, unreadable file, missing Include) raises
`ApacheConfigError`, whose message starts with ``file:line:``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ApacheConfig",
    "SkippedVirtualHost",
    "ApacheConfigError",
    "Address",
    "VirtualHost",
    "module_id",
    "parse_apache_config",
    "split_args",
]

# Modules every httpd that reads LoadModule has compiled in. When the binary's ``-l`` is unknown, only these
# count as built in (a distribution may compile in more, but guessing would invent sites).
ALWAYS_BUILTIN_MODULES = frozenset({"core_module", "http_module", "so_module"})
# Modules some distributions compile in (Debian's apache2 -l): without a binary, an <IfModule> on one of these
# is taken as false with a warning.
OFTEN_BUILTIN_MODULES = frozenset(
    {"log_config_module", "logio_module", "version_module", "unixd_module", "watchdog_module"}
)

# Directives of the core (core.c, http_core.c, mod_so, the MPM-common ones): <IfDirective> on them is true.
CORE_DIRECTIVES = frozenset(
    """
    acceptfilter acceptpathinfo accessfilename addcharset adddefaultcharset allowencodedslashes allowoverride
    allowoverridelist cgimapextension cgipassauth cgivar contentdigest defaultruntimedir defaulttype define
    documentroot enablemmap enablesendfile error errordocument errorlog errorlogformat extendedstatus
    fileetag flushmaxpipelined flushmaxthreshold forcetype gprofdir hostnamelookups httpprotocoloptions
    include includeoptional keepalive keepalivetimeout limitinternalrecursion limitrequestbody
    limitrequestfields limitrequestfieldsize limitrequestline limitxmlrequestbody loglevel maxkeepaliverequests
    maxrangeoverlaps maxrangereversals maxranges mergeslashes mergetrailers mutex namevirtualhost options
    protocol protocols protocolshonororder qualifyredirecturl readbuffersize regexdefaultoptions
    registerhttpmethod rlimitcpu rlimitmem rlimitnproc scriptinterpretersource seerequesttail serveradmin
    serveralias servername serverpath serverroot serversignature servertokens sethandler setinputfilter
    setoutputfilter stricthostcheck timeout traceenable undefine usecanonicalname usecanonicalphysicalport
    loadmodule loadfile pidfile listen listenbacklog listencoresbucketsratio maxconnectionsperchild
    maxmemfree maxrequestworkers maxsparethreads minsparethreads maxsparseservers maxspareservers
    minspareservers receivebuffersize sendbuffersize serverlimit startservers threadlimit threadsperchild
    threadstacksize coredumpdirectory enableexceptionhook gracefulshutdowntimeout scoreboardfile
    asyncrequestworkerfactor maxrequestsperchild
    """.split()
)
# Sections of the core: <IfSection> on them is true.
CORE_SECTIONS = frozenset(
    """
    directory directorymatch files filesmatch location locationmatch virtualhost limit limitexcept if elseif
    else ifmodule ifdefine iffile ifdirective ifsection
    """.split()
)
# Which module provides a section, for <IfSection>.
SECTION_MODULES = {
    "ifversion": "version_module",
    "macro": "macro_module",
    "proxy": "proxy_module",
    "proxymatch": "proxy_module",
    "requireall": "authz_core_module",
    "requireany": "authz_core_module",
    "requirenone": "authz_core_module",
    "authzprovideralias": "authz_core_module",
    "authnprovideralias": "authn_core_module",
    "mdomain": "md_module",
    "mdomainset": "md_module",
}
# Which module provides a directive, for <IfDirective>: exact names, then name prefixes.
DIRECTIVE_MODULES = {
    "use": "macro_module",
    "undefmacro": "macro_module",
    "alias": "alias_module",
    "aliasmatch": "alias_module",
    "redirect": "alias_module",
    "redirectmatch": "alias_module",
    "redirectpermanent": "alias_module",
    "redirecttemp": "alias_module",
    "scriptalias": "alias_module",
    "scriptaliasmatch": "alias_module",
    "require": "authz_core_module",
    "authname": "authn_core_module",
    "authtype": "authn_core_module",
    "header": "headers_module",
    "requestheader": "headers_module",
    "directoryindex": "dir_module",
    "directoryslash": "dir_module",
    "fallbackresource": "dir_module",
    "addtype": "mime_module",
    "addhandler": "mime_module",
    "typesconfig": "mime_module",
    "setenvif": "setenvif_module",
    "browsermatch": "setenvif_module",
    "setenv": "env_module",
    "passenv": "env_module",
    "unsetenv": "env_module",
    "customlog": "log_config_module",
    "logformat": "log_config_module",
    "transferlog": "log_config_module",
    "bufferedlogs": "log_config_module",
    "globallog": "log_config_module",
    "user": "unixd_module",
    "group": "unixd_module",
    "chrootdir": "unixd_module",
    "suexec": "unixd_module",
    "expiresactive": "expires_module",
    "expiresbytype": "expires_module",
    "expiresdefault": "expires_module",
    "balancermember": "proxy_module",
    "xsendfile": "xsendfile_module",
    "xsendfilepath": "xsendfile_module",
}
DIRECTIVE_PREFIXES = (
    ("passenger", "passenger_module"),
    ("ssl", "ssl_module"),
    ("rewrite", "rewrite_module"),
    ("proxy", "proxy_module"),
    ("wsgi", "wsgi_module"),
    ("php_", "php_module"),
    ("deflate", "deflate_module"),
    ("authzldap", "authnz_ldap_module"),
    ("authldap", "authnz_ldap_module"),
    ("authuserfile", "authn_file_module"),
    ("md", "md_module"),
    ("h2", "http2_module"),
)

# Sections that only decide whether their content is read: a directive inside them still belongs to the
# enclosing server or vhost. Every other section (<Directory>, <Location>, <If>...) narrows the scope.
_CONDITIONAL_SECTIONS = frozenset({"ifmodule", "ifdefine", "iffile", "ifversion", "ifdirective", "ifsection"})

_VERSION_OPERATORS = frozenset({"=", "==", "<", "<=", ">", ">=", "~"})
_VAR_RE = re.compile(r"\$\{([^{}]+)\}")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_REDIRECT_STATUS = frozenset({"permanent", "temp", "seeother", "gone"})
_MAX_INCLUDE_DEPTH = 128  # httpd's own limit on nested Includes


class ApacheConfigError(Exception):
    """A configuration httpd itself would refuse, or one we cannot read; names the file and line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


@dataclass
class Address:
    """One ``<VirtualHost>`` address: ``*:443`` is ``Address("*", 443)``; no or ``*`` port is None."""

    host: str
    port: int | None = None

    def to_dict(self) -> dict:
        return {"host": self.host, "port": self.port}


@dataclass
class VirtualHost:
    """What discovery needs of one ``<VirtualHost>`` section, with where it was defined."""

    file: str
    line: int
    addresses: list[Address] = field(default_factory=list)
    server_name: str | None = None
    server_aliases: list[str] = field(default_factory=list)
    document_root: str | None = None
    passenger_app_root: str | None = None
    ssl: bool = False
    # Absolute target URLs of redirects that cover the whole site (a port-80 "go to https" twin has one).
    redirects: list[str] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return sorted({a.port for a in self.addresses if a.port is not None})

    @property
    def names(self) -> list[str]:
        """ServerName then the aliases, without duplicates."""
        out: list[str] = []
        for name in [self.server_name] + list(self.server_aliases):
            if name and name not in out:
                out.append(name)
        return out

    @property
    def redirects_to_https(self) -> bool:
        return any(url.lower().startswith("https://") for url in self.redirects)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "addresses": [a.to_dict() for a in self.addresses],
            "ports": self.ports,
            "server_name": self.server_name,
            "server_aliases": list(self.server_aliases),
            "document_root": self.document_root,
            "passenger_app_root": self.passenger_app_root,
            "ssl": self.ssl,
            "redirects": list(self.redirects),
        }


@dataclass
class SkippedVirtualHost:
    """A ``<VirtualHost>`` httpd does not load (it sits in a false conditional section), and why.

    Its directives are as written (never evaluated, as httpd never reads them); ``reason`` names the section.
    """

    file: str
    line: int
    reason: str
    server_name: str | None = None
    document_root: str | None = None
    passenger_app_root: str | None = None

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "reason": self.reason,
            "server_name": self.server_name,
            "document_root": self.document_root,
            "passenger_app_root": self.passenger_app_root,
        }


@dataclass
class ApacheConfig:
    """The parsed configuration: main-server facts, every vhost, and what was read."""

    config_file: str
    server_root: str
    server_name: str | None = None
    listen: list[dict] = field(default_factory=list)
    pid_file: str | None = None
    defines: dict[str, str | None] = field(default_factory=dict)
    modules: set[str] = field(default_factory=set)
    vhosts: list[VirtualHost] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The binary's version (``-v``) and compiled-in modules (``-l``), None when no binary was there.
    version: str | None = None
    compiled_modules: set[str] | None = None
    skipped_vhosts: list[SkippedVirtualHost] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "config_file": self.config_file,
            "server_root": self.server_root,
            "server_name": self.server_name,
            "listen": [dict(entry) for entry in self.listen],
            "pid_file": self.pid_file,
            "defines": dict(self.defines),
            "modules": sorted(self.modules),
            "vhosts": [v.to_dict() for v in self.vhosts],
            "files": list(self.files),
            "warnings": list(self.warnings),
            "version": self.version,
            "skipped_vhosts": [v.to_dict() for v in self.skipped_vhosts],
        }


def module_id(name: str) -> str:
    """Normalise an <IfModule>/LoadModule name: ``mod_ssl.c`` and ``ssl_module`` both give ``ssl_module``."""
    name = name.strip()
    if name.endswith(".c"):
        base = name[:-2]
        if base.startswith("mod_"):
            base = base[4:]
        elif base == "http_core":  # the one built-in whose source file and module name disagree
            base = "http"
        return base + "_module"
    return name


def split_args(text: str) -> list[str]:
    """Split a directive line into words like httpd's ``ap_getword_conf``.

    A word is quoted with ``"`` or ``'`` (inside, a backslash escapes the quote or a backslash), or runs
    to the next whitespace (where ``\\\\`` still means one backslash). An unclosed quote runs to the end.
    """
    if '"' not in text and "'" not in text and "\\" not in text:
        return text.split()  # the common line: no quoting, so words are what lies between whitespace
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return words
        quote = text[i] if text[i] in "\"'" else ""
        if quote:
            i += 1
        buf: list[str] = []
        while i < n:
            ch = text[i]
            if quote and ch == quote:
                i += 1
                break
            if not quote and ch.isspace():
                break
            if ch == "\\" and i + 1 < n and (text[i + 1] == "\\" or (quote and text[i + 1] == quote)):
                buf.append(text[i + 1])
                i += 2
                continue
            buf.append(ch)
            i += 1
        words.append("".join(buf))


def _read_text(path: str) -> str:
    # One place that touches the disk for config text, so tests can make a file unreadable.
    with open(path, "rb") as handle:
        data = handle.read()
    return data.decode("utf-8", errors="replace")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of each logical line, joining backslash continuations.

    Line numbers are those of the first physical line, which is where a reader looks for a vhost.
    Comments and blank lines are dropped here; a comment ending in a backslash swallows the next line,
    exactly as in httpd.
    """
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = "".join(pending).strip()
        pending = []
        if line and not line.startswith("#"):
            out.append((start, line))
    if pending:
        line = "".join(pending).strip()
        if line and not line.startswith("#"):
            out.append((start, line))
    return out


def _section_tag(line: str, path: str, lineno: int) -> tuple[str, str]:
    """``<VirtualHost *:80>`` -> ("virtualhost", "*:80"); ``</VirtualHost>`` -> ("/virtualhost", "")."""
    end = line.rfind(">")
    if end < 0:
        name = line[1:].split(None, 1)[0] if len(line) > 1 else ""
        raise ApacheConfigError(f"<{name.lstrip('/')}> directive missing closing '>'", path, lineno)
    inner = line[1:end].strip()
    parts = inner.split(None, 1)
    name = parts[0].lower() if parts else ""
    if not name or name == "/":
        raise ApacheConfigError(f"empty section tag {line!r}", path, lineno)
    return name, parts[1] if len(parts) > 1 else ""


def _parse_address(text: str) -> Address:
    host, port = text, None
    if text.startswith("["):
        close = text.find("]")
        if close > 0:
            host = text[: close + 1]
            rest = text[close + 1 :]
            port = _port(rest[1:]) if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port_text = text.split(":", 1)
        port = _port(port_text)
    return Address(host, port)


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _parse_listen(args: list[str]) -> dict:
    address: str | None = None
    spec = args[0]
    if spec.isdigit():
        port: int | None = int(spec)
    else:
        parsed = _parse_address(spec)
        address, port = parsed.host, parsed.port
    return {"address": address, "port": port, "protocol": args[1].lower() if len(args) > 1 else None}


def _host_name(text: str) -> str:
    """``https://Prod.Example.com:443`` -> ``prod.example.com`` (ServerName accepts scheme and port)."""
    text = text.strip()
    if "${" in text:  # an undefined variable, kept as written for the report
        return text
    if "://" in text:
        text = text.split("://", 1)[1]
    if text.startswith("["):
        return text[: text.find("]") + 1].lower() if "]" in text else text.lower()
    return text.split(":", 1)[0].rstrip(".").lower()


def _covers_root(pattern: str) -> bool:
    """Whether a RedirectMatch/RewriteRule pattern matches the site root (i.e. redirects everything)."""
    if pattern.startswith("!"):
        return False
    try:
        return re.search(pattern, "/") is not None
    except re.error:
        return False


@dataclass
class _Section:
    name: str
    path: str
    line: int
    vhost: VirtualHost | None = None


@dataclass
class _Macro:
    name: str
    params: list[str]
    body: list[tuple[int, str]]
    path: str
    line: int


class _Cursor:
    """Walks one file's (or one macro expansion's) logical lines; sections may skip ahead."""

    def __init__(self, path: str, lines: list[tuple[int, str]]) -> None:
        self.path = path
        self.lines = lines
        self.index = 0

    def next(self) -> tuple[int, str] | None:
        if self.index >= len(self.lines):
            return None
        item = self.lines[self.index]
        self.index += 1
        return item


class _Reader:
    def __init__(
        self,
        config_file: str,
        server_root: str,
        defines: Iterable[str],
        env: Mapping[str, str],
        version: str | None = None,
        compiled_modules: Iterable[str] | None = None,
    ) -> None:
        self.config = ApacheConfig(config_file=config_file, server_root=server_root, version=version)
        if compiled_modules is not None:
            self.config.compiled_modules = {module_id(m) for m in compiled_modules} | ALWAYS_BUILTIN_MODULES
        for name in defines:
            self.config.defines[name] = None
        self.env = env
        self.stack: list[_Section] = []
        self.macros: dict[str, _Macro] = {}
        self.open_files: list[str] = []
        self.macro_depth = 0
        self.warned: set[str] = set()

    # -- paths ---------------------------------------------------------------------------------------
    def server_relative(self, path: str) -> str:
        if os.path.isabs(path):
            return os.path.normpath(path)
        return os.path.normpath(os.path.join(self.config.server_root, path))

    def code_path(self, path: str) -> str:
        """A vhost's DocumentRoot/PassengerAppRoot; one with an undefined ${VAR} stays as written, so the
        report names the variable rather than a path glued to the ServerRoot."""
        return path if "${" in path else self.server_relative(path)

    def warn(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            self.config.warnings.append(message)

    # -- reading -------------------------------------------------------------------------------------
    def read_file(self, path: str, origin: tuple[str, int] | None = None) -> None:
        key = os.path.abspath(path)
        where = origin or (None, None)
        if key in self.open_files:
            raise ApacheConfigError(f"Include loop: {path} includes itself", *where)
        if len(self.open_files) >= _MAX_INCLUDE_DEPTH:
            raise ApacheConfigError(f"more than {_MAX_INCLUDE_DEPTH} nested Includes", *where)
        try:
            text = _read_text(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if origin:
                raise ApacheConfigError(f"cannot read {path}: {reason}", *origin) from None
            raise ApacheConfigError(f"cannot read the configuration: {reason}", path) from None
        self.config.files.append(path)
        self.open_files.append(key)
        try:
            self.run(_Cursor(path, _logical_lines(text)))
        finally:
            self.open_files.pop()

    def run(self, cursor: _Cursor) -> None:
        # Sections must close in the file (or macro) that opened them, as httpd requires.
        base = len(self.stack)
        while True:
            item = cursor.next()
            if item is None:
                break
            lineno, raw = item
            line = self.substitute(raw, cursor.path, lineno)
            if line.startswith("<"):
                self.section(cursor, line, lineno, base)
            else:
                words = split_args(line)
                if words:
                    self.directive(cursor, words[0].lower(), words[1:], lineno)
        if len(self.stack) > base:
            top = self.stack[-1]
            raise ApacheConfigError(f"<{top.name}> was not closed", top.path, top.line)

    def substitute(self, line: str, path: str, lineno: int) -> str:
        def value(match: re.Match) -> str:
            name = match.group(1)
            if self.config.defines.get(name) is not None:
                return self.config.defines[name] or ""
            if name in self.env:
                return self.env[name]
            self.warn(f"{path}:{lineno}: variable ${{{name}}} is not defined")
            return match.group(0)

        return _VAR_RE.sub(value, line) if "${" in line else line

    # -- sections ------------------------------------------------------------------------------------
    def section(self, cursor: _Cursor, line: str, lineno: int, base: int) -> None:
        path = cursor.path
        name, arg_text = _section_tag(line, path, lineno)
        # The tag as written, for messages: "<VirtualHost", "</Directory>" -> "VirtualHost", "Directory".
        original = line[1:].split(None, 1)[0].rstrip(">").lstrip("/")
        if name.startswith("/"):
            if len(self.stack) <= base:
                raise ApacheConfigError(f"</{original}> without matching <{original}> section", path, lineno)
            top = self.stack[-1]
            if top.name.lower() != name[1:]:
                raise ApacheConfigError(f"Expected </{top.name}> but saw </{original}>", path, lineno)
            self.stack.pop()
            return
        args = split_args(arg_text)
        if name == "macro":
            self.define_macro(cursor, args, lineno)
            return
        if name in _CONDITIONAL_SECTIONS:
            false_because = self.condition(name, args, path, lineno)
            if false_because is not None:
                reason = f"inside <{original} {arg_text.strip()}> at {path}:{lineno}, {false_because}"
                self.skip(cursor, original, lineno, reason)
                return
        vhost = None
        if name == "virtualhost":
            if self.current_vhost() is not None:
                raise ApacheConfigError("<VirtualHost> cannot occur within <VirtualHost> section", path, lineno)
            if not args:
                raise ApacheConfigError("<VirtualHost> needs at least one address", path, lineno)
            vhost = VirtualHost(file=path, line=lineno, addresses=[_parse_address(a) for a in args])
            self.config.vhosts.append(vhost)
        self.stack.append(_Section(original, path, lineno, vhost))

    def condition(self, name: str, args: list[str], path: str, lineno: int) -> str | None:
        """None when the section's content is read, else why it is not (for the skipped vhosts' reason)."""
        if not args:
            raise ApacheConfigError(f"<{name}> needs an argument", path, lineno)
        if name == "ifversion":
            return self.version_condition(args, path, lineno)
        arg = args[0]
        negate = arg.startswith("!")
        if negate:
            arg = arg[1:]
        if name == "ifdefine":
            result, what = arg in self.config.defines, f"{arg} is {'' if arg in self.config.defines else 'not '}defined"
        elif name == "ifmodule":
            result = self.has_module(module_id(arg))
            if not result and self.config.compiled_modules is None and module_id(arg) in OFTEN_BUILTIN_MODULES:
                self.warn(
                    f"{path}:{lineno}: <IfModule {arg}> taken as false: no httpd/apache2 binary (-l) to tell "
                    "whether it is compiled in"
                )
            what = f"{arg} is {'' if result else 'not '}loaded"
        elif name == "ifdirective":
            result = self.has_directive(arg.lower(), path, lineno)
            what = f"no loaded module provides {arg}" if not result else f"{arg} is available"
        elif name == "ifsection":
            result = self.has_section(arg.lower())
            what = f"no loaded module provides <{arg}>" if not result else f"<{arg}> is available"
        else:
            target = self.server_relative(arg)
            result = os.path.exists(target)
            what = f"{target} {'exists' if result else 'does not exist'}"
        return None if result != negate else f"false: {what}"

    def has_module(self, ident: str) -> bool:
        if ident in self.config.modules or ident in ALWAYS_BUILTIN_MODULES:
            return True
        if self.config.compiled_modules is None:
            return False
        return ident in self.config.compiled_modules

    def has_directive(self, name: str, path: str, lineno: int) -> bool:
        if name in CORE_DIRECTIVES:
            return True
        provider = DIRECTIVE_MODULES.get(name)
        if provider is None:
            provider = next((module for prefix, module in DIRECTIVE_PREFIXES if name.startswith(prefix)), None)
        if provider is None:
            self.warn(f"{path}:{lineno}: cannot tell which module provides {name}; <IfDirective> taken as false")
            return False
        return self.has_module(provider)

    def has_section(self, name: str) -> bool:
        if name in CORE_SECTIONS:
            return True
        provider = SECTION_MODULES.get(name)
        return provider is not None and self.has_module(provider)

    def version_condition(self, args: list[str], path: str, lineno: int) -> str | None:
        """``<IfVersion [[!]operator] version>`` as mod_version evaluates it, against the binary's version."""
        operator, wanted = ("=", args[0]) if len(args) == 1 else (args[0], args[1])
        negate = operator.startswith("!")
        if negate:
            operator = operator[1:]
        if operator not in _VERSION_OPERATORS:
            raise ApacheConfigError(f"unrecognized operator '{args[0]}' in <IfVersion>", path, lineno)
        if len(wanted) > 1 and wanted.startswith("/") and wanted.endswith("/") and operator in ("=", "=="):
            operator, wanted = "~", wanted[1:-1]
        version = self.config.version
        if version is None:
            self.warn(
                f"{path}:{lineno}: <IfVersion {' '.join(args)}> not evaluated: no httpd/apache2 binary to read "
                "the version from; its content is skipped"
            )
            return "not evaluated: no httpd/apache2 binary to read the version from"
        if operator == "~":
            try:
                result = re.search(wanted, version) is not None
            except re.error as exc:
                raise ApacheConfigError(f"<IfVersion> regular expression {wanted}: {exc}", path, lineno) from None
        else:
            have, want = _version_tuple(version), _version_tuple(wanted)
            if want is None:
                raise ApacheConfigError(f"<IfVersion> cannot read version {wanted}", path, lineno)
            result = {
                "=": have == want,
                "==": have == want,
                "<": have < want,
                "<=": have <= want,
                ">": have > want,
                ">=": have >= want,
            }[operator]
        return None if result != negate else f"false for Apache {version}"

    def skip(self, cursor: _Cursor, opened: str, lineno: int, reason: str) -> None:
        """Skip a false conditional unread (no variables, no Includes), keeping track of nesting.

        The vhosts in it (macro ``Use``s included) are noted, with their names and folders as written, so a
        user can see why a site they expected is not there.
        """
        names = [opened]
        body: list[tuple[int, str]] = []
        while names:
            item = cursor.next()
            if item is None:
                raise ApacheConfigError(f"<{opened}> was not closed", cursor.path, lineno)
            inner_line_no, text = item
            if text.startswith("</"):
                closing = text[2:].split(None, 1)[0].rstrip(">") if len(text) > 2 else ""
                if closing.lower() != names[-1].lower():
                    raise ApacheConfigError(f"Expected </{names[-1]}> but saw </{closing}>", cursor.path, inner_line_no)
                names.pop()
            elif text.startswith("<"):
                names.append(text[1:].split(None, 1)[0].rstrip(">"))
            body.append(item)
        self.note_skipped(body, cursor.path, reason)

    def note_skipped(self, lines: list[tuple[int, str]], path: str, reason: str, at_line: int | None = None) -> None:
        current: SkippedVirtualHost | None = None
        depth = 0  # sections open inside the current vhost
        for lineno, raw in lines:
            text = self.quiet_substitute(raw)
            low = text.lower()
            if low.startswith("<virtualhost"):
                current, depth = SkippedVirtualHost(file=path, line=at_line or lineno, reason=reason), 0
                self.config.skipped_vhosts.append(current)
                continue
            if low.startswith("</virtualhost"):
                current = None
                continue
            words = split_args(text) if not low.startswith("<") else []
            if current is None:
                if len(words) > 1 and words[0].lower() == "use" and words[1].lower() in self.macros:
                    macro = self.macros[words[1].lower()]
                    if len(words) - 2 == len(macro.params):
                        self.note_skipped(_expand_macro(macro, words[2:], lineno), path, reason, at_line or lineno)
                continue
            if low.startswith("</"):
                depth -= 1
            elif low.startswith("<"):
                depth += 1
            elif len(words) > 1:
                key = words[0].lower()
                if key == "servername" and depth == 0:
                    current.server_name = _host_name(words[1])
                elif key == "documentroot" and depth == 0:
                    current.document_root = self.code_path(words[1])
                elif key == "passengerapproot" and (depth == 0 or current.passenger_app_root is None):
                    current.passenger_app_root = self.code_path(words[1])

    def quiet_substitute(self, line: str) -> str:
        """``${VAR}`` replaced where known, without warnings: for reporting lines httpd does not read."""

        def value(match: re.Match) -> str:
            name = match.group(1)
            if self.config.defines.get(name) is not None:
                return self.config.defines[name] or ""
            return self.env.get(name, match.group(0))

        return _VAR_RE.sub(value, line) if "${" in line else line

    def define_macro(self, cursor: _Cursor, args: list[str], lineno: int) -> None:
        if not args:
            raise ApacheConfigError("<Macro> needs a name", cursor.path, lineno)
        body: list[tuple[int, str]] = []
        while True:
            item = cursor.next()
            if item is None:
                raise ApacheConfigError("<Macro> was not closed", cursor.path, lineno)
            if item[1].lower().startswith("</macro"):
                break
            if item[1].lower().startswith("<macro"):
                raise ApacheConfigError("<Macro> cannot be nested", cursor.path, item[0])
            body.append(item)
        self.macros[args[0].lower()] = _Macro(args[0], args[1:], body, cursor.path, lineno)

    def use_macro(self, cursor: _Cursor, args: list[str], lineno: int) -> None:
        if not args or args[0].lower() not in self.macros:
            raise ApacheConfigError("Use of undefined macro %s" % (args[0] if args else "''"), cursor.path, lineno)
        macro = self.macros[args[0].lower()]
        values = args[1:]
        if len(values) != len(macro.params):
            raise ApacheConfigError(
                f"macro {macro.name} takes {len(macro.params)} arguments, {len(values)} given",
                cursor.path,
                lineno,
            )
        if self.macro_depth >= 32:
            raise ApacheConfigError(f"macro {macro.name} expands recursively", cursor.path, lineno)
        expanded = _expand_macro(macro, values, lineno)
        self.macro_depth += 1
        try:
            self.run(_Cursor(cursor.path, expanded))
        finally:
            self.macro_depth -= 1

    # -- directives ----------------------------------------------------------------------------------
    def current_vhost(self) -> VirtualHost | None:
        for section in reversed(self.stack):
            if section.vhost is not None:
                return section.vhost
        return None

    def scope(self) -> tuple[VirtualHost | None, bool]:
        """(enclosing vhost or None for the main server, whether the directive is at that level)."""
        top_level = True
        for section in reversed(self.stack):
            if section.vhost is not None:
                return section.vhost, top_level
            if section.name.lower() not in _CONDITIONAL_SECTIONS:
                top_level = False
        return None, top_level

    def directive(self, cursor: _Cursor, name: str, args: list[str], lineno: int) -> None:
        path = cursor.path
        config = self.config
        if name in ("include", "includeoptional"):
            if not args:
                raise ApacheConfigError(f"{name} needs a path", path, lineno)
            self.include(args[0], optional=name == "includeoptional", origin=(path, lineno))
            return
        if name == "use":
            self.use_macro(cursor, args, lineno)
            return
        if name == "undefmacro":
            if args:
                self.macros.pop(args[0].lower(), None)
            return
        if name == "define":
            if not args:
                raise ApacheConfigError("Define needs a name", path, lineno)
            config.defines[args[0]] = args[1] if len(args) > 1 else config.defines.get(args[0])
            return
        if name == "undefine":
            if args:
                config.defines.pop(args[0], None)
            return
        if name == "loadmodule":
            if args:
                config.modules.add(module_id(args[0]))
            return

        vhost, top_level = self.scope()
        if vhost is None:
            self.main_directive(name, args, top_level)
        elif name == "passengerapproot" and args:
            # Passenger accepts this in <Directory>/<Location> too; the vhost-level one wins.
            if top_level or vhost.passenger_app_root is None:
                vhost.passenger_app_root = self.code_path(args[0])
        elif top_level:
            self.vhost_directive(vhost, name, args)

    def main_directive(self, name: str, args: list[str], top_level: bool) -> None:
        config = self.config
        if not args or not top_level:
            return
        if name == "serverroot":
            config.server_root = os.path.normpath(args[0])
        elif name == "servername":
            config.server_name = _host_name(args[0])
        elif name == "listen":
            config.listen.append(_parse_listen(args))
        elif name == "pidfile":
            # httpd resolves a relative PidFile against ServerRoot (not DefaultRuntimeDir); an unresolved
            # ${VAR} is kept as written rather than glued to a folder.
            config.pid_file = args[0] if "${" in args[0] else self.server_relative(args[0])

    def vhost_directive(self, vhost: VirtualHost, name: str, args: list[str]) -> None:
        if not args:
            return
        if name == "servername":
            vhost.server_name = _host_name(args[0])
        elif name == "serveralias":
            for alias in args:
                alias = alias.lower()
                if alias not in vhost.server_aliases:
                    vhost.server_aliases.append(alias)
        elif name == "documentroot":
            vhost.document_root = self.code_path(args[0])
        elif name == "sslengine":
            vhost.ssl = args[0].lower() == "on"
        elif name in ("redirect", "redirectpermanent", "redirecttemp"):
            words = list(args)
            if name == "redirect" and (words[0].lower() in _REDIRECT_STATUS or words[0].isdigit()):
                words = words[1:]
            if len(words) >= 2 and words[0] == "/" and _URL_RE.match(words[1]):
                vhost.redirects.append(words[1])
        elif name == "redirectmatch":
            words = list(args)
            if words[0].lower() in _REDIRECT_STATUS or words[0].isdigit():
                words = words[1:]
            if len(words) >= 2 and _URL_RE.match(words[1]) and _covers_root(words[0]):
                vhost.redirects.append(words[1])
        elif name == "rewriterule":
            flags = args[2].strip("[]").lower().split(",") if len(args) > 2 else []
            # [P] hands the request to a backend (the app process): a proxy, not a redirect.
            proxied = any(flag.strip() in ("p", "proxy") for flag in flags)
            if len(args) >= 2 and not proxied and _URL_RE.match(args[1]) and _covers_root(args[0]):
                vhost.redirects.append(args[1])

    def include(self, pattern: str, optional: bool, origin: tuple[str, int]) -> None:
        target = self.server_relative(pattern)
        directive = "IncludeOptional" if optional else "Include"
        if not _has_wildcard(target):
            if os.path.isdir(target):
                for path in _walk_dir(target):
                    self.read_file(path, origin)
            elif os.path.exists(target) or not optional:
                # A dangling symlink or missing file for a plain Include is httpd's error too.
                self.read_file(target, origin)
            return
        matches = _glob(target)
        if not matches and not optional:
            raise ApacheConfigError(f"{directive} {pattern}: no file matches the wildcard", *origin)
        for path in matches:
            if os.path.isdir(path):
                for inner in _walk_dir(path):
                    self.read_file(inner, origin)
            else:
                self.read_file(path, origin)


def _expand_macro(macro: _Macro, values: list[str], lineno: int) -> list[tuple[int, str]]:
    """The macro's body with its parameters replaced, every line at the ``Use`` line (where the vhost is)."""
    # Longest parameter first, so that $site does not eat the start of $site_dir.
    pairs = sorted(((p, values[i]) for i, p in enumerate(macro.params)), key=lambda pair: -len(pair[0]))
    expanded = []
    for _line, text in macro.body:
        for param, value in pairs:
            text = text.replace(param, value)
        expanded.append((lineno, text))
    return expanded


def _version_tuple(text: str) -> tuple[int, int, int] | None:
    """``2.4`` -> (2, 4, 0), as mod_version reads it: missing parts are 0."""
    match = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip())
    if not match:
        return None
    return (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))


def _has_wildcard(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _walk_dir(directory: str) -> list[str]:
    """Every file under a directory, sorted, recursively: what httpd reads for ``Include <dir>``."""
    out: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            out.extend(_walk_dir(path))
        else:
            out.append(path)
    return out


def _glob(pattern: str) -> list[str]:
    """Expand wildcards in any path component, sorted per level, skipping dot files unless asked for."""
    parts = pattern.split(os.sep)
    current = [os.sep] if pattern.startswith(os.sep) else [""]
    for part in parts:
        if not part:
            continue
        following: list[str] = []
        for base in current:
            if not _has_wildcard(part):
                candidate = os.path.join(base, part)
                if os.path.lexists(candidate):
                    following.append(candidate)
                continue
            try:
                names = sorted(os.listdir(base or "."))
            except OSError:
                continue
            for name in names:
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, part):
                    following.append(os.path.join(base, name))
        current = following
    return current


def parse_apache_config(
    config_file: str,
    server_root: str | None = None,
    defines: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    pre_directives: Iterable[str] = (),
    post_directives: Iterable[str] = (),
    version: str | None = None,
    compiled_modules: Iterable[str] | None = None,
) -> ApacheConfig:
    """Read the main configuration file and everything it includes.

    ``server_root`` is httpd's ``-d`` (or its compiled-in HTTPD_ROOT); without it, the folder of
    ``config_file`` stands in until a ``ServerRoot`` directive says otherwise. A relative ``config_file``
    is relative to the server root, as httpd's ``-f`` is. ``defines`` are ``-D`` names; ``env`` is the
    environment httpd runs with (for ``${VAR}`` not Define'd). ``pre_directives``/``post_directives``
    are httpd's ``-C``/``-c`` lines. ``version`` (``2.4.62``) and ``compiled_modules`` (``-l``: ``core.c``,
    ``mod_so.c``...) come from the binary; None when there is none (``<IfVersion>`` blocks are then skipped
    with a warning, and only core, http and so count as compiled in). Raises `ApacheConfigError`.
    """
    if server_root:
        server_root = os.path.normpath(server_root)
        if not os.path.isabs(config_file):
            config_file = os.path.join(server_root, config_file)
    config_file = os.path.normpath(os.path.abspath(config_file))
    if not server_root:
        server_root = os.path.dirname(config_file)
    reader = _Reader(config_file, server_root, defines, env or {}, version, compiled_modules)
    for label, lines in (("-C", pre_directives), (None, None), ("-c", post_directives)):
        if label is None:
            reader.read_file(config_file)
            continue
        numbered = [(i, text.strip()) for i, text in enumerate(lines or (), start=1) if text.strip()]
        if numbered:
            reader.run(_Cursor(f"<command line {label}>", numbered))
    return reader.config
