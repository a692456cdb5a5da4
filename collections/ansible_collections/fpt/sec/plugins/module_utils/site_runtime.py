# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A site's settings file, its generated runtime config, and whether a redeploy is pending.

Shared by ``fpt.sec.site_settings`` (writes the persisted settings, reports what is pending) and
``fpt.sec.redeploy`` (applies them), so both agree on paths, file format and what "pending" means.

- ``<site_dir>/shared/config/site_settings.json``: the persisted settings, what an admin edits.
- ``<site_dir>/shared/config/runtime.json``: what the application reads when it boots: the settings at the
  top level plus a ``_sec`` object of bookkeeping (when, from which settings digest, by which operation).
- ``<site_dir>/tmp/restart.txt``: touching it makes the application reload (Passenger's convention).

A redeploy is pending when the settings in runtime.json are not the persisted ones, or when runtime.json
is newer than restart.txt (it was written but the application was not told to reload).

Pure standard library, Python 3.8 compatible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils import durable
from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import (
    RESERVED_PREFIX,
    diff_settings,
    settings_digest,
)
from ansible_collections.fpt.sec.plugins.module_utils.utc import iso_utc

__all__ = [
    "RUNTIME_META_KEY",
    "SettingsFileError",
    "applied_settings",
    "dump_json",
    "pending_state",
    "read_json_object",
    "restart_path",
    "runtime_document",
    "runtime_path",
    "settings_path",
    "touch",
    "write_atomic",
]

SETTINGS_FILE = os.path.join("shared", "config", "site_settings.json")
RUNTIME_FILE = os.path.join("shared", "config", "runtime.json")
RESTART_FILE = os.path.join("tmp", "restart.txt")
PREVIOUS_SUFFIX = ".prev"
RUNTIME_META_KEY = "_sec"


class SettingsFileError(Exception):
    """A settings or runtime file cannot be read, parsed or written."""


def settings_path(site_dir: str) -> str:
    return os.path.join(site_dir, SETTINGS_FILE)


def runtime_path(site_dir: str) -> str:
    return os.path.join(site_dir, RUNTIME_FILE)


def restart_path(site_dir: str) -> str:
    return os.path.join(site_dir, RESTART_FILE)


def read_json_object(path: str) -> tuple[dict | None, bytes | None]:
    """(document, raw bytes) of a JSON object file; (None, None) when the file does not exist."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise SettingsFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SettingsFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SettingsFileError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc, raw


def dump_json(doc: Mapping) -> bytes:
    """The on-disk form: two-space indent, keys in the document's order, a final newline (as the site's
    installer writes it, so that a diff against a hand-edited file stays readable)."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _copy_ownership(fd: int, reference: os.stat_result) -> None:
    try:
        os.fchown(fd, reference.st_uid, reference.st_gid)
    except PermissionError:
        # Not root: the file stays ours, which is the owner it had if we could write the folder anyway.
        pass


def write_atomic(path: str, data: bytes, template: str | None = None, keep_previous: bool = False) -> str | None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, never a part.

    The new content goes to a temporary file in the same folder, is fsynced, takes the mode and owner of
    the file it replaces (else of ``template``, so that a new runtime.json is readable by the same
    application user as site_settings.json), and is renamed over ``path``; the folder is fsynced so that
    the rename survives a crash. With ``keep_previous``, the old content is first saved the same way as
    ``<path>.prev``. Returns the path of the previous copy, or None.
    """
    try:
        reference = os.stat(path)
    except FileNotFoundError:
        reference = None
        if template is not None:
            try:
                reference = os.stat(template)
            except FileNotFoundError:
                reference = None
    previous = None
    if keep_previous and os.path.exists(path):
        with open(path, "rb") as handle:
            old = handle.read()
        previous = path + PREVIOUS_SUFFIX
        _replace(previous, old, reference)
    _replace(path, data, reference)
    return previous


def _replace(path: str, data: bytes, reference: os.stat_result | None) -> None:
    # A file that had an owner and mode keeps them; a new one gets the umask's usual mode.
    if reference is None:
        durable.write_atomic(path, data)
    else:
        durable.write_atomic(path, data, reference.st_mode & 0o7777, lambda fd: _copy_ownership(fd, reference))


def touch(path: str) -> None:
    """Create ``path`` if needed and set its modification time to now (what makes Passenger reload)."""
    with open(path, "ab"):
        pass
    os.utime(path, None)


def applied_settings(runtime: Mapping | None) -> dict | None:
    """The settings part of a runtime config: every key but the bookkeeping ones (leading ``_``)."""
    if runtime is None:
        return None
    return {k: v for k, v in runtime.items() if not k.startswith(RESERVED_PREFIX)}


def runtime_document(settings: Mapping, site_dir: str, operation_id: str | None = None,
                     now: float | None = None) -> dict:
    """What runtime.json holds: the settings at the top level (where the application reads them) and a
    ``_sec`` object recording when, from which settings and by which operation it was generated."""
    doc: dict[str, Any] = {k: v for k, v in settings.items() if not k.startswith(RESERVED_PREFIX)}
    current = os.path.join(site_dir, "current")
    release = os.path.basename(os.path.realpath(current)) if os.path.lexists(current) else None
    doc[RUNTIME_META_KEY] = {
        "generated_by": "fpt.sec.redeploy",
        "generated_at": iso_utc(now),
        "settings_sha256": settings_digest(doc_without_meta(doc)),
        "release": release,
        "operation_id": operation_id,
    }
    return doc


def doc_without_meta(doc: Mapping) -> dict:
    return {k: v for k, v in doc.items() if k != RUNTIME_META_KEY}


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def _lstat_mtime(path: str) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except FileNotFoundError:
        return None


def _pending_before_first_redeploy(site_dir: str) -> dict:
    """A site sec never redeployed runs as the vendor's tools left it: the application reads the persisted
    settings when it starts. They wait for a restart only when written after the application's last
    (re)start: restart.txt's time, else the time `current` was switched (the deploy)."""
    started = _mtime(restart_path(site_dir)) or _lstat_mtime(os.path.join(site_dir, "current"))
    written = _mtime(settings_path(site_dir))
    if written is not None and started is not None and written > started:
        return {"pending": True, "reason": "the settings changed since the application last started, "
                "and sec has not redeployed this site yet", "changes": []}
    return {"pending": False, "reason": "sec has not redeployed this site yet: the application runs the "
            "persisted settings it read when it started", "changes": []}


def pending_state(site_dir: str, settings: Mapping) -> dict:
    """Whether ``settings`` (the persisted ones) still wait for a redeploy on this site.

    Returns {pending, reason, changes}: ``changes`` lists key/old/new from the applied settings (old) to
    the persisted ones (new). Raises `SettingsFileError` when runtime.json cannot be read.
    """
    runtime, _raw = read_json_object(runtime_path(site_dir))
    if runtime is None:
        return _pending_before_first_redeploy(site_dir)
    changes = diff_settings(applied_settings(runtime) or {}, settings)
    if changes:
        return {"pending": True, "reason": "the settings changed since the last redeploy", "changes": changes}
    runtime_mtime = _mtime(runtime_path(site_dir))
    restart_mtime = _mtime(restart_path(site_dir))
    if runtime_mtime is not None and (restart_mtime is None or restart_mtime < runtime_mtime):
        return {"pending": True, "reason": "the runtime config was written but the application was not restarted",
                "changes": []}
    return {"pending": False, "reason": "the running configuration matches the persisted settings", "changes": []}
