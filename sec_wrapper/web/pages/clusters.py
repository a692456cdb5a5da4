"""Clusters, Cluster details and Hosts: the cluster file, as `sec cluster` and `sec host` change it."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import site_state, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations import clusters as cluster_changes
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.site_rows import cluster_rows, site_rows
from sec_wrapper.web import forms, operate, security
from sec_wrapper.web.common import cached_state, form_dict, redirect, stored_keys
from sec_wrapper.web.rendering import render


async def clusters_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    rows = cluster_rows()
    for row in rows:
        sites = (site_state.cached(row["name"]) or {}).get("sites") or {}
        row["states"] = {state["name"]: state for state in sites.values()}
    return render(request, "clusters.html", {"clusters": rows, "keys": stored_keys(), "error": error,
                                             "active": "clusters"}, status_code)


async def add_cluster(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    try:
        op_id = await operate.start(request, forms.cluster_create_request(form, stored_keys(), store.keys_dir()))
    except SecError as exc:
        return await clusters_page(request, str(exc), 400)
    return redirect(f"/operations/{op_id}")


async def connect_cluster(request: Request) -> Response:
    await security.checked_form(request)
    op_id = await operate.start(request, OperationRequest("cluster connect",
                                                          options={"name": request.path_params["name"]}))
    return redirect(f"/operations/{op_id}")


async def remove_cluster(request: Request) -> Response:
    form = form_dict(await security.checked_form(request))
    name = request.path_params["name"]
    if form.get("confirm") != name:
        return await clusters_page(request, f"type the cluster's name ({name}) to remove it", 400)
    try:
        cluster_changes.remove_cluster(name)
    except SecError as exc:
        return await clusters_page(request, str(exc), 400)
    return redirect("/")


async def refresh_cluster(request: Request) -> Response:
    """Reads every site's state of the cluster now (one call per web head, not recorded)."""
    await security.checked_form(request)
    cluster = store.load_cluster(request.path_params["name"])
    await asyncio.to_thread(site_state.probe, cluster.name)
    return redirect(f"/clusters/{cluster.name}")


async def cluster_page(request: Request) -> Response:
    cluster = store.load_cluster(request.path_params["name"])
    states = await cached_state(request, cluster)
    rows = site_rows(cluster)
    for row in rows:
        row["state"] = ((states or {}).get("sites") or {}).get(row["reverse_name"])
    return render(request, "cluster.html", {"cluster": cluster, "sites": rows, "states": states,
                                            "active": "clusters"})


async def hosts_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    clusters = store.list_clusters()
    return render(request, "hosts.html", {"clusters": clusters, "keys": stored_keys(), "roles": store.ROLES,
                                          "error": error, "active": "hosts"}, status_code)


async def host_action(request: Request) -> Response:
    form = await security.checked_form(request)
    action = request.path_params["action"]
    if action not in ("add", "edit", "remove"):
        raise HTTPException(404, f"no host action {action}")
    fields: dict[str, Any] = {**form_dict(form), "roles": [str(r) for r in form.getlist("roles")]}
    try:
        if action == "remove":
            if fields.get("confirm") != fields.get("name"):
                raise SecError(f"type the host's name ({fields.get('name')}) in confirm to remove it")
            await asyncio.to_thread(cluster_changes.remove_host, str(fields.get("cluster") or ""),
                                    str(fields.get("name") or ""), force=forms.checked(fields, "force"))
        else:
            checked = forms.host_fields(fields)
            if action == "add":
                await asyncio.to_thread(cluster_changes.add_host, check=not forms.checked(fields, "no_check"),
                                        **checked)
            else:
                key = checked.pop("key")
                cluster_changes.edit_host(checked.pop("cluster_name"), checked.pop("name"), checked, key=key)
    except SecError as exc:
        return await hosts_page(request, str(exc), 400)
    return redirect("/hosts")
