"""The web console's named accounts: `users.json` in SEC_HOME (0600), argon2 password hashes, API tokens and
console sessions.

A token is shown once, when made; only its SHA-256 is stored (a token is long and random, so a fast hash is
enough, and a lookup needs no slow hash per request). Passwords never leave this module unhashed.

Sessions are server-side state: the cookie carries a random session id, the account keeps its SHA-256.
Logging out removes it; a new password (`--replace`) ends every session and the token; removing the account
removes its sessions with it, so a name added again starts with none.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.store import now_iso, validate_name, write_json_atomic

USERS_FILE = "users.json"
MIN_PASSWORD = 8
SESSION_MAX_AGE = 12 * 3600  # seconds a console session lasts from its login
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


@contextlib.contextmanager
def _changing() -> Iterator[dict[str, dict[str, Any]]]:
    """The accounts, read and written back under a lock: the console and the CLI change them both."""
    path = users_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(USERS_FILE + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users = _load()
        yield users
        _save(users)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def list_users() -> list[dict[str, Any]]:
    return [{"name": name, "created": u.get("created"), "token": bool(u.get("token_sha256")),
             "sessions": len(_live(u.get("sessions") or {}))}
            for name, u in sorted(_load().items())]


def add_user(name: str, password: str, replace: bool = False) -> None:
    validate_name(name, "user")
    if len(password) < MIN_PASSWORD:
        raise SecError(f"the password is too short: give at least {MIN_PASSWORD} characters on stdin")
    hashed = _hasher.hash(password)
    with _changing() as users:
        if name in users and not replace:
            raise SecError(f"user {name} exists: add --replace to set a new password")
        entry = users.get(name, {"created": now_iso()})
        entry["password"] = hashed
        # A new password ends every way in the old one opened: sessions and the API token.
        entry.pop("token_sha256", None)
        entry["sessions"] = {}
        users[name] = entry


def remove_user(name: str) -> None:
    with _changing() as users:
        if name not in users:
            raise SecError(f"no user {name}: see `sec user list`")
        del users[name]  # its sessions and token with it


def new_token(name: str) -> str:
    """Makes the user's API token (replacing any older one) and returns it: it is shown only this once."""
    token = f"sec_{secrets.token_urlsafe(32)}"
    with _changing() as users:
        if name not in users:
            raise SecError(f"no user {name}: sec user add {name}")
        users[name]["token_sha256"] = _token_digest(token)
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




def _live(sessions: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {k: v for k, v in sessions.items()
            if isinstance(v, dict) and now - float(v.get("started", 0)) < SESSION_MAX_AGE}


def start_session(name: str) -> str:
    """A new console session of `name` (logged in just now): its id, for the cookie only."""
    session_id = secrets.token_urlsafe(32)
    with _changing() as users:
        if name not in users:
            raise SecError(f"no user {name}")
        entry = users[name]
        entry["sessions"] = {**_live(entry.get("sessions") or {}),
                             _token_digest(session_id): {"started": int(time.time())}}
    return session_id


def session_user(name: str | None, session_id: str | None) -> str | None:
    """`name` while `session_id` is one of its live sessions, else None."""
    if not name or not session_id:
        return None
    entry = _load().get(name)
    sessions = _live((entry or {}).get("sessions") or {})
    return name if _token_digest(session_id) in sessions else None


def end_session(name: str | None, session_id: str | None) -> None:
    if not name or not session_id:
        return
    with _changing() as users:
        entry = users.get(name)
        if entry:
            entry.get("sessions", {}).pop(_token_digest(session_id), None)


def end_sessions(name: str) -> int:
    """Ends every console session of `name`; returns how many were live."""
    with _changing() as users:
        if name not in users:
            raise SecError(f"no user {name}: see `sec user list`")
        ended = len(_live(users[name].get("sessions") or {}))
        users[name]["sessions"] = {}
    return ended
