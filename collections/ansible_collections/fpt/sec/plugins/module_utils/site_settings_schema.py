# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema of a site's settings (``shared/config/site_settings.json``) and the rules that apply it.

It lives in module_utils so that it travels with the modules to the App server: the file is validated
where it is written, by the same code whatever the caller (playbook, AWX, ``sec``).

- `SCHEMA`: every key the collection knows, its type, range or choices, and what it is for.
- `parse_value`: typed parsing of one value. A string is read by the key's type (``"false"`` -> False,
  ``"500"`` -> 500), so ``KEY=VALUE`` from a command line and JSON values go through the same rules.
- `parse_assignment`: ``"KEY=VALUE"`` -> (key, typed value).
- `apply_update`: merges (or replaces) an update into the current document and validates the result.
- `diff_settings`: the key/old/new list the modules report.

Every error is a `SettingsError` whose message is one line that starts with the key and says what is
allowed. Pure standard library, Python 3.8 compatible.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "RESERVED_PREFIX",
    "SCHEMA",
    "Setting",
    "SettingsError",
    "allowed_text",
    "apply_update",
    "canonical_json",
    "describe_schema",
    "diff_settings",
    "parse_assignment",
    "parse_assignments",
    "parse_value",
    "settings_digest",
    "validate_document",
]

# Keys starting with this belong to the generated runtime config (its bookkeeping), never to settings.
RESERVED_PREFIX = "_"
# The largest value a setting may hold, as JSON: settings are small words and numbers that travel in module
# arguments and results; a larger value is a mistake (a file pasted in), and ansible-runner drops results
# larger than 700 kB, which would leave the refusal without its reason.
MAX_VALUE_BYTES = 65536
# Unknown keys (allowed with force) still have to look like the keys the application reads.
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# IANA time zone names: Area/Location[/Sub], or one of the single-word zones the database keeps.
_TZ_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}$")
_TZ_AREAS = frozenset({"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
                       "Indian", "Pacific", "Etc"})
_TZ_SINGLE = frozenset({"UTC", "GMT", "Zulu", "Universal"})
# Where the host's time zone database may be. When one is there, a zone must exist in it; without one
# (a minimal container) the name's shape and area are all that can be checked.
_TZ_DIRS = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo")


