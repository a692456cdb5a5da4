"""Advanced operations: every fpt.sec module with its own documentation and a form for its options."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.operations.modules import low_level_modules
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.web import operate, security
from sec_wrapper.web.common import form_dict, redirect
from sec_wrapper.web.rendering import render


async def advanced_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    modules = await asyncio.to_thread(low_level_modules)
    sites = [s.name for c in store.list_clusters() for s in c.sites]
    return render(request, "advanced.html", {"modules": modules, "sites": sites, "error": error,
                                             "chosen": request.query_params.get("module"), "active": "advanced"},
                  status_code)


async def run_advanced(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    module, site = form.pop("module", ""), form.pop("site", "")
    args = [f"{key[4:]}={value.strip()}" for key, value in form.items() if key.startswith("opt_") and value.strip()]
    if not site:
        return await advanced_page(request, "choose a site", 400)
    try:
        op_id = await operate.start(request, OperationRequest("advanced run", site=site,
                                                              options={"module": module, "args": args}))
    except SecError as exc:
        return await advanced_page(request, str(exc), 400)
    return redirect(f"/operations/{op_id}")
