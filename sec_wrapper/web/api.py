"""The JSON API under /api/: the same documents as the CLI's --json, and operations started as the CLI
starts them (answering 202 with the operation's id)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sec_wrapper import history, host_outcome, store
from sec_wrapper.commands.cluster import cluster_rows
from sec_wrapper.commands.site import all_site_rows
from sec_wrapper.errors import SecError
from sec_wrapper.release_store import list_releases
from sec_wrapper.web import actions, launch, security


def user_of(request: Request) -> str:
    return str(request.scope["sec_user"])


def operation_document(op_id: str) -> dict[str, Any]:
    """`sec ops show --json`, plus `result`: the --json document the command printed, once it ended."""
    try:
        op_id = history.resolve_id(op_id)
        record = history.read_record(op_id)
    except SecError as exc:
        raise HTTPException(404, str(exc)) from None
    document: dict[str, Any] = {**record, "tasks": history.task_rows(history.load_events(op_id))}
    result_path = history.operation_dir(op_id) / launch.RESULT_FILE
    if (record.get("status") != "running" and result_path.exists() and not result_path.stat().st_size
            and history.process_alive(record.get("pid"), record.get("pid_start"))):
        # The playbook ended, but the command that started it has yet to write its result: not done yet.
        return {**document, "status": "running"}
    if record.get("status") != "running" and result_path.exists():
        try:
            document["result"] = json.loads(result_path.read_text(encoding="utf-8") or "null")
        except ValueError:
            document["result"] = None
    return document


async def settled_operation_document(op_id: str) -> dict[str, Any]:
    """operation_document, after asking the App server how a run whose `sec` was killed really ended there,
    as `sec ops show` does (host_outcome); the answer is stored in the history once it is final."""
    document = operation_document(op_id)
    if host_outcome.needs_host(document):
        record = await asyncio.to_thread(host_outcome.reconcile, history.read_record(document["id"]))
        document.update(record)
    return document


def operation_log(op_id: str) -> dict[str, Any]:
    document = operation_document(op_id)
    path = history.operation_dir(document["id"]) / "stdout"
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return {"id": document["id"], "status": document.get("status"), "stdout": text}


def filtered_operations(request: Request) -> list[dict[str, Any]]:
    q = request.query_params
    status = q.get("status") or None
    if status and status not in history.STATUSES:
        raise SecError(f"status {status!r}: choose one of {', '.join(history.STATUSES)}")
    site = q.get("site") or None
    sites: set[str] | None = None
    if site:
        try:
            _, found = store.find_site(site)
            sites = {site, found.name, found.reverse_name}
        except SecError:
            sites = {site}
    records = history.list_operations(site=sites, status=status, cluster=q.get("cluster") or None)
    if q.get("operation"):
        records = [r for r in records if r.get("operation") == q["operation"]]
    if q.get("user"):
        records = [r for r in records if r.get("user") == q["user"]]
    limit = q.get("limit")
    return records[: int(limit)] if limit and limit.isdigit() and int(limit) > 0 else records


async def start_site_operation(request: Request, site: str, operation: str, options: dict[str, Any]) -> launch.Launch:
    """The one way a site operation starts from the console, for the API and the pages alike."""
    if operation not in actions.SITE_OPERATIONS:
        raise SecError(f"no operation {operation}: choose one of {', '.join(sorted(actions.SITE_OPERATIONS))}")
    options = dict(options)
    cluster = options.pop("cluster", None)  # only needed when the site's name is in several clusters
    found_cluster, found = store.find_site(site, str(cluster) if cluster else None)
    typed = options.pop("confirm", None)
    confirmed = typed is not None and str(typed) == actions.confirm_name(operation, found.name, options)
    settings_file = None
    if operation == "settings" and "settings" in options:
        settings = options.pop("settings")
        if not isinstance(settings, dict):
            raise SecError("settings: give a JSON object of settings")
        fd, settings_file = tempfile.mkstemp(prefix="sec-settings-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        options["file"] = settings_file
    elif operation == "settings" and "file" in options:
        raise SecError("settings: send the settings as a JSON object in `settings`")
    try:
        argv = actions.site_operation_argv(operation, found.name, options, confirmed, found_cluster.name)
        started = await launch.launch_operation(argv, user_of(request))
    finally:
        if settings_file:  # the command reads it before it records its operation, so it is done with it
            os.unlink(settings_file)
    if started.operation_id is None:
        message = started.message
        if message.endswith("add --yes to go ahead"):
            message = (message[: -len("add --yes to go ahead")] + "type the site's name "
                       f"({actions.confirm_name(operation, found.name, options)}) in confirm to go ahead")
        raise SecError(message)
    return started


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


async def hosts(request: Request) -> Response:
    return JSONResponse([{"cluster": c.name, **h.__dict__} for c in store.list_clusters() for h in c.hosts])


async def operations(request: Request) -> Response:
    return JSONResponse(filtered_operations(request))


async def operation(request: Request) -> Response:
    return JSONResponse(await settled_operation_document(request.path_params["id"]))


async def operation_log_api(request: Request) -> Response:
    return JSONResponse(operation_log(request.path_params["id"]))


async def releases(request: Request) -> Response:
    return JSONResponse([{k: v for k, v in r.items() if k != "unpacked_size"} for r in list_releases()])


async def site_operation(request: Request) -> Response:
    body = await _json_body(request)
    started = await start_site_operation(request, request.path_params["site"], request.path_params["operation"],
                                         body)
    return JSONResponse({"id": started.operation_id, "operation": request.path_params["operation"],
                         "site": request.path_params["site"]}, status_code=202)


async def create_cluster(request: Request) -> Response:
    """POST /api/clusters {name, app_server, port, user, key}: `sec cluster create`, answered 202 with the
    operation's id (discovery runs over SSH as a recorded operation)."""
    from sec_wrapper.web.pages.common import stored_keys

    body = await _json_body(request)
    started = await launch.launch_operation(actions.cluster_create_argv(body, stored_keys(), store.keys_dir()),
                                            user_of(request))
    if started.operation_id is None:
        raise SecError(started.message)
    return JSONResponse({"id": started.operation_id, "operation": "cluster create"}, status_code=202)


