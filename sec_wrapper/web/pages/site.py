"""Site details: the site's facts, its operations, settings, backups and the upgrade plan."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import (
    SCHEMA,
    SettingsError,
    apply_update,
    describe_schema,
    diff_settings,
)
from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso
from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import history, schedules, site_state, store, upgrades
from sec_wrapper.errors import SecError
from sec_wrapper.operations.site_work import upgrade_plan
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.release_store import upgrade_targets
from sec_wrapper.web import forms, operate, security
from sec_wrapper.web.common import cached_state, form_dict, redirect
from sec_wrapper.web.rendering import render


def upgrade_choices(cluster: store.Cluster, site: store.Site) -> list[dict[str, Any]]:
    """The versions the upgrade form offers: those the enforced path allows over the releases folder, each
    with the staging-first warning that blocks it until "I have tested this" is ticked."""
    return [{"version": v, "warning": upgrades.staging_warning(cluster, site, v)}
            for v in upgrade_targets(site.version)]


async def site_page(request: Request, error: str | None = None, status_code: int = 200,
                    extra: dict[str, Any] | None = None) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    others = [s.name for s in cluster.sites if s.name != site.name]
    recent = history.list_operations(site={site.name, site.reverse_name}, limit=10)
    state = await cached_state(request, cluster, site)
    planned = [schedules.describe(s) for s in schedules.list_schedules()
               if s.cluster == cluster.name and s.site == site.name]
    return render(request, "site.html", {"cluster": cluster, "site": site, "others": others, "recent": recent,
                                         "schedules": planned,
                                         "state": state, "upgrade_choices": upgrade_choices(cluster, site),
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


async def refresh_site(request: Request) -> Response:
    """Reads the site's state now (one call per web head, not recorded), then back to the page asked from."""
    form = form_dict(await security.checked_form(request))
    cluster, site = store.find_site(request.path_params["site"])
    await asyncio.to_thread(site_state.probe, cluster.name, site.name)
    back = form.get("next") or ""
    return redirect(back if back.startswith(f"/sites/{site.name}") else f"/sites/{site.name}")


def setting_fields(persisted: dict[str, Any]) -> list[dict[str, Any]]:
    """One form field per schema key, with its current value as text; then the keys the schema does not know."""
    fields = []
    for entry in describe_schema():
        value = persisted.get(entry["key"])
        shown = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
        setting = SCHEMA[entry["key"]]
        fields.append({**entry, "value": shown, "set": entry["key"] in persisted, "minimum": setting.minimum,
                       "maximum": setting.maximum, "choices": list(setting.choices), "unit": setting.unit})
    unknown = [{"key": k, "value": json.dumps(v)} for k, v in persisted.items() if k not in SCHEMA]
    return [*fields, *[{**u, "unknown": True} for u in unknown]]


def changed_settings(form: dict[str, str], persisted: dict[str, Any]) -> dict[str, Any]:
    """The fields the user changed, as an update (a cleared field removes its key)."""
    updates: dict[str, Any] = {}
    for key in SCHEMA:
        name = f"setting.{key}"
        if name not in form:
            continue
        typed = form[name].strip()
        before = persisted.get(key)
        shown = "" if before is None else ("true" if before is True else "false" if before is False else str(before))
        if typed != shown:
            updates[key] = typed if typed != "" else None
    return updates


async def settings_page(request: Request, error: str | None = None, status_code: int = 200,
                        extra: dict[str, Any] | None = None) -> Response:
    """The persisted settings as the last state read shows them (from any web head that answered): answered
    from the cache, not recorded."""
    cluster, site = store.find_site(request.path_params["site"])
    state = await cached_state(request, cluster, site)
    settings = (state or {}).get("settings") or {}
    persisted = settings.get("persisted") if isinstance(settings.get("persisted"), dict) else None
    context = {"site": site, "cluster": cluster, "state": state, "settings": settings, "error": error,
               "fields": setting_fields(persisted) if persisted is not None else [], "active": "clusters",
               **(extra or {})}
    return render(request, "settings.html", context, status_code)


async def save_settings(request: Request) -> Response:
    """Step one (preview): the changes checked against the schema and shown as a diff, nothing written.
    Step two (save, with the previewed changes): the site settings operation writes them."""
    form = form_dict(await security.checked_form(request))
    cluster, site = store.find_site(request.path_params["site"])
    state = site_state.site_state(cluster.name, site.name) or {}
    persisted = ((state.get("settings") or {}).get("persisted")) or {}
    force = form.get("force") == "on"
    if form.get("step") == "save":
        try:
            updates = json.loads(form.get("updates") or "{}")
            if not isinstance(updates, dict):
                raise ValueError("not an object")
        except ValueError:
            return await settings_page(request, "the previewed changes were lost: change the fields again", 400)
        wanted = OperationRequest("site settings", site=site.name, cluster=cluster.name,
                                  options={"settings": updates, "replace": False, "force": force})
        try:
            data = await operate.run_to_end(request, wanted)
        except SecError as exc:
            return await settings_page(request, str(exc), 400)
        await asyncio.to_thread(site_state.probe, cluster.name, site.name)
        return await settings_page(request, extra={"saved": data})
    updates = changed_settings(form, persisted)
    if not updates:
        return await settings_page(request, "nothing changed: edit a field, then preview", 400)
    try:
        new, warnings = apply_update(persisted, updates, replace=False, force=force)
    except SettingsError as exc:
        return await settings_page(request, f"invalid setting {exc}", 400)
    return await settings_page(request, extra={"preview": diff_settings(persisted, new), "warnings": warnings,
                                               "updates": json.dumps(updates), "force": force})


async def backups_page(request: Request) -> Response:
    """The backups as the last state read lists them (from their manifests), answered from the cache and not
    recorded; "Check every file" re-reads them all, as a recorded operation."""
    cluster, site = store.find_site(request.path_params["site"])
    check = bool(request.query_params.get("check"))
    if check:
        rows = await operate.run_to_end(request, OperationRequest("backups", site=site.name, cluster=cluster.name,
                                                                  options={"check": True}))
        await asyncio.to_thread(site_state.probe, cluster.name, site.name)
    state = await cached_state(request, cluster, site)
    backups = (state or {}).get("backups") or {}
    if not check:
        rows = list(reversed(backups.get("items") or []))
        now = time.time()
        for row in rows:
            started = epoch_of_iso(row.get("started") or "")
            row["age_seconds"] = now - started if started else None
    replaced = ((state or {}).get("database") or {}).get("replaced") or []
    if check:
        rows = [row for row in rows if row.get("kind") != "replaced"]  # the table below lists them
    return render(request, "backups.html", {"site": site, "cluster": cluster, "backups": rows, "checked": check,
                                            "state": state, "total": backups.get("total_bytes"),
                                            "replaced": replaced, "active": "clusters"})


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