class SettingsError(ValueError):
    """A setting cannot be accepted. The message is one line naming the key and what is allowed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Setting:
    """One known setting: its JSON type (``kind``) and the values it allows."""

    name: str
    kind: str  # str, url, bool, int, enum, timezone, email, hostname
    description: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    unit: str = ""
    example: Any = None


def _settings(*items: Setting) -> dict[str, Setting]:
    return {item.name: item for item in items}


SCHEMA: dict[str, Setting] = _settings(
    Setting("site_url", "url", "The site's public address, as users and notification emails link to it.",
            required=True, max_length=2048, example="https://prod.teststudio.com"),
    Setting("site_name", "str", "The site's display name, shown in the page title and in emails.",
            required=True, max_length=100, example="Prod"),
    Setting("email_notifications_enabled", "bool",
            "Whether the site sends notification emails (staging copies usually keep them off).",
            example=True),
    Setting("timezone", "timezone", "The site's default time zone, an IANA name.", example="Europe/Paris"),
    Setting("max_upload_mb", "int", "Largest file a user may upload.", minimum=1, maximum=100000, unit="MB",
            example=500),
    Setting("session_timeout_minutes", "int", "Idle time after which a web session ends.", minimum=5,
            maximum=10080, unit="minutes", example=480),
    Setting("email_from", "email", "Sender address of the notification emails.",
            example="shotgun@teststudio.com"),
    Setting("smtp_host", "hostname", "Mail server the site sends through (a host name or an IP address).",
            example="smtp.teststudio.com"),
    Setting("smtp_port", "int", "Port of the mail server.", minimum=1, maximum=65535, example=587),
    Setting("smtp_security", "enum", "How the connection to the mail server is secured.",
            choices=("none", "starttls", "tls"), example="starttls"),
    Setting("log_level", "enum", "Verbosity of the application's log.",
            choices=("debug", "info", "warn", "error", "fatal"), example="info"),
    Setting("password_min_length", "int", "Shortest password a local user may set.", minimum=8, maximum=128,
            unit="characters", example=12),
    Setting("failed_login_lockout", "int", "Failed logins in a row after which an account is locked; 0 turns "
            "locking off.", minimum=0, maximum=100, unit="attempts", example=10),
    Setting("two_factor_required", "bool", "Whether local users must use two-factor authentication.",
            example=False),
    Setting("api_rate_limit_per_minute", "int", "Requests per minute one API script may make; 0 means no "
            "limit.", minimum=0, maximum=1000000, unit="requests", example=0),
)

_KIND_TEXT = {
    "str": "a non-empty text",
    "url": "an http:// or https:// URL with a host name",
    "bool": "true or false",
    "timezone": "an IANA time zone name such as UTC or Europe/Paris",
    "email": "an email address such as name@example.com",
    "hostname": "a host name or an IP address",
}


def allowed_text(key: str) -> str:
    """What ``key`` allows, in words: ``an integer from 1 to 100000 (MB)``."""
    setting = SCHEMA.get(key)
    if setting is None:
        return "any JSON value (unknown setting, written only with force)"
    if setting.kind == "int":
        text = f"an integer from {setting.minimum} to {setting.maximum}"
        return f"{text} ({setting.unit})" if setting.unit else text
    if setting.kind == "enum":
        return "one of " + ", ".join(setting.choices)
    text = _KIND_TEXT[setting.kind]
    if setting.max_length and setting.kind == "str":
        text += f" of at most {setting.max_length} characters"
    return text


def describe_schema() -> list[dict]:
    """The schema as plain data, for documentation and for ``sec site settings`` to show."""
    return [
        {
            "key": s.name,
            "type": "int" if s.kind == "int" else "bool" if s.kind == "bool" else "str",
            "kind": s.kind,
            "required": s.required,
            "allowed": allowed_text(s.name),
            "description": s.description,
            "example": s.example,
        }
        for s in SCHEMA.values()
    ]


def _show(value: Any) -> str:
    """A value as the user would recognise it in an error, cut short so the message stays one line."""
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    text = _CONTROL_RE.sub("?", text)
    return text if len(text) <= 60 else text[:57] + "..."


def _invalid(key: str, value: Any) -> SettingsError:
    return SettingsError(key, f"{_show(value)} is not allowed; expected {allowed_text(key)}")


def check_key(key: Any, force: bool = False) -> Setting | None:
    """The setting ``key`` names; None for an unknown key that ``force`` lets through."""
    if not isinstance(key, str) or not key:
        raise SettingsError(str(key), "a setting's name must be a non-empty text")
    if key.startswith(RESERVED_PREFIX):
        raise SettingsError(key, f"names starting with {RESERVED_PREFIX!r} are reserved for the generated "
                                 "runtime config, even with force")
    setting = SCHEMA.get(key)
    if setting is not None:
        return setting
    if not _KEY_RE.match(key):
        raise SettingsError(key, "not a valid setting name (lowercase letters, digits and _, starting with a letter)")
    if not force:
        close = difflib.get_close_matches(key, list(SCHEMA), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        # The fix first: a long list after it may be cut short in a one-line report, the fix must not be.
        raise SettingsError(key, f"unknown setting; {hint}use force to write an unknown one (known settings: "
                                 f"{', '.join(SCHEMA)})")
    return None


def _parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _invalid(key, value)


def _parse_int(key: str, setting: Setting, value: Any) -> int:
    # bool is an int in Python; true for a size is a mistake, not 1.
    if isinstance(value, bool):
        raise _invalid(key, value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_RE.match(value.strip()):
        number = int(value.strip())
    else:
        raise _invalid(key, value)
    if (setting.minimum is not None and number < setting.minimum) or (
        setting.maximum is not None and number > setting.maximum
    ):
        raise _invalid(key, value)
    return number


def _text(key: str, setting: Setting, value: Any) -> str:
    # A number where text is expected is refused rather than turned into "2024": it is usually a YAML
    # surprise (unquoted), and the user should see it.
    if not isinstance(value, str):
        raise _invalid(key, value)
    if setting.max_length is not None and len(value) > setting.max_length:
        raise SettingsError(key, f"{_show(value)} is too long; expected at most {setting.max_length} characters")
    if _CONTROL_RE.search(value):
        raise SettingsError(key, f"{_show(value)} holds control characters; expected {allowed_text(key)}")
    return value


def _valid_hostname(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return 0 < len(host) <= 253 and all(_LABEL_RE.match(label) for label in labels)


def _parse_url(key: str, setting: Setting, value: Any) -> str:
    text = _text(key, setting, value)
    if text != text.strip() or " " in text:
        raise _invalid(key, value)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a port out of range or not a number
    except ValueError:
        raise _invalid(key, value) from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or parts.username:
        raise _invalid(key, value)
    if not _valid_hostname(parts.hostname):
        raise _invalid(key, value)
    return text


def _tz_exists(name: str, tz_dirs: Iterable[str]) -> bool | None:
    """Whether the host's time zone database has ``name``; None when the host has no database."""
    for folder in tz_dirs:
        if os.path.isdir(folder):
            return os.path.isfile(os.path.join(folder, *name.split("/")))
    return None


