"""The console's ASGI application: sessions, the gate every request but the login passes, and the routes.

Pages (pages.py) and the JSON API (api.py) read the store and the history in-process and act through the
CLI (launch.py); nothing here runs a playbook itself.
"""

from __future__ import annotations

import asyncio
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


def create_app(secure_cookies: bool = False, throttle: security.LoginThrottle | None = None) -> Starlette:
    from sec_wrapper.web import api, pages

    routes = [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        *pages.routes,
        *api.routes,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=security.session_secret(), session_cookie=SESSION_COOKIE,
                   max_age=accounts.SESSION_MAX_AGE, same_site="strict", https_only=secure_cookies),
        Middleware(Gate),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={SecError: user_error, 400: http_error, 403: http_error, 404: http_error})
    app.state.throttle = throttle or security.LoginThrottle()
    return app
