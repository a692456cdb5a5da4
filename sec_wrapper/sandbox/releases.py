"""The reference release series: tarballs laid out as a Flow Production Tracking release would be.

Each release holds every migration up to its version (as a Rails app does) and a MANIFEST.json with the
sha256 of every file, so that staging can verify it and the upgrade path has real schema work to do.
Patch releases add no migration; every minor and major release adds one that really changes the schema.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

RELEASE_NAME = "shotgun"

# (migration version, file stem, SQL) in the order they were introduced.
BASE_SCHEMA = """
CREATE TABLE projects (
  id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE human_users (
  id serial PRIMARY KEY, login text UNIQUE NOT NULL, name text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE shots (
  id serial PRIMARY KEY, project_id int REFERENCES projects(id), code text NOT NULL, description text,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE assets (
  id serial PRIMARY KEY, project_id int REFERENCES projects(id), code text NOT NULL,
  asset_type text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE event_log_entries (
  id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, event_type text NOT NULL,
  entity_type text, entity_id int, project_id int, user_id int, attribute_name text,
  description text, meta jsonb);
CREATE INDEX event_log_entries_created_at_idx ON event_log_entries (created_at);
"""

MIGRATIONS: list[tuple[str, str, str, str]] = [
    # (introduced in, migration version, name, sql)
    ("8.0.0", "20200101000000", "create_base_schema", BASE_SCHEMA),
    ("8.1.0", "20200601000000", "add_shot_status", "ALTER TABLE shots ADD COLUMN sg_status text DEFAULT 'wtg';"),
    ("8.2.0", "20201001000000", "create_playlists",
     "CREATE TABLE playlists (id serial PRIMARY KEY, project_id int REFERENCES projects(id), code text,"
     " created_at timestamptz NOT NULL DEFAULT now());"),
    ("8.3.0", "20210301000000", "index_event_type",
     "CREATE INDEX event_log_entries_event_type_idx ON event_log_entries (event_type);"),
    ("9.0.0", "20220101000000", "create_versions",
     "CREATE TABLE versions (id serial PRIMARY KEY, entity_id int, code text, sg_path text,"
     " created_at timestamptz NOT NULL DEFAULT now());"),
    ("9.1.0", "20220601000000", "add_project_archived",
     "ALTER TABLE projects ADD COLUMN archived boolean NOT NULL DEFAULT false;"),
]

SERIES = ["8.0.0", "8.0.1", "8.1.0", "8.1.1", "8.1.2", "8.2.0", "8.3.0", "9.0.0", "9.0.1", "9.1.0"]

# A migration that fails half-way, for rollback tests: its first statement succeeds, its second fails.
BROKEN_MIGRATION = (
    "20990101000000",
    "broken_migration",
    "ALTER TABLE shots ADD COLUMN broken_col int;\nSELECT 1/0;",
)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version}_{self.name}.sql"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def migrations_for(version: str) -> list[Migration]:
    """Every migration a release of `version` ships: all those introduced at or before it."""
    return [Migration(v, n, s) for since, v, n, s in MIGRATIONS if _key(since) <= _key(version)]


def release_files(version: str, broken: bool = False) -> dict[str, bytes]:
    """The files of one release, by path relative to its top folder (MANIFEST.json excluded)."""
    migrations = migrations_for(version)
    if broken:
        migrations.append(Migration(*BROKEN_MIGRATION))
    files: dict[str, bytes] = {
        "VERSION": f"{version}\n".encode(),
        "public/index.html": f"<html><body>Flow Production Tracking {version}</body></html>\n".encode(),
        "public/robots.txt": b"User-agent: *\nDisallow: /\n",
        "config/application.json": json.dumps({"version": version, "framework": "rails"}).encode(),
    }
    for migration in migrations:
        files[f"db/migrate/{migration.filename}"] = migration.sql.strip().encode() + b"\n"
    return files


def build_release(dest_dir: Path, version: str, broken: bool = False, name: str = RELEASE_NAME) -> Path:
    """Writes `<name>-<version>.tar.gz` (and its `.sha256`) into dest_dir; returns the tarball path.

    The archive is byte-for-byte reproducible (fixed mtimes, sorted members) so rebuilding it is a no-op.
    """
    top = f"{name}-{version}"
    files = release_files(version, broken)
    manifest = {
        "name": name,
        "version": version,
        "migrations": sorted(p.split("/")[-1] for p in files if p.startswith("db/migrate/")),
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    files["MANIFEST.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for dirname in sorted({top, *(f"{top}/{d}" for p in files for d in _parents(p))}):
            info = tarfile.TarInfo(dirname)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1577836800
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, 1577836800
            tar.addfile(info, io.BytesIO(data))
    data = _gzip_reproducible(buf.getvalue())
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"{name}-{version}.tar.gz"
    if not target.exists() or target.read_bytes() != data:
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    (dest_dir / f"{target.name}.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  {target.name}\n")
    return target


def build_series(dest_dir: Path) -> list[Path]:
    return [build_release(dest_dir, version) for version in SERIES]


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _gzip_reproducible(data: bytes) -> bytes:
    # tarfile's gzip header carries the current time; rewrite it with mtime 0 so archives are stable.
    import gzip

    raw = gzip.decompress(data)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw)
    return out.getvalue()
