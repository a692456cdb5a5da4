# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site model: which vhosts are Flow Production Tracking sites, and what each site is.

Pure standard library, Python 3.8 compatible (shipped to managed hosts with the modules).

A site is a vhost whose code folder looks like a site dir: ``DocumentRoot <site_dir>/current/public`` or
``PassengerAppRoot <site_dir>/current`` (or ``<site_dir>``), where ``<site_dir>`` holds ``current`` and
``shared/``. One site dir is one site: its SSL vhost, a plain-HTTP vhost serving the same folder, and a
port-80 vhost that only redirects to it are merged.

A site is a plain dict (JSON-ready, the same from the module, the inventory plugin and the CLI):

``name``, ``aliases``, ``reverse_name``, ``site_dir``, ``ports``, ``ssl``, ``version``,
``current_release``, ``database`` {host, port, name, user}, ``media_dir``, ``backup_dir``, ``role``,
``hosts`` {"db": [...]}, ``vhosts`` [{file, line, ports, ssl, redirect_only}].

A vhost shaped like a site that is not one (its folder uses an undefined ``${VAR}``, has no ``current``
or a dangling one, or no ``shared/``), or one httpd does not load (inside a false ``<If...>`` section), is
listed in ``skipped_sites`` with its reason: {name, file, line, site_dir, reason}.

The database password never enters that dict: `read_database_password` is for the operation that needs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from ansible_collections.fpt.sec.plugins.module_utils.apache_config import (
    ApacheConfig,
    SkippedVirtualHost,
    VirtualHost,
)

__all__ = [
    "DatabaseConfigError",
    "build_sites",
    "find_site",
    "looks_like_site_dir",
    "parse_simple_yaml",
    "read_database_config",
    "read_database_password",
    "read_running_version",
    "reverse_name",
    "site_dir_candidates",
    "site_dir_for_vhost",
    "site_role",
    "why_not_a_site_dir",
]

DATABASE_YML = os.path.join("shared", "config", "database.yml")
LOCAL_DB_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "[::1]"})


class DatabaseConfigError(Exception):
    """database.yml exists but cannot be read or understood."""


def reverse_name(name: str) -> str:
    """``prod.teststudio.com`` -> ``com_teststudio_prod``: the vendor's name for a site's folder."""
    labels = [label for label in name.strip().lower().split(".") if label]
    return "_".join(reversed(labels))


def site_role(name: str) -> str:
    """Production unless the name says staging: production is the safe default (nothing syncs into it)."""
    return "staging" if "staging" in name.lower() else "production"


def looks_like_site_dir(path: str) -> bool:
    # ``current`` may be a dangling symlink in the middle of a deploy: it still marks a site dir.
    return os.path.lexists(os.path.join(path, "current")) and os.path.isdir(os.path.join(path, "shared"))


def site_dir_candidates(vhost: VirtualHost | SkippedVirtualHost) -> list[str]:
    """The folders a vhost's code paths name as its site dir: ``<d>/current/public``, PassengerAppRoot."""
    candidates: list[str] = []
    if vhost.passenger_app_root:
        root = os.path.normpath(vhost.passenger_app_root)
        candidates.append(os.path.dirname(root) if os.path.basename(root) == "current" else root)
    if vhost.document_root:
        root = os.path.normpath(vhost.document_root)
        if os.path.basename(root) == "public" and os.path.basename(os.path.dirname(root)) == "current":
            candidates.append(os.path.dirname(os.path.dirname(root)))
    return candidates


def why_not_a_site_dir(path: str) -> str:
    """Why a folder a site-shaped vhost names is not a site dir (the first reason that applies)."""
    variable = re.search(r"\$\{([^{}]+)\}", path)
    if variable:
        return (
            f"{path} uses ${{{variable.group(1)}}}, which is not defined (no Define, not in the server's "
            "environment); give it with the apache_env option"
        )
    if not os.path.isdir(path):
        return f"{path} does not exist"
    current = os.path.join(path, "current")
    if not os.path.lexists(current):
        return f"{path} has no current"
    if os.path.islink(current) and not os.path.exists(current):
        return f"{current} is a dangling symlink (-> {os.readlink(current)}): the vhost serves nothing"
    if not os.path.isdir(os.path.join(path, "shared")):
        return f"{path} has no shared/"
    return f"{path} is not a site dir"


