"""Accounts: every console account with its live sessions and API token; revoke sessions, rotate a token.

Every console account administers sec (there are no roles yet), so every account sees this page. Adding an
account or setting a password stays on the command line (`sec user add`), where the password is read from
stdin and never crosses the network in a form.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import accounts
from sec_wrapper.web import security
from sec_wrapper.web.common import redirect
from sec_wrapper.web.rendering import render


async def accounts_page(request: Request, note: str | None = None, token: str | None = None,
                        status_code: int = 200) -> Response:
    return render(request, "accounts.html", {"accounts": accounts.list_users(), "note": note, "token": token,
                                             "active": "accounts"}, status_code)


async def revoke_sessions(request: Request) -> Response:
    await security.checked_form(request)
    name = request.path_params["name"]
    ended = accounts.end_sessions(name)
    if name == request.scope.get("sec_user"):  # our own session ended with the rest
        return redirect("/login")
    return await accounts_page(request, note=f"{name}: {ended} session{'s' if ended != 1 else ''} ended")


async def rotate_token(request: Request) -> Response:
    await security.checked_form(request)
    name = request.path_params["name"]
    token = accounts.new_token(name)
    return await accounts_page(request, note=f"{name}: new API token (the old one no longer works); it is shown "
                                             "only this once", token=token)