def _parse_timezone(key: str, setting: Setting, value: Any, tz_dirs: Iterable[str]) -> str:
    text = _text(key, setting, value).strip()
    if not _TZ_RE.match(text) or ".." in text:
        raise _invalid(key, value)
    if "/" in text:
        if text.split("/", 1)[0] not in _TZ_AREAS:
            raise _invalid(key, value)
    elif text not in _TZ_SINGLE:
        raise _invalid(key, value)
    if _tz_exists(text, tz_dirs) is False:
        raise SettingsError(key, f"{_show(value)} is not in this host's time zone database; expected "
                                 f"{allowed_text(key)}")
    return text


def _check_size(key: str, value: Any) -> None:
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise SettingsError(key, f"the value holds {size} bytes; a setting value may hold at most {MAX_VALUE_BYTES} "
                                 "bytes: keep large content in a file and set its path or a short text instead")


def parse_value(key: str, value: Any, force: bool = False, tz_dirs: Iterable[str] = _TZ_DIRS) -> Any:
    """The typed value of ``key``: strings are read by the key's type, typed values checked as they are.

    Raises `SettingsError` (one line, naming the key and what is allowed). An unknown key is refused
    unless ``force``; then its value is kept as given.
    """
    setting = check_key(key, force)
    if setting is None:
        _check_size(key, value)  # a known key's own rule says more (too long, not allowed)
        return value
    if value is None:
        raise SettingsError(key, f"a value is needed; expected {allowed_text(key)}")
    kind = setting.kind
    if kind == "bool":
        return _parse_bool(key, value)
    if kind == "int":
        return _parse_int(key, setting, value)
    if kind == "url":
        return _parse_url(key, setting, value)
    if kind == "timezone":
        return _parse_timezone(key, setting, value, tz_dirs)
    if kind == "enum":
        word = _text(key, setting, value).strip().lower()
        if word not in setting.choices:
            raise _invalid(key, value)
        return word
    if kind == "email":
        text = _text(key, setting, value).strip()
        if not _EMAIL_RE.match(text) or len(text) > 254:
            raise _invalid(key, value)
        return text
    if kind == "hostname":
        text = _text(key, setting, value).strip()
        if not _valid_hostname(text):
            raise _invalid(key, value)
        return text
    text = _text(key, setting, value)
    if not text.strip():
        raise _invalid(key, value)
    return text


