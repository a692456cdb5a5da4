"""Who is asking: session or bearer token, CSRF tokens, and the login throttle.

The cookie is Starlette's signed session (itsdangerous) holding the account's name, a random session id and
the CSRF token; the session itself lives server-side in `accounts`, so logout, a new password or a removed
account ends it for good, whatever copy of the cookie is still around.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from sec_wrapper import accounts
from sec_wrapper.paths import sec_home

SECRET_FILE = "web-session-secret"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def session_secret() -> str:
    """The key that signs session cookies: made once, kept in SEC_HOME (0600), so restarts keep sessions."""
    path: Path = sec_home() / SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret)
    return secret


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticated_user(request: Request) -> tuple[str | None, str]:
    """(user, how): how is "token" or "session"; user None when neither holds a live account."""
    token = bearer_token(request)
    if token is not None:
        return accounts.user_for_token(token), "token"
    user = accounts.session_user(request.session.get("user"), request.session.get("sid"))
    return user, "session"


def start_session(request: Request, name: str) -> None:
    request.session.clear()
    request.session.update({"user": name, "sid": accounts.start_session(name), "csrf": secrets.token_urlsafe(32),
                            "since": int(time.time())})


def end_session(request: Request) -> None:
    accounts.end_session(request.session.get("user"), request.session.get("sid"))
    request.session.clear()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, form: FormData | None = None) -> None:
    """Every state-changing request made with the session cookie carries the session's CSRF token, in the
    form or in the X-CSRF-Token header. A bearer token is not sent by browsers on their own: no CSRF."""
    if request.scope.get("sec_auth") == "token":
        return
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or (form.get(CSRF_FIELD) if form is not None else None)
    if not expected or not isinstance(given, str) or not hmac.compare_digest(expected, given):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


async def checked_form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, form)
    return form


class TooManyAttempts(Exception):
    """More login attempts wait on one name or address than the throttle queues."""


@dataclass
class LoginThrottle:
    """Failed logins per client address and per account name: after `free` failures within `window`
    seconds each further attempt waits `base` seconds, doubling up to `ceiling`, before it is checked.

    Attempts on one address or one account take their turn (`turn`): guesses sent in parallel are checked
    one after another, each after its own wait, so they go no faster than guesses sent one by one."""

    free: int = 3
    most_keys: int = 10_000  # names and addresses remembered at once: random names cannot fill the memory
    base: float = 1.0
    ceiling: float = 16.0
    window: float = 900.0
    failures: dict[str, list[float]] = field(default_factory=dict)
    most_waiting: int = 5  # attempts queued on one key at once; more are refused (TooManyAttempts)
    turns: dict[str, asyncio.Lock] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def turn(self, *keys: str) -> AsyncIterator[None]:
        """Holds every key's turn (taken in sorted order: no two attempts wait on each other crosswise).
        Raises TooManyAttempts, before waiting, when a key already has `most_waiting` attempts queued."""
        keys = tuple(sorted(set(keys)))
        if any(self.waiting.get(k, 0) >= self.most_waiting for k in keys):
            raise TooManyAttempts("too many login attempts at once for this name or address: try again in a "
                                  "minute")
        if len(self.turns) > self.most_keys:  # random names cannot fill the memory: drop the idle turns
            for key in [k for k, lock in self.turns.items() if not lock.locked() and not self.waiting.get(k)]:
                del self.turns[key]
        for key in keys:
            self.waiting[key] = self.waiting.get(key, 0) + 1
        try:
            async with contextlib.AsyncExitStack() as stack:
                for key in keys:
                    await stack.enter_async_context(self.turns.setdefault(key, asyncio.Lock()))
                yield
        finally:
            for key in keys:
                self.waiting[key] -= 1
                if not self.waiting[key]:
                    del self.waiting[key]

    def _recent(self, key: str) -> list[float]:
        now = time.monotonic()
        kept = [t for t in self.failures.get(key, []) if now - t < self.window]
        if kept or key in self.failures:
            self.failures[key] = kept
        return kept

    def delay(self, *keys: str) -> float:
        count = max(len(self._recent(k)) for k in keys)
        if count < self.free:
            return 0.0
        return min(self.base * 2 ** (count - self.free), self.ceiling)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self.failures[key] = [*self._recent(key), time.monotonic()]
        if len(self.failures) > self.most_keys:
            newest_last = sorted(self.failures, key=lambda k: self.failures[k][-1] if self.failures[k] else 0)
            for key in newest_last[: len(self.failures) - self.most_keys]:
                del self.failures[key]

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self.failures.pop(key, None)