def site_state(site_dir: str) -> str:
    """``ok``, or ``broken: current -> releases/X is missing`` when ``current`` names a release that is not
    there (the vhost serves nothing; only ``sec site repair`` may change such a site)."""
    current = os.path.join(site_dir, "current")
    if os.path.islink(current) and not os.path.exists(current):
        return f"broken: current -> {os.readlink(current)} is missing"
    return "ok"


def site_dir_for_vhost(vhost: VirtualHost) -> str | None:
    """The site dir a vhost serves, or None when its code folder does not look like one."""
    for candidate in site_dir_candidates(vhost):
        if looks_like_site_dir(candidate):
            return candidate
    return None


def read_running_version(site_dir: str) -> tuple[str | None, str | None]:
    """(version, release path) of the release ``<site_dir>/current`` points at.

    The version is the release's ``VERSION`` file, else the folder name under ``releases/``. The release
    path keeps the site dir as configured (one symlink level resolved), so a site dir that is itself a
    symlink (the vendor's ``/var/rails`` workaround) still reads naturally.
    """
    current = os.path.join(site_dir, "current")
    if os.path.islink(current):
        release = os.path.normpath(os.path.join(site_dir, os.readlink(current)))
    elif os.path.isdir(current):
        release = current
    else:
        return None, None
    version = None
    try:
        with open(os.path.join(release, "VERSION"), encoding="utf-8", errors="replace") as handle:
            version = handle.readline().strip() or None
    except OSError:
        pass
    # A dangling link (a deploy half done) names a release that does not exist: no running version.
    if version is None and os.path.isdir(release) and os.path.basename(os.path.dirname(release)) == "releases":
        version = os.path.basename(release) or None
    return version, release


# -- database.yml ----------------------------------------------------------------------------------------
# Managed hosts may lack PyYAML, so this reads the subset Rails' database.yml uses: nested mappings by
# indentation, plain/quoted scalars, comments, ``&anchor`` / ``*alias`` / ``<<: *alias`` merges, simple
# ``- item`` lists. ERB (``<%= ... %>``) cannot be evaluated here, so such values read as None.

_KEY_RE = re.compile(r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"][^:#]*?)\s*:(?:\s+(?P<rest>.*))?$""")


def _strip_comment(text: str) -> str:
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (i == 0 or text[i - 1] in " \t:[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text: str) -> str | None:
    text = text.strip()
    if text in ("", "~", "null", "Null", "NULL") or "<%" in text:
        return None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = text[1:-1]
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "0": "\0"}
        return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), inner)
    return text


