"""An operation's inputs, checked before it is recorded or run: a refusal is one line that names the fix.

The playbooks check the same inputs in their first play (for ansible-playbook and AWX); sec checks them here
first, in the layer every front end goes through (`runner.run_operation`), so that bad input from the CLI,
the console or the API never becomes a failed operation in the history.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.operation_ids import RULE as OPERATION_ID_RULE
from ansible_collections.fpt.sec.plugins.module_utils.operation_ids import is_operation_id
from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import (
    SCHEMA,
    SettingsError,
    check_key,
    parse_value,
)

from sec_wrapper.errors import SecError

# The longest text any one input may be (a maintenance message, a setting, an advanced option): larger values
# are refused before an operation exists (one command-line argument tops out at 128 KiB on Linux).
MAX_TEXT = 64 * 1024
MAX_MESSAGE = 4096

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")
_BACKUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_BOOL_WORDS = {"true", "false", "yes", "no", "1", "0"}


def _shown(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _whole(name: str, value: Any, least: int, most: int, unit: str = "") -> None:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not least <= int(text) <= most:
        raise SecError(f"{name} {_shown(value)}: give a whole number from {least} to {most}{unit}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool) and str(value).strip().lower() not in _BOOL_WORDS:
        raise SecError(f"{name} {_shown(value)}: give true or false")


def _backup_name(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _BACKUP.match(value) or ".." in value:
        raise SecError(f"{name} {_shown(value)}: give a backup's name as `sec backups SITE` lists it, not a path")


def _backup(values: Mapping[str, Any]) -> None:
    for name in ("keep", "keep_safety"):
        if values.get(name) is not None:
            _whole(name.replace("_", "-"), values[name], 0, 9999, " (0 keeps all)")
    for name, most in (("keep_copies", 9999), ("keep_days", 99999)):  # as backup.yml allows them
        if values.get(name) not in (None, ""):
            _whole(name.replace("_", "-"), values[name], 0, most, " (0 keeps all)")
    label = values.get("label")
    if label not in (None, "") and not (isinstance(label, str) and _LABEL.match(label)):
        raise SecError(f"label {_shown(label)}: use letters, digits and . + - (at most 64, starting with a letter "
                       "or digit; no underscore, no space)")


def _restore(values: Mapping[str, Any]) -> None:
    if values.get("undo") in (True, "true") and values.get("backup") is None:
        return
    _backup_name("backup", values.get("backup"))


def _drill(values: Mapping[str, Any]) -> None:
    if values.get("backup") not in (None, ""):  # nothing: the newest backup
        _backup_name("backup", values["backup"])


def _backups(values: Mapping[str, Any]) -> None:
    for name in ("pin", "unpin"):
        if values.get(name) not in (None, ""):
            _backup_name(name, values[name])


def _trim(values: Mapping[str, Any]) -> None:
    before = str(values.get("before", "")).strip()
    try:
        if not _DATE.match(before):
            raise ValueError
        day = datetime.date.fromisoformat(before)
    except ValueError:
        raise SecError(f"before {_shown(values.get('before'))}: give a calendar date as YYYY-MM-DD, for example "
                       "2023-01-01") from None
    if values.get("keep_days") is not None:
        _whole("keep-days", values["keep_days"], 0, 99999)
    if values.get("batch_size") is not None:
        _whole("batch-size", values["batch_size"], 1, 9999999, " rows")
    if values.get("throttle_ms") is not None:
        _whole("throttle-ms", values["throttle_ms"], 0, 999999, " ms")
    today = datetime.datetime.now(datetime.UTC).date()
    if day > today:
        raise SecError(f"before {before} is in the future (today is {today} UTC): nothing that old exists yet")
    keep_days = int(str(values.get("keep_days", 30)).strip())
    if (today - day).days < keep_days:
        latest = today - datetime.timedelta(days=keep_days)
        raise SecError(f"before {before} would trim events of the last {keep_days} days: choose {latest} or "
                       "earlier, or lower --keep-days if you really mean it")


def _site_settings(values: Mapping[str, Any]) -> None:
    """Each given setting against the collection's schema, as the module checks it on the hosts (the time zone
    is judged by the hosts alone: this machine's zoneinfo may differ)."""
    settings = values.get("settings")
    if values.get("settings_json") not in (None, ""):
        try:
            settings = json.loads(str(values["settings_json"]))
        except (ValueError, RecursionError) as exc:
            raise SecError(f"the settings are not valid JSON ({exc}): give a JSON object of settings") from None
    if settings is None:
        return
    if not isinstance(settings, Mapping):
        raise SecError("the settings must be a JSON object of settings, {\"key\": value, ...}")
    force = str(values.get("force", "")).strip().lower() in ("true", "yes", "1")
    for key, value in settings.items():
        try:
            check_key(key, force)
            if not (key in SCHEMA and SCHEMA[key].kind == "timezone"):
                parse_value(key, value, force)
        except SettingsError as exc:
            raise SecError(str(exc)) from None


def _maintenance(values: Mapping[str, Any]) -> None:
    message = values.get("message")
    if isinstance(message, str) and len(message) > MAX_MESSAGE:
        raise SecError(f"message: {len(message)} characters is too long for a maintenance page: give at most "
                       f"{MAX_MESSAGE}")


_RULES: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "backup.yml": _backup,
    "restore.yml": _restore,
    "drill.yml": _drill,
    "backups.yml": _backups,
    "trim_events.yml": _trim,
    "maintenance.yml": _maintenance,
    "site_settings.yml": _site_settings,
}
# Checked by the schema with its own words (the key, its limit, where large content goes).
_SCHEMA_CHECKED = {"settings", "settings_json"}
_FLAGS = ("force", "switch_release", "vacuum", "check_files", "dry_run", "keep_backup", "replace")


def _sizes(name: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise SecError(f"{name}: {len(value)} characters is more than an operation takes: give at most {MAX_TEXT}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _sizes(f"{name}.{key}", item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _sizes(name, item)


def check(playbook: str, extravars: Mapping[str, Any]) -> None:
    """Raises SecError (one line, with the fix) for an input the playbook would refuse; checks nothing on hosts."""
    for name, value in extravars.items():
        if name not in _SCHEMA_CHECKED:
            _sizes(name, value)
    for name in _FLAGS:
        if extravars.get(name) is not None:
            _flag(name.replace("_", "-"), extravars[name])
    operation_id = extravars.get("operation_id")
    if operation_id is not None and not is_operation_id(operation_id):
        raise SecError(f"operation id {_shown(operation_id)}: use {OPERATION_ID_RULE}")
    rule = _RULES.get(str(playbook).removeprefix("playbooks/"))
    if rule:
        rule(extravars)
