"""Clusters, Cluster details and Hosts: the cluster file, as `sec cluster` and `sec host` change it."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import history, store
from sec_wrapper.errors import SecError
from sec_wrapper.operations import clusters as cluster_changes
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.site_rows import cluster_rows, site_rows
from sec_wrapper.web import forms, operate, security
from sec_wrapper.web.common import form_dict, redirect, stored_keys
from sec_wrapper.web.rendering import render

_HEALTH_LOOKBACK = 30  # operations of a site searched for its last health check


async def clusters_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    return render(request, "clusters.html", {"clusters": cluster_rows(), "keys": stored_keys(), "error": error,
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


def last_health(site: store.Site) -> dict[str, Any]:
    """The site's health as last checked on its App server: by "Check health" (fpt.sec.site_health run as an
    advanced operation) or by an operation that checks it (maintenance off, redeploy, restore, upgrade)."""
    for record in history.list_operations(site={site.name, site.reverse_name}, limit=_HEALTH_LOOKBACK):
        if record.get("status") == "running":
            continue
        if record.get("operation") == "advanced site_health":
            ok = record.get("status") == "successful"
            return {"state": "healthy" if ok else "unhealthy", "message": record.get("message"), "op": record}
        results = history.task_results(history.load_events(record["id"]), "fpt.sec.site_health")
        if results:
            answer = next(iter(results.values()))
            failed = bool(answer.get("failed"))
            return {"state": "unhealthy" if failed else "healthy",
                    "message": history.result_message(answer) if failed else "", "op": record}
    return {"state": "not checked", "message": "", "op": None}


async def check_health(request: Request) -> Response:
    """Checks every site of the cluster on its App server, each as its own recorded operation."""
    await security.checked_form(request)
    cluster = store.load_cluster(request.path_params["name"])
    refused = []
    for site in cluster.sites:
        if not site.health_url:
            refused.append(f"{site.name}: no health URL was discovered")
            continue
        wanted = OperationRequest("advanced run", site=site.name, cluster=cluster.name, options={
            "module": "site_health", "args": [f"url={site.health_url}", f"host_header={site.name}"]})
        try:
            await operate.start(request, wanted)
        except SecError as exc:
            refused.append(f"{site.name}: {exc}")
    if refused:
        raise SecError("; ".join(refused))
    return redirect(f"/operations?cluster={cluster.name}&operation=advanced+site_health")


async def cluster_page(request: Request) -> Response:
    cluster = store.load_cluster(request.path_params["name"])
    rows = site_rows(cluster)
    for row, site in zip(rows, cluster.sites, strict=True):
        row["health"] = await asyncio.to_thread(last_health, site)
    return render(request, "cluster.html", {"cluster": cluster, "sites": rows, "active": "clusters"})


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
