# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup host's copies of a site's backups: ``<backup_dir>/<cluster>/<site>/<backup>/``, each a backup folder
as fpt.sec.db_backup writes it, plus ``sec-copy.json`` (when it was last verified, where from, and a damage
found by a full check) and, for a copy retention must never remove, ``.sec-pinned``.

Pure standard library, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import json
import os

from ansible_collections.fpt.sec.plugins.module_utils import db_backups
from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

COPY_RECORD = "sec-copy.json"
PIN = db_backups.PIN


def read_copy_record(folder: str) -> dict:
    try:
        with open(os.path.join(folder, COPY_RECORD), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def list_copies(copies_dir: str, check_files: bool = False) -> list[dict]:
    """The copies here, oldest first, each quickly checked (the manifest's seal, the files' sizes), or in
    full (every file's sha256) with ``check_files``, whose outcome is recorded with the copy."""
    try:
        names = os.listdir(copies_dir)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(copies_dir, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        try:
            manifest = db_backups.read_manifest(path)
        except db_backups.BackupError as exc:
            found.append({"name": name, "state": "damaged", "problem": str(exc), "started": None})
            continue
        record = read_copy_record(path)
        if check_files:
            try:
                db_backups.verify_files(path, manifest)
                problem = None
            except db_backups.BackupError as exc:
                problem = str(exc)
            record = {**record, "verified_at": None if problem else iso_utc(), "damaged": problem}
            write_atomic(os.path.join(path, COPY_RECORD), (json.dumps(record, sort_keys=True) + "\n").encode(), 0o640)
        else:
            problem = db_backups.quick_problem(path, manifest) or record.get("damaged")
        found.append({"name": name, "started": manifest.get("started"), "version": manifest.get("version"),
                      "label": manifest.get("label"), "size": manifest.get("size"),
                      "state": "damaged" if problem else ("verified" if record.get("verified_at") else "unverified"),
                      "verified_at": record.get("verified_at"), "problem": problem,
                      "pinned": db_backups.is_pinned(path)})
    found.sort(key=lambda c: (str(c.get("started") or ""), c["name"]))
    return found
