"""The web console's named accounts: `users.json` in SEC_HOME (0600), argon2 password hashes, API tokens.

A token is shown once, when made; only its SHA-256 is stored (a token is long and random, so a fast hash is
enough, and a lookup needs no slow hash per request). Passwords never leave this module unhashed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.store import now_iso, validate_name, write_json_atomic

USERS_FILE = "users.json"
MIN_PASSWORD = 8
_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def users_path() -> Path:
    return sec_home() / USERS_FILE


def _load() -> dict[str, dict[str, Any]]:
    path = users_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SecError(f"cannot read {path}: {exc}") from exc
    return data.get("users", {}) if isinstance(data, dict) else {}


def _save(users: dict[str, dict[str, Any]]) -> None:
    write_json_atomic(users_path(), {"format": 1, "users": users}, mode=0o600)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def list_users() -> list[dict[str, Any]]:
    return [{"name": name, "created": u.get("created"), "token": bool(u.get("token_sha256"))}
            for name, u in sorted(_load().items())]


def add_user(name: str, password: str, replace: bool = False) -> None:
    validate_name(name, "user")
    if len(password) < MIN_PASSWORD:
        raise SecError(f"the password is too short: give at least {MIN_PASSWORD} characters on stdin")
    users = _load()
    if name in users and not replace:
        raise SecError(f"user {name} exists: add --replace to set a new password")
    entry = users.get(name, {"created": now_iso()})
    entry["password"] = _hasher.hash(password)
    users[name] = entry
    _save(users)


def remove_user(name: str) -> None:
    users = _load()
    if name not in users:
        raise SecError(f"no user {name}: see `sec user list`")
    del users[name]
    _save(users)


def new_token(name: str) -> str:
    """Makes the user's API token (replacing any older one) and returns it: it is shown only this once."""
    users = _load()
    if name not in users:
        raise SecError(f"no user {name}: sec user add {name}")
    token = f"sec_{secrets.token_urlsafe(32)}"
    users[name]["token_sha256"] = _token_digest(token)
    _save(users)
    return token


def verify_password(name: str, password: str) -> bool:
    entry = _load().get(name)
    stored = entry.get("password") if entry else None
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def user_for_token(token: str) -> str | None:
    digest = _token_digest(token)
    for name, entry in _load().items():
        stored = entry.get("token_sha256")
        if stored and hmac.compare_digest(stored, digest):
            return name
    return None


def user_exists(name: str) -> bool:
    return name in _load()
