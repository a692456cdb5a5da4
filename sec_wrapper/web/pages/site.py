"""Site details: the site's facts, its operations, settings, backups and the upgrade plan."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import history, store
from sec_wrapper.errors import SecError
from sec_wrapper.web import actions, launch, security
from sec_wrapper.web.api import start_site_operation, user_of
from sec_wrapper.web.app import render
from sec_wrapper.web.pages.common import form_dict, redirect


async def site_page(request: Request, error: str | None = None, status_code: int = 200,
                    extra: dict[str, Any] | None = None) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    others = [s.name for s in cluster.sites if s.name != site.name]
    recent = history.list_operations(site={site.name, site.reverse_name}, limit=10)
    return render(request, "site.html", {"cluster": cluster, "site": site, "others": others, "recent": recent,
                                         "error": error, "active": "clusters", **(extra or {})}, status_code)


async def run_site_operation(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    operation = request.path_params["operation"]
    options = actions.form_options(operation, form)
    if "confirm" in form:
        options["confirm"] = form["confirm"]
    try:
        started = await start_site_operation(request, request.path_params["site"], operation, options)
    except SecError as exc:
        return await site_page(request, str(exc), 400)
    return redirect(f"/operations/{started.operation_id}")


async def settings_page(request: Request) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    result = await launch.run_cli(["site", "settings", site.name, "--json"], user_of(request))
    if not result.ok:
        raise SecError(result.message)
    data = json.loads(result.stdout)
    return render(request, "settings.html", {"site": site, "cluster": cluster, "data": data, "error": None,
                                             "text": json.dumps(data.get("settings") or {}, indent=2,
                                                                sort_keys=True), "active": "clusters"})


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
    fd, path = tempfile.mkstemp(prefix="sec-settings-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        argv = ["site", "settings", site.name, "--file", path, "--replace", "--json"]
        if form.get("force") == "on":
            argv.append("--force")
        result = await launch.run_cli(argv, user_of(request))
    finally:
        os.unlink(path)
    if not result.ok:
        return render(request, "settings.html", {**context, "data": None, "error": result.message}, 400)
    data = json.loads(result.stdout)
    return render(request, "settings.html", {**context, "data": data, "error": None, "saved": True,
                                             "text": json.dumps(data.get("settings") or {}, indent=2,
                                                                sort_keys=True)})


async def backups_page(request: Request) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    argv = ["backups", site.name, "--json"]
    if request.query_params.get("check"):
        argv.append("--check")
    result = await launch.run_cli(argv, user_of(request))
    if not result.ok:
        raise SecError(result.message)
    return render(request, "backups.html", {"site": site, "cluster": cluster, "backups": json.loads(result.stdout),
                                            "checked": bool(request.query_params.get("check")),
                                            "active": "clusters"})


async def upgrade_plan_page(request: Request) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    target = request.query_params.get("to", "").strip()
    if not target or target.startswith("-"):
        return await site_page(request, "give the version to upgrade to", 400)
    result = await launch.run_cli(["upgrade", site.name, "--to", target, "--plan", "--json"], user_of(request))
    if not result.ok:
        return await site_page(request, result.message, 400)
    return render(request, "upgrade.html", {"site": site, "cluster": cluster, "plan": json.loads(result.stdout),
                                            "active": "clusters"})
