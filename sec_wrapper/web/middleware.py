"""What every request passes before a handler: the body bound and the origin check (Guard), then the
account check (Gate); every answer carries the framing and content policies."""

from __future__ import annotations

import urllib.parse

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sec_wrapper.web import security


class Gate:
    """Lets through the login page and static files; everything else needs a live account, by session
    cookie or by bearer token. Unauthenticated: 401 for /api/, a redirect to the login page otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"]
        if path == "/login" or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        user, how = security.authenticated_user(request)
        if user is None:
            if path.startswith("/api/") or path == "/metrics" or how == "token":
                response: Response = JSONResponse({"error": "authentication required: log in, or send "
                                                   "Authorization: Bearer <token> (sec user token NAME)"},
                                                  status_code=401, headers={"WWW-Authenticate": "Bearer"})
            else:  # back to the page asked for once logged in (a page, never a form's POST)
                asked = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
                wanted = f"/login?next={urllib.parse.quote(asked, safe='')}" if scope["method"] == "GET" else "/login"
                response = RedirectResponse(wanted if path != "/" else "/login", status_code=303)
            await response(scope, receive, send)
            return
        scope["sec_user"], scope["sec_auth"] = user, how
        await self.app(scope, receive, send)


UPLOAD_PATHS = ("/releases", "/api/releases")  # the only routes that take a release archive
MAX_BODY = 1 << 20  # forms and JSON
DEFAULT_MAX_UPLOAD = 2 << 30  # a release archive; `sec serve --max-upload`
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class _TooLarge(Exception):
    pass


class Guard:
    """Before any route parses anything: the request body is bounded (413 with one line, counted as it arrives
    when no Content-Length says it up front), a state-changing request from a browser must come from this
    console's own origin, and every answer carries the framing and content policies."""

    def __init__(self, app: ASGIApp, max_upload: int = DEFAULT_MAX_UPLOAD) -> None:
        self.app, self.max_upload = app, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        upload = scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS
        limit = self.max_upload if upload else MAX_BODY

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = self._refusal(scope, headers, limit)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        received = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._too_large(limit, upload)(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str], limit: int) -> Response | None:
        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > limit):
            return self._too_large(limit, scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS)
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin and origin != "null":
            # The host alone: behind a TLS proxy the browser says https while this server hears http.
            if urllib.parse.urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                return PlainTextResponse(f"refused: a request from {origin} may not change anything here; use the "
                                         "console's own pages", status_code=403)
        return None

    @staticmethod
    def _too_large(limit: int, upload: bool) -> Response:
        what = "a release upload" if upload else "a form or JSON body"
        fix = "; start sec serve with a larger --max-upload" if upload else ""
        return PlainTextResponse(f"request too large: {what} may have at most {limit} bytes{fix}",
                                 status_code=413)
