"""The login and logout pages: the only handlers a request without an account reaches."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sec_wrapper import accounts
from sec_wrapper.web import security
from sec_wrapper.web.rendering import render


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
