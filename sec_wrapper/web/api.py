"""The JSON API's handlers (under /api/, routed in routes.py): the same documents as the CLI's --json, and
operations started through the operation service (answered 202 with the operation's id)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sec_wrapper import site_state as state_probe
from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.operations import clusters as cluster_changes
from sec_wrapper.operations import reading, service
from sec_wrapper.operations.modules import low_level_modules
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.release_store import list_releases
from sec_wrapper.site_rows import all_site_rows, cluster_rows
from sec_wrapper.web import forms, operate, security, uploads
from sec_wrapper.web.common import cached_state, filtered_operations, operation_or_404, stored_keys


async def _json_body(request: Request) -> dict[str, Any]:
    security.check_csrf(request)
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SecError(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SecError("the body must be a JSON object of the operation's options")
    return body


async def clusters(request: Request) -> Response:
    return JSONResponse(cluster_rows())


async def cluster(request: Request) -> Response:
    return JSONResponse(store.load_cluster(request.path_params["name"]).to_dict())


async def sites(request: Request) -> Response:
    return JSONResponse(all_site_rows(request.query_params.get("cluster") or None))


async def site(request: Request) -> Response:
    found_cluster, found = store.find_site(request.path_params["site"])
    return JSONResponse({**found.to_dict(), "cluster": found_cluster.name})


async def site_state(request: Request) -> Response:
    """The site's state as `sec site status --json` gives it: from the cache, or read now with ?refresh=1."""
    found_cluster, found = store.find_site(request.path_params["site"])
    if request.query_params.get("refresh") in ("1", "true", "yes"):
        await asyncio.to_thread(state_probe.probe, found_cluster.name, found.name)
    state = await cached_state(request, found_cluster, found)
    if state is None:
        return JSONResponse({"error": f"the state of {found.name} is being read: ask again in a few seconds"},
                            status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(state)


async def cancel_operation(request: Request) -> Response:
    """POST /api/operations/{id}/cancel: 202 once asked (the run stops before its window), 409 inside it."""
    security.check_csrf(request)
    op_id = operation_or_404(request.path_params["id"])["id"]
    try:
        message = await asyncio.to_thread(service.cancel, op_id, operate.user_of(request))
    except SecError as exc:
        return JSONResponse({"error": str(exc)}, status_code=409)
    return JSONResponse({"id": op_id, "message": message}, status_code=202)


async def hosts(request: Request) -> Response:
    return JSONResponse([{"cluster": c.name, **h.__dict__} for c in store.list_clusters() for h in c.hosts])


async def operations(request: Request) -> Response:
    return JSONResponse(filtered_operations(request))


async def operation(request: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(operation_or_404, request.path_params["id"], True))


async def operation_log(request: Request) -> Response:
    try:
        return JSONResponse(reading.log(request.path_params["id"]))
    except SecError as exc:
        raise HTTPException(404, str(exc)) from None


async def releases(request: Request) -> Response:
    return JSONResponse([{k: v for k, v in r.items() if k != "unpacked_size"} for r in list_releases()])


async def site_operation(request: Request) -> Response:
    body = await _json_body(request)
    segment, site_name = request.path_params["operation"], request.path_params["site"]
    op_id = await operate.start(request, forms.site_request(segment, site_name, body))
    return JSONResponse({"id": op_id, "operation": segment, "site": site_name}, status_code=202)


async def create_cluster(request: Request) -> Response:
    """POST /api/clusters {name, app_server, port, user, key}: `sec cluster create`, answered 202 with the
    operation's id (discovery runs over SSH as a recorded operation)."""
    body = await _json_body(request)
    op_id = await operate.start(request, forms.cluster_create_request(body, stored_keys(), store.keys_dir()))
    return JSONResponse({"id": op_id, "operation": "cluster create"}, status_code=202)


async def remove_cluster(request: Request) -> Response:
    """DELETE /api/clusters/<name>: `sec cluster remove` (its file and keys in SEC_HOME; nothing on its hosts)."""
    security.check_csrf(request)
    name = request.path_params["name"]
    store.load_cluster(name)  # an unknown cluster is 400 with the CLI's message
    cluster_changes.remove_cluster(name)
    return JSONResponse({"removed": name})


async def add_host(request: Request) -> Response:
    """POST /api/hosts {cluster, name, address, roles, port, user, key, python, no_check}: `sec host add`
    (the host is checked over SSH first unless no_check)."""
    body = await _json_body(request)
    fields = forms.host_fields(body)
    if not fields["roles"]:
        raise SecError("give the host's roles, e.g. [\"app\"]")
    added = await asyncio.to_thread(cluster_changes.add_host, check=not forms.checked(body, "no_check"), **fields)
    return JSONResponse({k: v for k, v in added.items()
                         if k not in ("checked", "serves") and not (k == "backup_room" and v is None)}, status_code=201)


async def edit_host(request: Request) -> Response:
    """PATCH /api/hosts/<cluster>/<name> with the fields to change: `sec host edit`."""
    body = await _json_body(request)
    fields = forms.host_fields({**body, "cluster": request.path_params["cluster"], "name": request.path_params["name"]})
    key = fields.pop("key")
    edited = cluster_changes.edit_host(fields.pop("cluster_name"), fields.pop("name"), fields, key=key)
    return JSONResponse(edited)


async def remove_host(request: Request) -> Response:
    """DELETE /api/hosts/<cluster>/<name>[?force=true]: `sec host remove`."""
    security.check_csrf(request)
    cluster_name, name = request.path_params["cluster"], request.path_params["name"]
    force = request.query_params.get("force", "") in ("1", "true", "on")
    cluster_changes.remove_host(cluster_name, name, force=force)
    return JSONResponse({"removed": name, "cluster": cluster_name})


async def cluster_action(request: Request) -> Response:
    """POST /api/clusters/<name>/connect (re-check every host)."""
    body = await _json_body(request)
    if body:
        raise SecError("connect takes no options")
    wanted = OperationRequest("cluster connect", options={"name": request.path_params["name"]})
    op_id = await operate.start(request, wanted)
    return JSONResponse({"id": op_id, "operation": "cluster connect"}, status_code=202)


async def upload_release(request: Request) -> Response:
    """POST /api/releases, multipart with the archive as `release`: `sec releases add --json`'s document."""
    return JSONResponse(await uploads.add_uploaded_release(request), status_code=201)


async def advanced(request: Request) -> Response:
    """The low-level modules with their documentation (DOCUMENTATION, fragments merged)."""
    return JSONResponse([{"module": m["module"], "description": m["description"], "documentation": m["doc"]}
                         for m in await asyncio.to_thread(low_level_modules)])


async def metrics(_request: Request) -> Response:
    """Prometheus' text format: the last backups and drills, operations, schedules, the heads' health and the
    hosts' free space (sec_wrapper/metrics.py). Behind the same token as the API."""
    from sec_wrapper import metrics as exposition

    return Response(await asyncio.to_thread(exposition.render), media_type=exposition.content_type())
