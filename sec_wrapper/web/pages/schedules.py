"""Schedules: every schedule with its next and last run; add one, pause, resume or remove it. The same rules
as `sec schedule` (sec_wrapper/schedules.py): a refusal is one line and nothing is saved."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import schedules, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations import service
from sec_wrapper.site_rows import all_site_rows
from sec_wrapper.web import security
from sec_wrapper.web.common import form_dict, redirect
from sec_wrapper.web.rendering import render


async def schedules_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    rows = await asyncio.to_thread(lambda: [schedules.describe(s) for s in schedules.list_schedules()])
    return render(request, "schedules.html", {"schedules": rows, "sites": all_site_rows(),
                                              "operations": schedules.OPERATIONS, "error": error,
                                              "active": "schedules"}, status_code)


async def add_schedule(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    try:
        cluster, site = store.find_site(form.get("site", ""), form.get("cluster") or None)
        options = {"keep": int(form["keep"])} if form.get("keep") and form.get("operation") == "backup" else {}
        schedule = schedules.Schedule(
            name=form.get("name", "").strip(), site=site.name, cluster=cluster.name,
            operation=form.get("operation", ""), rrule=form.get("rrule", "").strip(),
            timezone=form.get("timezone", "").strip() or "UTC", options=options,
            before_days=int(form["before_days"]) if form.get("before_days") else None,
            max_backup_age=schedules.parse_duration(form["max_backup_age"], "max backup age")
            if form.get("max_backup_age") else None,
            # A production trim's runs are confirmed once, here, by typing the site's name.
            confirmed=form.get("confirm", "").strip() == site.name)
        await asyncio.to_thread(schedules.add, schedule, service.prepare)
    except ValueError:
        return await schedules_page(request, "keep and before days take whole numbers", 400)
    except SecError as exc:
        return await schedules_page(request, str(exc), 400)
    return redirect("/schedules")


async def change_schedule(request: Request) -> Response:
    await security.checked_form(request)
    name, action = request.path_params["name"], request.path_params["action"]
    try:
        if action in ("pause", "resume"):
            await asyncio.to_thread(schedules.set_paused, name, action == "pause")
        elif action == "remove":
            await asyncio.to_thread(schedules.remove, name)
        else:
            return await schedules_page(request, f"no action {action}: pause, resume or remove", 404)
    except SecError as exc:
        return await schedules_page(request, str(exc), 400)
    return redirect("/schedules")