async def remove_cluster(request: Request) -> Response:
    """DELETE /api/clusters/<name>: `sec cluster remove` (its file and keys in SEC_HOME; nothing on its hosts)."""
    security.check_csrf(request)
    name = request.path_params["name"]
    store.load_cluster(name)  # an unknown cluster is 400 with the CLI's message
    await _run_or_refuse(request, ["cluster", "remove", name])
    return JSONResponse({"removed": name})


async def _run_or_refuse(request: Request, argv: list[str]) -> None:
    result = await launch.run_cli(argv, user_of(request))
    if not result.ok:
        raise SecError(result.message)


def _host_document(cluster_name: str, name: str) -> dict[str, Any]:
    found = store.load_cluster(cluster_name)
    return next({"cluster": found.name, **h.__dict__} for h in found.hosts if h.name == name)


async def _host_change(request: Request, action: str, fields: dict[str, Any]) -> None:
    from sec_wrapper.web.pages.common import stored_keys  # here: the pages package imports this module

    roles = fields.pop("roles", None) or []
    if isinstance(roles, str):
        roles = [r for r in roles.split(",") if r]
    if not isinstance(roles, list):
        raise SecError("roles: give a list such as [\"app\", \"api\"]")
    await _run_or_refuse(request, actions.host_argv(action, fields, [str(r) for r in roles], stored_keys(),
                                                    store.keys_dir()))


async def add_host(request: Request) -> Response:
    """POST /api/hosts {cluster, name, address, roles, port, user, key, python, no_check}: `sec host add`
    (the host is checked over SSH first unless no_check)."""
    body = await _json_body(request)
    await _host_change(request, "add", body)
    return JSONResponse(_host_document(str(body["cluster"]), str(body["name"])), status_code=201)


async def edit_host(request: Request) -> Response:
    """PATCH /api/hosts/<cluster>/<name> with the fields to change: `sec host edit`."""
    body = await _json_body(request)
    cluster_name, name = request.path_params["cluster"], request.path_params["name"]
    await _host_change(request, "edit", {**body, "cluster": cluster_name, "name": name})
    return JSONResponse(_host_document(cluster_name, name))


async def remove_host(request: Request) -> Response:
    """DELETE /api/hosts/<cluster>/<name>[?force=true]: `sec host remove`."""
    security.check_csrf(request)
    cluster_name, name = request.path_params["cluster"], request.path_params["name"]
    force = request.query_params.get("force", "") in ("1", "true", "on")
    await _host_change(request, "remove", {"cluster": cluster_name, "name": name, "force": force})
    return JSONResponse({"removed": name, "cluster": cluster_name})


async def cluster_action(request: Request) -> Response:
    """POST /api/clusters/<name>/connect (re-check every host)."""
    body = await _json_body(request)
    if body:
        raise SecError("connect takes no options")
    started = await launch.launch_operation(["cluster", "connect", request.path_params["name"], "--json"],
                                            user_of(request))
    if started.operation_id is None:
        raise SecError(started.message)
    return JSONResponse({"id": started.operation_id, "operation": "cluster connect"}, status_code=202)


async def upload_release(request: Request) -> Response:
    """POST /api/releases, multipart with the archive as `release`: `sec releases add --json`'s document."""
    from sec_wrapper.web.pages import add_uploaded_release

    result = await add_uploaded_release(request)
    if not result.ok:
        raise SecError(result.message)
    return JSONResponse(json.loads(result.stdout), status_code=201)


async def advanced(request: Request) -> Response:
    """The low-level modules with their documentation (DOCUMENTATION, fragments merged)."""
    from sec_wrapper.web.pages.advanced import modules

    return JSONResponse([{"module": m["module"], "description": m["doc"].get("short_description", ""),
                          "documentation": m["doc"]} for m in await asyncio.to_thread(modules)])


routes = [
    Route("/api/clusters", clusters),
    Route("/api/clusters", create_cluster, methods=["POST"]),
    Route("/api/clusters/{name}", cluster),
    Route("/api/clusters/{name}", remove_cluster, methods=["DELETE"]),
    Route("/api/clusters/{name}/connect", cluster_action, methods=["POST"]),
    Route("/api/sites", sites),
    Route("/api/sites/{site}", site),
    Route("/api/sites/{site}/{operation}", site_operation, methods=["POST"]),
    Route("/api/hosts", hosts),
    Route("/api/hosts", add_host, methods=["POST"]),
    Route("/api/hosts/{cluster}/{name}", edit_host, methods=["PATCH"]),
    Route("/api/hosts/{cluster}/{name}", remove_host, methods=["DELETE"]),
    Route("/api/operations", operations),
    Route("/api/operations/{id}", operation),
    Route("/api/operations/{id}/log", operation_log_api),
    Route("/api/releases", releases),
    Route("/api/releases", upload_release, methods=["POST"]),
    Route("/api/advanced", advanced),
]