def parse_simple_yaml(text: str) -> dict:
    """Parse the YAML subset described above into nested dicts of strings (or None, or lists)."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "...") or stripped.startswith("<%"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise DatabaseConfigError("tabs are not allowed in YAML indentation")
        lines.append((len(raw) - len(raw.lstrip(" ")), _strip_comment(stripped)))

    anchors: dict[str, object] = {}
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    index = 0
    while index < len(lines):
        indent, body = lines[index]
        index += 1
        while stack[-1][0] >= indent:
            stack.pop()
        target = stack[-1][1]
        if body.startswith("- ") or body == "-":
            continue  # a list item not directly under a key: not part of what we read
        match = _KEY_RE.match(body)
        if not match:
            raise DatabaseConfigError(f"cannot understand line {body!r}")
        key = _scalar(match.group("key")) or ""
        rest = (match.group("rest") or "").strip()
        anchor = None
        if rest.startswith("&"):
            parts = rest.split(None, 1)
            anchor = parts[0][1:]
            rest = parts[1] if len(parts) > 1 else ""
        if rest.startswith("*"):
            value = anchors.get(rest[1:].strip())
            if key == "<<":
                if isinstance(value, dict):
                    for merged_key, merged_value in value.items():
                        target.setdefault(merged_key, merged_value)
                continue
            target[key] = value
        elif rest:
            target[key] = _scalar(rest)
        else:
            following = lines[index] if index < len(lines) else None
            if following and following[0] > indent and following[1].startswith("-"):
                items = []
                while index < len(lines) and lines[index][0] == following[0] and lines[index][1].startswith("-"):
                    items.append(_scalar(lines[index][1][1:]))
                    index += 1
                target[key] = items
            elif following and following[0] > indent:
                child: dict = {}
                target[key] = child
                stack.append((indent, child))
            else:
                target[key] = None
        if anchor:
            anchors[anchor] = target.get(key)
    return root


def _database_section(site_dir: str, environment: str) -> dict:
    path = os.path.join(site_dir, DATABASE_YML)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise DatabaseConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = parse_simple_yaml(text)
    except DatabaseConfigError as exc:
        raise DatabaseConfigError(f"{path}: {exc}") from None
    section = data.get(environment)
    if not isinstance(section, dict):
        return {}
    section = dict(section)
    # Rails also accepts a URL; explicit keys win over it, as in Rails.
    url = section.get("url")
    if isinstance(url, str) and "://" in url:
        parts = urlsplit(url)
        from_url = {
            "host": parts.hostname,
            "port": str(parts.port) if parts.port else None,
            "database": unquote(parts.path.lstrip("/")) or None,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
        }
        for key, value in from_url.items():
            if section.get(key) is None and value is not None:
                section[key] = value
    return section


def read_database_config(site_dir: str, environment: str = "production") -> dict:
    """{host, port, name, user} of the site's database (None where not configured); never the password.

    Raises `DatabaseConfigError` when database.yml exists but cannot be read or parsed.
    """
    section = _database_section(site_dir, environment)
    port = section.get("port")
    port_number = int(port) if isinstance(port, str) and port.isdigit() else None
    return {
        "host": _text(section.get("host")),
        "port": port_number,
        "name": _text(section.get("database")),
        "user": _text(section.get("username") or section.get("user")),
    }


def read_database_password(site_dir: str, environment: str = "production") -> str | None:
    """The database password from database.yml: only for the operation that connects, never returned."""
    return _text(_database_section(site_dir, environment).get("password"))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _db_host_label(host: str | None) -> str:
    # No host (Unix socket), a socket folder or a loopback name: the database runs on this App server.
    if host is None or host.startswith("/") or host.lower() in LOCAL_DB_HOSTS:
        return "localhost"
    return host


# -- sites -----------------------------------------------------------------------------------------------
def _vhost_entry(vhost: VirtualHost, redirect_only: bool) -> dict:
    return {
        "file": vhost.file,
        "line": vhost.line,
        "ports": vhost.ports,
        "ssl": vhost.ssl,
        "redirect_only": redirect_only,
    }


def _redirect_hosts(vhost: VirtualHost) -> set[str]:
    hosts = set()
    for url in vhost.redirects:
        host = (urlsplit(url).hostname or "").lower()
        if host and "%{" not in host:
            hosts.add(host)
    return hosts


def _skipped(vhost: VirtualHost | SkippedVirtualHost, site_dir: str | None, reason: str) -> dict:
    return {"name": vhost.server_name, "file": vhost.file, "line": vhost.line, "site_dir": site_dir, "reason": reason}


def build_sites(
    config: ApacheConfig,
    warnings: list[str] | None = None,
    environment: str = "production",
    skipped: list[dict] | None = None,
) -> list[dict]:
    """Every site the parsed configuration serves, in configuration order, as plain dicts.

    Problems that do not stop discovery (a vhost without a name, an unreadable database.yml) are appended
    to ``warnings`` when a list is given; site-shaped vhosts that are not served sites, to ``skipped``.
    """
    notes: list[str] = warnings if warnings is not None else []
    dropped: list[dict] = skipped if skipped is not None else []
    for unloaded in config.skipped_vhosts:
        candidates = site_dir_candidates(unloaded)
        if candidates:
            dropped.append(_skipped(unloaded, candidates[0], f"Apache does not load it: {unloaded.reason}"))
    groups: dict[str, dict] = {}
    leftovers: list[VirtualHost] = []
    for vhost in config.vhosts:
        # A site dir whose `current` names a missing release is still a site, the one an administrator most
        # needs to see: it is listed with the state `broken: ...` (site_state), for `sec site repair`.
        site_dir = site_dir_for_vhost(vhost)
        if site_dir is None:
            candidates = site_dir_candidates(vhost)
            if candidates:
                dropped.append(_skipped(vhost, candidates[0], why_not_a_site_dir(candidates[0])))
            leftovers.append(vhost)
            continue
        # The same folder reached through two spellings is still one site.
        key = os.path.realpath(site_dir)
        group = groups.setdefault(key, {"site_dir": site_dir, "serving": [], "twins": []})
        group["serving"].append(vhost)

    sites: list[dict] = []
    for group in groups.values():
        serving: list[VirtualHost] = group["serving"]
        # The SSL vhost's ServerName is the site's name; the main ServerName is what httpd itself falls back on.
        ordered = [v for v in serving if v.ssl] + [v for v in serving if not v.ssl]
        name = next((v.server_name for v in ordered if v.server_name), None) or config.server_name
        if not name:
            first = serving[0]
            notes.append(f"{first.file}:{first.line}: vhost for {group['site_dir']} has no ServerName; skipped")
            dropped.append(_skipped(first, group["site_dir"], "no ServerName, in the vhost or the main server"))
            continue
        names: list[str] = [name]
        for vhost in ordered:
            names.extend(n for n in vhost.names if n not in names)
        group["name"], group["names"] = name, names
        sites.append(group)

    # A vhost that only redirects (to https, typically) belongs to the site whose names it answers for or
    # whose name it redirects to.
    for vhost in leftovers:
        if not vhost.redirects:
            continue
        for group in sites:
            if set(vhost.names) & set(group["names"]) or _redirect_hosts(vhost) & set(group["names"]):
                group["twins"].append(vhost)
                group["names"].extend(n for n in vhost.names if n not in group["names"])
                break

    return [_site_dict(group, notes, environment) for group in sites]


def _site_dict(group: dict, notes: list[str], environment: str) -> dict:
    site_dir: str = group["site_dir"]
    name: str = group["name"]
    serving: list[VirtualHost] = group["serving"]
    twins: list[VirtualHost] = group["twins"]
    version, release = read_running_version(site_dir)
    state = site_state(site_dir)
    if state != "ok":
        version = None
    try:
        database = read_database_config(site_dir, environment)
    except DatabaseConfigError as exc:
        notes.append(f"site {name}: {exc}")
        database = {"host": None, "port": None, "name": None, "user": None}
    if database["name"] is None and database["host"] is None:
        notes.append(f"site {name}: no {environment} database in {os.path.join(site_dir, DATABASE_YML)}")
    ports = sorted({port for vhost in serving + twins for port in vhost.ports})
    return {
        "name": name,
        "aliases": [n for n in group["names"] if n != name],
        "reverse_name": reverse_name(name),
        "site_dir": site_dir,
        "ports": ports,
        "ssl": any(vhost.ssl for vhost in serving),
        "version": version,
        "state": state,
        "current_release": release,
        "database": database,
        "media_dir": os.path.join(site_dir, "media"),
        "backup_dir": os.path.join(site_dir, "db_backup"),
        "health_url": health_url(serving),
        "role": site_role(name),
        "hosts": {"db": [_db_host_label(database["host"])]},
        "vhosts": [_vhost_entry(v, False) for v in serving] + [_vhost_entry(v, True) for v in twins],
    }


def health_url(serving: list[VirtualHost]) -> str | None:
    """Where the App server itself reaches the site's /status through its vhost: the serving vhost's own
    address (a wildcard means loopback), plain HTTP preferred, since the request carries the site's Host."""
    candidates = []
    for vhost in serving:
        for address in vhost.addresses:
            wildcard = address.host in (None, "", "*", "_default_", "0.0.0.0", "[::]")
            host = "127.0.0.1" if wildcard else address.host
            scheme = "https" if vhost.ssl else "http"
            default = 443 if vhost.ssl else 80
            port = address.port or default
            suffix = "" if port == default else f":{port}"
            candidates.append((vhost.ssl, f"{scheme}://{host}{suffix}/status"))
    return sorted(candidates)[0][1] if candidates else None


def find_site(sites: Iterable[dict], name: str) -> dict | None:
    """The site called ``name``: its ServerName, reverse name, or one of its aliases (case-insensitive).

    Name and reverse name are searched first, so an alias never shadows another site's own name.
    """
    wanted = name.strip().lower()
    sites = list(sites)
    for site in sites:
        if wanted in (site["name"].lower(), site["reverse_name"].lower()):
            return site
    for site in sites:
        if wanted in (alias.lower() for alias in site.get("aliases", [])):
            return site
    return None
