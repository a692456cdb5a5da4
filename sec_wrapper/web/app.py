"""The console's ASGI application: sessions, the gate every request but the login passes, and the routes.

Pages (pages.py) and the JSON API (api.py) read the store and the history in-process and act through the
CLI (launch.py); nothing here runs a playbook itself.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from sec_wrapper import __version__, accounts
from sec_wrapper.errors import SecError
from sec_wrapper.render import human_age, human_size
from sec_wrapper.web import security

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "sec_session"
OPEN_PATHS = ("/login", "/static/")

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__
templates.env.filters["size"] = lambda n: human_size(n) or "-"
templates.env.filters["age"] = lambda seconds: human_age(seconds) or "-"


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    csrf = security.csrf_token(request) if request.scope.get("sec_auth") != "token" else ""
    context = {"user": request.scope.get("sec_user"), "csrf": csrf, **(context or {})}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


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
            if path.startswith("/api/") or how == "token":
                response: Response = JSONResponse({"error": "authentication required: log in, or send "
                                                   "Authorization: Bearer <token> (sec user token NAME)"},
                                                  status_code=401, headers={"WWW-Authenticate": "Bearer"})
            else:
                response = RedirectResponse("/login", status_code=303)
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


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html", {"error": None})
    form = await request.form()
    security.check_csrf(request, form)
    name = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    throttle: security.LoginThrottle = request.app.state.throttle
    client = request.client.host if request.client else "?"
    keys = (f"addr:{client}", f"user:{name}")
    try:
        async with throttle.turn(*keys):  # parallel guesses wait their turn: each pays its own delay
            delay = throttle.delay(*keys)
            if delay:
                await asyncio.sleep(delay)  # repeated failures are slowed, for the address and for the account
            ok = await asyncio.to_thread(accounts.verify_password, name, password)
            if not ok:
                throttle.failed(*keys)
            else:
                throttle.succeeded(*keys)
    except security.TooManyAttempts as exc:
        return render(request, "login.html", {"error": str(exc)}, status_code=429)
    if not ok:
        return render(request, "login.html", {"error": "wrong name or password"}, status_code=401)
    security.start_session(request, name)
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    await security.checked_form(request)
    security.end_session(request)
    return RedirectResponse("/login", status_code=303)


async def http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    if request.url.path.startswith("/api/") or request.scope.get("sec_auth") == "token":
        return JSONResponse({"error": detail}, status_code=status)
    if request.scope.get("sec_user"):
        return render(request, "error.html", {"status": status, "message": detail}, status_code=status)
    return PlainTextResponse(str(detail), status_code=status)


async def user_error(request: Request, exc: Exception) -> Response:
    """A SecError is bad input: 400 with the same one-line message the CLI gives."""
    exc.status_code, exc.detail = 400, str(exc)  # type: ignore[attr-defined]
    return await http_error(request, exc)


def create_app(secure_cookies: bool = False, throttle: security.LoginThrottle | None = None,
               max_upload: int = DEFAULT_MAX_UPLOAD) -> Starlette:
    from sec_wrapper.web import api, pages

    routes = [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        *pages.routes,
        *api.routes,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(Guard, max_upload=max_upload),
        Middleware(SessionMiddleware, secret_key=security.session_secret(), session_cookie=SESSION_COOKIE,
                   max_age=accounts.SESSION_MAX_AGE, same_site="strict", https_only=secure_cookies),
        Middleware(Gate),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={SecError: user_error, 400: http_error, 403: http_error, 404: http_error})
    app.state.throttle = throttle or security.LoginThrottle()
    return app
