"""The data folder's clusters and keys: `clusters/<name>.json` and `keys/<cluster>/<host>`.

A cluster file holds hosts, the sites found on them and settings; never a secret (passwords stay on the
hosts, private keys stay in `keys/`). Every write is atomic so that a killed `sec` never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic

from sec_wrapper import redact
from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# What ssh takes as a host and a login, never as one of its options (a leading '-').
ADDRESS_RE = re.compile(r"^[A-Za-z0-9\[][A-Za-z0-9_.:\[\]-]{0,252}$")
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
ROLES = ("app", "api", "db", "backup")
SITE_ROLES = ("production", "staging")
FORMAT = 1


@dataclass
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key: str | None = None  # path inside keys/, e.g. "prod/app1"; None: ssh's own defaults
    roles: list[str] = field(default_factory=list)
    python: str | None = None  # the host's Python for modules, when discovery's fallbacks will not do
    backup_dir: str | None = None  # a backup host's folder for the copies: <backup_dir>/<cluster>/<site>/

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Host:
        return cls(name=data["name"], address=data["address"], port=int(data.get("port") or 22),
                   user=data.get("user") or "root", key=data.get("key"), roles=list(data.get("roles", [])),
                   python=data.get("python"), backup_dir=data.get("backup_dir"))


@dataclass
class Database:
    host: str
    port: int = 5432
    name: str = ""
    user: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Database:
        # Only these four: a password that slipped into the dict is dropped, not kept. A database.yml without
        # a port (discovery reports null) means PostgreSQL's default.
        return cls(host=data.get("host") or "", port=int(data.get("port") or 5432), name=data.get("name") or "",
                   user=data.get("user") or "")


@dataclass
class Site:
    """A site as discovery reports it (the collection's cluster_inventory SITE_KEYS) plus its App servers.

    Fields discovery adds later are kept in `extra` and written back flat, so the store never drops them.
    """

    name: str
    reverse_name: str
    site_dir: str
    role: str = "production"  # production is the safe default: nothing ever syncs into it
    version: str | None = None
    database: Database | None = None
    app_hosts: list[str] = field(default_factory=list)
    db_host: str | None = None  # the cluster host name of the database server
    aliases: list[str] = field(default_factory=list)
    media_dir: str | None = None
    backup_dir: str | None = None
    health_url: str | None = None
    ports: list[Any] = field(default_factory=list)
    ssl: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Site:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        db = data.get("database")
        return cls(name=data["name"], reverse_name=data["reverse_name"], site_dir=data["site_dir"],
                   role=data.get("role") or "production", version=data.get("version"),
                   database=Database.from_dict(db) if db else None, app_hosts=list(data.get("app_hosts") or []),
                   db_host=data.get("db_host"), aliases=list(data.get("aliases") or []),
                   media_dir=data.get("media_dir"), backup_dir=data.get("backup_dir"),
                   health_url=data.get("health_url"), ports=list(data.get("ports") or []), ssl=data.get("ssl"),
                   extra={k: v for k, v in data.items() if k not in known and k != "extra"})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**extra, **data}


@dataclass
class Cluster:
    name: str
    hosts: list[Host] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    updated: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        return cls(name=data["name"], hosts=[Host.from_dict(h) for h in data.get("hosts", [])],
                   sites=[Site.from_dict(s) for s in data.get("sites", [])],
                   settings=dict(data.get("settings", {})), created=data.get("created", ""),
                   updated=data.get("updated", ""))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "hosts": [asdict(h) for h in self.hosts],
                "sites": [s.to_dict() for s in self.sites], "settings": self.settings,
                "created": self.created, "updated": self.updated}

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise SecError(f"cluster {self.name} has no host {name}: see `sec host list {self.name}`")

    def site(self, name: str) -> Site | None:
        """The site whose name or reverse name is `name`."""
        return next((s for s in self.sites if name in (s.name, s.reverse_name)), None)

    def hosts_with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if role in h.roles]


# ---- names and files -------------------------------------------------------------------------------

def check_connection(address: str | None, user: str | None, port: int | None = None) -> None:
    """A host's address, login and port as ssh takes them: refused in one line otherwise."""
    if address is not None and not ADDRESS_RE.match(str(address)):
        raise SecError(f"address {str(address)[:60]!r} is not a host name or IP address: give one such as "
                       "app1.studio.lan or 10.0.0.5")
    if user is not None and not USER_RE.match(str(user)):
        raise SecError(f"user {str(user)[:40]!r} is not a login name: give one such as root or deploy")
    if port is not None and not 1 <= int(port) <= 65535:
        raise SecError(f"port {port}: give a port from 1 to 65535")


def validate_name(name: str, kind: str = "cluster") -> str:
    if "/" in name or "\\" in name:
        raise SecError(f"{kind} name {name!r} contains a slash: use letters, digits, '.', '_' or '-'")
    if not NAME_RE.match(name):
        raise SecError(f"{kind} name {name!r} is not valid: start with a letter or digit, then up to 62 of "
                       "letters, digits, '.', '_' or '-'")
    return name


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json_atomic(path: Path, data: Any, mode: int = 0o600) -> None:
    """Writes JSON beside `path` and renames it over: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode(), mode)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def clusters_dir() -> Path:
    return _private_dir(sec_home() / "clusters")


def keys_dir() -> Path:
    path = sec_home() / "keys"
    if not path.exists():
        _private_dir(path)
    _check_private(path, 0o700)
    return path


def cluster_path(name: str) -> Path:
    return clusters_dir() / f"{validate_name(name)}.json"


# ---- clusters --------------------------------------------------------------------------------------

def cluster_exists(name: str) -> bool:
    return cluster_path(name).exists()


def ensure_new_cluster_name(name: str) -> str:
    """Checks a name for `cluster create` before any work is done."""
    if cluster_exists(name):
        raise SecError(f"cluster {name} exists: pick another name or `sec cluster remove {name}`")
    return name


def load_cluster(name: str) -> Cluster:
    path = cluster_path(name)
    if not path.exists():
        raise SecError(f"no cluster {name}: see `sec cluster list`")
    return _read_cluster(path)


def _read_cluster(path: Path) -> Cluster:
    try:
        return Cluster.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SecError(f"cannot read {path}: {exc}; fix or remove the file") from exc


def save_cluster(cluster: Cluster, new: bool = False) -> Path:
    """Writes the cluster file; `new` refuses to replace an existing cluster."""
    validate_name(cluster.name)
    for h in cluster.hosts:
        validate_name(h.name, "host")
    path = cluster_path(cluster.name)
    if new:
        ensure_new_cluster_name(cluster.name)
    data = cluster.to_dict()
    _refuse_secrets(data)
    stamp = now_iso()
    cluster.created = cluster.created or stamp
    cluster.updated = stamp
    data.update(created=cluster.created, updated=cluster.updated)
    write_json_atomic(path, data)
    return path


def _refuse_secrets(data: dict[str, Any]) -> None:
    # Host.key is a file name inside keys/, so names are judged only where free-form data lives.
    found = redact.find_secrets(data.get("settings", {}), "settings")
    for i, site in enumerate(data.get("sites", [])):
        found += redact.find_secrets(site.get("database") or {}, f"sites[{i}].database")
        free = {k: v for k, v in site.items() if k not in Site.__dataclass_fields__}
        found += redact.find_secrets(free, f"sites[{i}]")
    if any(redact.is_secret_value(v) for v in _strings(data)):
        found.append("key material")
    if found:
        raise SecError(f"refusing to store secrets in the cluster file ({', '.join(found)}): "
                       "keep passwords on the hosts and keys in keys/")


def _strings(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return [data] if isinstance(data, str) else []


def list_clusters() -> list[Cluster]:
    return [_read_cluster(p) for p in sorted(clusters_dir().glob("*.json"))]


def remove_cluster(name: str) -> None:
    """Removes the cluster file and the keys imported for it."""
    path = cluster_path(name)
    if not path.exists():
        raise SecError(f"no cluster {name}: see `sec cluster list`")
    path.unlink()
    remove_cluster_keys(name)


def remove_cluster_keys(name: str) -> None:
    keys = sec_home() / "keys" / name
    if keys.is_dir():
        shutil.rmtree(keys)


# ---- sites across clusters -------------------------------------------------------------------------

def find_site(query: str, cluster: str | None = None) -> tuple[Cluster, Site]:
    """The site named `query` (name or reverse name), in `cluster` or in the only cluster that has it."""
    clusters = [load_cluster(cluster)] if cluster else list_clusters()
    matches = [(c, s) for c in clusters if (s := c.site(query)) is not None]
    if not matches:
        where = f" in cluster {cluster}" if cluster else ""
        raise SecError(f"no site {query}{where}: see `sec site list`")
    if len(matches) > 1:
        names = ", ".join(c.name for c, _ in matches)
        raise SecError(f"site {query} is in clusters {names}: add --cluster NAME")
    return matches[0]


# ---- keys ------------------------------------------------------------------------------------------

def _check_private(path: Path, wanted: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecError(f"{path} has mode {mode:04o}, open to other users: chmod {wanted:o} {path}")


def check_key_file(src: str | Path) -> Path:
    """A private key file the user points at, refused when other users can read it (as ssh does)."""
    path = Path(src).expanduser()
    if not path.is_file():
        raise SecError(f"key file {path} does not exist")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecError(f"key file {path} is readable by other users (mode {mode:04o}): chmod 600 {path}")
    with path.open("rb") as f:
        head = f.read(200)
    if b"PRIVATE KEY" not in head:
        raise SecError(f"{path} is not a private key (a .pub file?): give the private half")
    return path.resolve()


def import_key(src: str | Path, cluster: str, host: str) -> str:
    """Copies a private key into keys/<cluster>/<host> (0600); returns that name for Host.key."""
    validate_name(cluster)
    validate_name(host, "host")
    content = check_key_file(src).read_bytes()
    folder = keys_dir() / cluster
    if folder.exists():
        _check_private(folder, 0o700)
    else:
        _private_dir(folder)
    target = folder / host
    fd, tmp = tempfile.mkstemp(prefix=f".{host}.", dir=folder)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return f"{cluster}/{host}"


def key_path(key: str) -> Path:
    """The absolute path of a stored key, after checking that nobody else can read it."""
    base = keys_dir()
    path = (base / key).resolve()
    if base.resolve() not in path.parents:
        raise SecError(f"key {key!r} points outside {base}: re-import it with --key")
    if not path.is_file():
        raise SecError(f"key {path} is missing: re-import it with --key")
    for folder in path.parents:
        if folder == base.resolve().parent:
            break
        _check_private(folder, 0o700)
    _check_private(path, 0o600)
    return path


def record_site_version(cluster_name: str, reverse_name: str, version: str) -> None:
    """What every head of the site now runs, after an operation moved it (upgrade, restore with its release,
    repair); the cluster file is read again, since other commands may have changed it during the run. A
    repaired or moved site is no longer broken."""
    fresh = load_cluster(cluster_name)
    stored = fresh.site(reverse_name)
    if stored is not None and (stored.version != version or stored.extra.get("state", "ok") != "ok"):
        stored.version = version
        stored.extra["state"] = "ok"
        save_cluster(fresh)
