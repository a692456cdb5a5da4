"""Reference sites laid out as on-premise Flow Production Tracking installs are (see DESIGN.md)."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from ansible_collections.fpt.sec.plugins.module_utils import release_archive

from sec_wrapper.sandbox.releases import build_release, migrations_for

EVENT_TYPES = ["Shotgun_Shot_Change", "Shotgun_Asset_Change", "Shotgun_Version_New", "Shotgun_Note_New",
               "Shotgun_Task_Change", "Shotgun_Playlist_Change", "Shotgun_User_Login"]


@dataclass
class SiteSpec:
    name: str
    role: str
    db_name: str
    db_user: str
    db_password: str
    app_port: int = 0

    @property
    def reverse_name(self) -> str:
        return "_".join(reversed(self.name.split(".")))

    def public(self, site_dir: Path) -> dict:
        """What status/--json may show: no password."""
        data = asdict(self)
        data.pop("db_password")
        data.update(reverse_name=self.reverse_name, site_dir=str(site_dir))
        return data


def new_spec(name: str, role: str) -> SiteSpec:
    short = name.split(".")[0].replace("-", "_")
    studio = name.split(".")[1] if name.count(".") >= 2 else "studio"
    return SiteSpec(name=name, role=role, db_name=f"{studio}_{short}", db_user=f"{studio}_{short}",
                    db_password=secrets.token_urlsafe(18))


def install_release(site_dir: Path, tarball: Path, version: str) -> Path:
    """Verifies a release and unpacks it under releases/<version>, as release staging does."""
    target = site_dir / "releases" / version
    if not target.exists():
        release_archive.verify(str(tarball))
        release_archive.safe_extract(str(tarball), str(target))
    return target


def create_site_dir(site_dir: Path, spec: SiteSpec, version: str, releases_dir: Path, db_port: int,
                    media_files: int, media_seed_count: int | None = None, db_host: str = "127.0.0.1") -> None:
    for sub in ("releases", "shared/config", "shared/log", "media/files", "db_backup", "tmp"):
        (site_dir / sub).mkdir(parents=True, exist_ok=True)
    tarball = build_release(releases_dir, version)
    install_release(site_dir, tarball, version)
    db_yml = site_dir / "shared/config/database.yml"
    db_yml.write_text(
        "# Rails database configuration (written by the sec sandbox)\n"
        "production:\n"
        "  adapter: postgresql\n"
        "  encoding: unicode\n"
        f"  host: {db_host}\n"
        f"  port: {db_port}\n"
        f"  database: {spec.db_name}\n"
        f"  username: {spec.db_user}\n"
        f'  password: "{spec.db_password}"\n'
        "  pool: 5\n"
    )
    os.chmod(db_yml, 0o640)
    settings = {
        "site_url": f"https://{spec.name}",
        "site_name": spec.name.split(".")[0].capitalize(),
        "email_notifications_enabled": spec.role == "production",
        "timezone": "UTC",
        "max_upload_mb": 500,
        "session_timeout_minutes": 480,
    }
    (site_dir / "shared/config/site_settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    # The deploy comes last, as on a site set up by the vendor's tools: the application started after its
    # settings were written, so nothing waits for a redeploy.
    os.symlink(f"releases/{version}", site_dir / "current")
    write_media(site_dir / "media", media_files if media_seed_count is None else media_seed_count)


def media_path(media_dir: Path, file_id: int, name: str) -> Path:
    """The vendor's layout: the file id padded to 12 digits, split in three folders of four."""
    padded = f"{file_id:012d}"
    return media_dir / "files" / padded[0:4] / padded[4:8] / padded[8:12] / name


def write_media(media_dir: Path, count: int) -> None:
    rng = random.Random(222)  # the same files (ids, names, bytes) for every site: staging is a subset
    for index in range(count):
        file_id = 2228524 + index * 7
        size = rng.choice([512, 4096, 20000, 65536])
        path = media_path(media_dir, file_id, f"shot_{index:04d}_comp_v{1 + index % 9:03d}.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))


def migrate_and_seed(db: dict, spec: SiteSpec, version: str, events: int) -> None:
    """Applies the starting release's migrations as the site user, then realistic data."""
    with psycopg.connect(host=db.get("address", "127.0.0.1"), port=db["port"], user=spec.db_user,
                         password=spec.db_password,
                         dbname=spec.db_name) as conn:
        conn.execute("CREATE TABLE schema_migrations (version varchar PRIMARY KEY)")
        for migration in migrations_for(version):
            conn.execute(migration.sql)
            conn.execute("INSERT INTO schema_migrations VALUES (%s)", (migration.version,))
        conn.execute("SELECT setseed(0.42)")
        conn.execute("INSERT INTO projects (name) SELECT 'Project ' || g FROM generate_series(1, 3) g")
        conn.execute(
            "INSERT INTO human_users (login, name) SELECT 'artist' || g, 'Artist ' || g FROM generate_series(1, 10) g"
        )
        conn.execute(
            "INSERT INTO shots (project_id, code, description) SELECT 1 + g % 3, 'SH' || lpad(g::text, 4, '0'),"
            " 'Shot ' || g FROM generate_series(1, 200) g"
        )
        conn.execute(
            "INSERT INTO assets (project_id, code, asset_type) SELECT 1 + g % 3, 'asset_' || g,"
            " (array['Character','Prop','Environment'])[1 + g % 3] FROM generate_series(1, 100) g"
        )
        seed_events(conn, events)
        conn.commit()
        conn.execute("ANALYZE")


def seed_events(conn: psycopg.Connection, count: int, years: int = 4) -> None:
    """`count` events spread over the last `years` years, ids in time order as a live site writes them."""
    types = "array[" + ",".join(f"'{t}'" for t in EVENT_TYPES) + "]"
    conn.execute(
        "INSERT INTO event_log_entries (created_at, event_type, entity_type, entity_id, project_id, user_id,"
        " attribute_name, description, meta)"
        f" SELECT ts, ({types})[1 + (g % {len(EVENT_TYPES)})], (array['Shot','Asset','Version'])[1 + g % 3],"
        " 1 + g % 200, 1 + g % 3, 1 + g % 10, (array['sg_status','description',NULL])[1 + g % 3],"
        " 'Artist ' || (1 + g % 10) || ' changed entity ' || (1 + g % 200),"
        " jsonb_build_object('old', g % 7, 'new', g % 11, 'in_create', g % 5 = 0)"
        f" FROM (SELECT g, now() - interval '{years} years' * (1 - (g::float8 / {max(count, 1)})) AS ts"
        f" FROM generate_series(1, {count}) g) s ORDER BY ts"
    )


def remove_site_dir(site_dir: Path) -> None:
    shutil.rmtree(site_dir, ignore_errors=True)
