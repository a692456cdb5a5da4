"""The console's ASGI application: `create_app` puts together the middleware, the one route table
(routes.py) and the error pages. Handlers (api.py, pages/) call the operation service; nothing here runs a
playbook itself."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from sec_wrapper import accounts, site_state
from sec_wrapper.errors import SecError
from sec_wrapper.scheduler import Scheduler
from sec_wrapper.web import security
from sec_wrapper.web.middleware import DEFAULT_MAX_UPLOAD, Gate, Guard
from sec_wrapper.web.rendering import render
from sec_wrapper.web.routes import routes

SESSION_COOKIE = "sec_session"


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
               max_upload: int = DEFAULT_MAX_UPLOAD, background_state: bool = False,
               refresh_every: float | None = None, schedule_every: float | None = None) -> Starlette:
    """`background_state`: keep every site's state read in the background, every `refresh_every` seconds
    (None: only when a page finds none or an older one). Without it (in-process tests) a page reads it itself.
    `schedule_every`: run the due schedules and check the alerts this often (None: no scheduler here)."""
    refresher = site_state.Refresher(refresh_every) if background_state else None
    scheduler = Scheduler(schedule_every) if schedule_every else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if refresher:
            refresher.start()
        if scheduler:
            scheduler.start()
        yield
        if refresher:
            refresher.stop()
        if scheduler:
            scheduler.stop()

    middleware = [
        Middleware(Guard, max_upload=max_upload),
        Middleware(SessionMiddleware, secret_key=security.session_secret(), session_cookie=SESSION_COOKIE,
                   max_age=accounts.SESSION_MAX_AGE, same_site="strict", https_only=secure_cookies),
        Middleware(Gate),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={SecError: user_error, 400: http_error, 403: http_error, 404: http_error})
    app.state.throttle = throttle or security.LoginThrottle()
    app.state.refresher = refresher
    app.state.scheduler = scheduler
    return app
