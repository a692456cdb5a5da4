"""Site details: the site's facts, its operations, settings, backups and the upgrade plan."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import history, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations.site_work import upgrade_plan
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.web import forms, operate, security
from sec_wrapper.web.common import form_dict, redirect
from sec_wrapper.web.rendering import render


async def site_page(request: Request, error: str | None = None, status_code: int = 200,
                    extra: dict[str, Any] | None = None) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    others = [s.name for s in cluster.sites if s.name != site.name]
    recent = history.list_operations(site={site.name, site.reverse_name}, limit=10)
    return render(request, "site.html", {"cluster": cluster, "site": site, "others": others, "recent": recent,
                                         "error": error, "active": "clusters", **(extra or {})}, status_code)


async def run_site_operation(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    options = forms.form_options(form)
    try:
        wanted = forms.site_request(request.path_params["operation"], request.path_params["site"], options)
        op_id = await operate.start(request, wanted)
    except SecError as exc:
        return await site_page(request, str(exc), 400)
    return redirect(f"/operations/{op_id}")


def _settings_text(data: dict[str, Any]) -> str:
    return json.dumps(data.get("settings") or {}, indent=2, sort_keys=True)


async def settings_page(request: Request) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    data = await operate.run_to_end(request, OperationRequest("site settings", site=site.name,
                                                              cluster=cluster.name))
    return render(request, "settings.html", {"site": site, "cluster": cluster, "data": data, "error": None,
                                             "text": _settings_text(data), "active": "clusters"})


async def save_settings(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    cluster, site = store.find_site(request.path_params["site"])
    text = form.get("settings", "")
    context = {"site": site, "cluster": cluster, "text": text, "active": "clusters"}
    try:
        settings = json.loads(text)
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return render(request, "settings.html", {**context, "data": None,
                                                 "error": f"the settings are not a JSON object: {exc}"}, 400)
    wanted = OperationRequest("site settings", site=site.name, cluster=cluster.name,
                              options={"settings": settings, "replace": True, "force": form.get("force") == "on"})
    try:
        data = await operate.run_to_end(request, wanted)
    except SecError as exc:
        return render(request, "settings.html", {**context, "data": None, "error": str(exc)}, 400)
    return render(request, "settings.html", {**context, "data": data, "error": None, "saved": True,
                                             "text": _settings_text(data)})


async def backups_page(request: Request) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    check = bool(request.query_params.get("check"))
    rows = await operate.run_to_end(request, OperationRequest("backups", site=site.name, cluster=cluster.name,
                                                              options={"check": check}))
    return render(request, "backups.html", {"site": site, "cluster": cluster, "backups": rows, "checked": check,
                                            "active": "clusters"})


async def upgrade_plan_page(request: Request) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    target = request.query_params.get("to", "").strip()
    if not target:
        return await site_page(request, "give the version to upgrade to", 400)
    try:
        plan = await asyncio.to_thread(upgrade_plan, site.name, target, cluster.name)
    except SecError as exc:
        return await site_page(request, str(exc), 400)
    return render(request, "upgrade.html", {"site": site, "cluster": cluster, "plan": plan, "active": "clusters"})
