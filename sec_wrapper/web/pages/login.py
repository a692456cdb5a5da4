"""The login and logout pages: the only handlers a request without an account reaches."""

from __future__ import annotations

import asyncio
import urllib.parse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sec_wrapper import accounts
from sec_wrapper.web import security
from sec_wrapper.web.rendering import render


def local_page(target: str | None) -> str:
    """`target` when it is a page of this console (a path on this host), else "/": a login link can never send
    the browser to another site (`//evil.example`, `https://...`, `/\\evil`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 32 for c in target) or urllib.parse.urlsplit(target).netloc:
        return "/"
    return target


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html", {"error": None, "next": local_page(request.query_params.get("next")),
                                              "name": ""})
    form = await request.form()
    security.check_csrf(request, form)
    name = str(form.get("username") or "").strip()
    after = local_page(str(form.get("next") or ""))
    again = {"next": after, "name": name}  # a failed try keeps the name and the page asked for
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
        return render(request, "login.html", {"error": str(exc), **again}, status_code=429)
    if not ok:
        return render(request, "login.html", {"error": "wrong name or password", **again}, status_code=401)
    security.start_session(request, name)
    return RedirectResponse(after, status_code=303)


async def logout(request: Request) -> Response:
    await security.checked_form(request)
    security.end_session(request)
    return RedirectResponse("/login", status_code=303)