def _guess_json(text: str) -> Any:
    # For a key the schema does not know there is no type to read by: JSON literals (true, 12, null,
    # "quoted") keep their type, anything else stays text.
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignment(text: str, force: bool = False, tz_dirs: Iterable[str] = _TZ_DIRS) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> (key, typed value). Only the first ``=`` splits, so values may contain ``=``."""
    if not isinstance(text, str) or "=" not in text:
        raise SettingsError(str(text).split("=", 1)[0] or "?", f"expected KEY=VALUE, got {_show(text)}")
    key, raw = text.split("=", 1)
    key = key.strip()
    setting = check_key(key, force)
    if setting is None:
        return key, _guess_json(raw)
    return key, parse_value(key, raw, force, tz_dirs)


def parse_assignments(texts: Iterable[str], force: bool = False, tz_dirs: Iterable[str] = _TZ_DIRS) -> dict:
    """Several ``KEY=VALUE`` at once, in order; a key given twice keeps its last value."""
    result: dict = {}
    for text in texts:
        key, value = parse_assignment(text, force, tz_dirs)
        result[key] = value
    return result


def validate_document(doc: Any, force: bool = False, tz_dirs: Iterable[str] = _TZ_DIRS) -> dict:
    """A complete settings document, typed and checked: every known key valid, required keys present.

    Unknown keys are refused unless ``force``.
    """
    if not isinstance(doc, Mapping):
        raise SettingsError("settings", f"expected a JSON object of settings, got {_show(doc)}")
    result = {key: parse_value(key, value, force, tz_dirs) for key, value in doc.items()}
    _require(result)
    return result


def _require(doc: Mapping) -> None:
    for setting in SCHEMA.values():
        if setting.required and setting.name not in doc:
            raise SettingsError(setting.name, f"required setting is missing; expected {allowed_text(setting.name)}")


def apply_update(
    current: Mapping,
    updates: Mapping,
    replace: bool = False,
    force: bool = False,
    tz_dirs: Iterable[str] = _TZ_DIRS,
) -> tuple[dict, list[str]]:
    """The document after ``updates``, validated, and warnings for the user.

    - merge (default): ``updates`` overrides the keys it names; a null value removes a key (a required key
      cannot be removed);
    - ``replace``: ``updates`` is the whole document (nulls are left out).

    Unknown keys in ``updates`` need ``force``. Unknown keys already in the file and not named in
    ``updates`` are kept in a merge, with a warning: they were written with force, or by a newer
    collection, and dropping them silently would lose a setting. Known keys keep their order, new ones
    come last.
    """
    if not isinstance(updates, Mapping):
        raise SettingsError("settings", f"expected a JSON object of settings, got {_show(updates)}")
    warnings: list[str] = []
    result: dict = {} if replace else dict(current)
    for key, value in updates.items():
        if value is None:
            # Any key the file has may be removed (that is how a hand-made or misspelt key goes); a key it
            # does not have is checked, so that a typo is not a silent no-op.
            if key not in current:
                check_key(key, force)
            setting = SCHEMA.get(key)
            if setting is not None and setting.required:
                raise SettingsError(key, "a required setting cannot be removed")
            result.pop(key, None)
            continue
        result[key] = parse_value(key, value, force, tz_dirs)
    for key, value in list(result.items()):
        if key in updates:
            continue
        if key in SCHEMA:
            # A known key from the file is checked too: the module never writes an invalid document. A
            # string such as "500" for an integer key is typed on the way (and shows in the diff).
            try:
                result[key] = parse_value(key, value, force, tz_dirs)
            except SettingsError as exc:
                raise SettingsError(key, f"{str(exc).split(': ', 1)[1]} (the value already in the file; "
                                         "give a valid one)") from None
        else:
            warnings.append(f"{key}: unknown setting kept from the file (not in the schema; remove it with "
                            "a null value)")
    _require(result)
    return result, warnings


def diff_settings(old: Mapping, new: Mapping) -> list[dict]:
    """Each key whose value differs: {key, old, new}; a missing side is null. Old order, then new keys."""
    changes: list[dict] = []
    for key in list(old) + [k for k in new if k not in old]:
        before, after = old.get(key), new.get(key)
        # Compared as JSON so that 1 and true, or 1 and 1.0, count as different values.
        if key not in old or key not in new or canonical_json(before) != canonical_json(after):
            changes.append({"key": key, "old": before, "new": after})
    return changes


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces. Equal settings give equal text and digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def settings_digest(doc: Mapping) -> str:
    """sha256 of the canonical JSON: records which settings a runtime config was generated from."""
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()
