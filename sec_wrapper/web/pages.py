"""The console's pages: the vendor console's tabs, server-rendered, each acting through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from sec_wrapper import history, store
from sec_wrapper.commands.cluster import cluster_rows, site_rows
from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.release_store import list_releases
from sec_wrapper.web import actions, launch, security
from sec_wrapper.web.api import filtered_operations, operation_document, start_site_operation, user_of
from sec_wrapper.web.app import render

_SSE_POLL = 0.3
_HEALTH_LOOKBACK = 30  # operations of a site searched for its last health check


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _form_dict(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def stored_keys() -> list[str]:
    """Private keys in SEC_HOME/keys, as paths relative to it (what "Add cluster" offers)."""
    base = store.keys_dir()
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


# ---- Clusters -------------------------------------------------------------------------------------

async def clusters_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    return render(request, "clusters.html", {"clusters": cluster_rows(), "keys": stored_keys(), "error": error,
                                             "active": "clusters"}, status_code)


async def add_cluster(request: Request) -> Response:
    form = _form_dict(await security.checked_form(request))
    name, address = form.get("name", "").strip(), form.get("app_server", "").strip()
    if not name or not address or name.startswith("-") or address.startswith("-"):
        return await clusters_page(request, "give the cluster's name and its App server's address", 400)
    argv = ["cluster", "create", name, "--app-server", address,
            "--port", form.get("port", "22").strip() or "22", "--user", form.get("user", "root").strip() or "root"]
    if form.get("key"):
        key = form["key"]
        if key not in stored_keys():
            return await clusters_page(request, f"no key {key!r} in {store.keys_dir()}", 400)
        argv += ["--key", str(store.keys_dir() / key)]
    started = await launch.launch_operation([*argv, "--json"], user_of(request))
    if started.operation_id is None:
        return await clusters_page(request, started.message, 400)
    return _redirect(f"/operations/{started.operation_id}")


async def connect_cluster(request: Request) -> Response:
    await security.checked_form(request)
    started = await launch.launch_operation(["cluster", "connect", request.path_params["name"], "--json"],
                                            user_of(request))
    if started.operation_id is None:
        raise SecError(started.message)
    return _redirect(f"/operations/{started.operation_id}")


async def remove_cluster(request: Request) -> Response:
    form = _form_dict(await security.checked_form(request))
    name = request.path_params["name"]
    if form.get("confirm") != name:
        return await clusters_page(request, f"type the cluster's name ({name}) to remove it", 400)
    result = await launch.run_cli(["cluster", "remove", name], user_of(request))
    if not result.ok:
        return await clusters_page(request, result.message, 400)
    return _redirect("/")


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
        started = await launch.launch_operation(
            ["advanced", "run", "site_health", site.name, f"url={site.health_url}", f"host_header={site.name}",
             "--cluster", cluster.name, "--json"], user_of(request))
        if started.operation_id is None:
            refused.append(f"{site.name}: {started.message}")
    if refused:
        raise SecError("; ".join(refused))
    return _redirect(f"/operations?cluster={cluster.name}&operation=advanced+site_health")


async def cluster_page(request: Request) -> Response:
    cluster = store.load_cluster(request.path_params["name"])
    rows = site_rows(cluster)
    for row, site in zip(rows, cluster.sites, strict=True):
        row["health"] = await asyncio.to_thread(last_health, site)
    return render(request, "cluster.html", {"cluster": cluster, "sites": rows, "active": "clusters"})


# ---- Site details ---------------------------------------------------------------------------------

async def site_page(request: Request, error: str | None = None, status_code: int = 200,
                    extra: dict[str, Any] | None = None) -> Response:
    cluster, site = store.find_site(request.path_params["site"])
    others = [s.name for s in cluster.sites if s.name != site.name]
    recent = history.list_operations(site={site.name, site.reverse_name}, limit=10)
    return render(request, "site.html", {"cluster": cluster, "site": site, "others": others, "recent": recent,
                                         "error": error, "active": "clusters", **(extra or {})}, status_code)


async def run_site_operation(request: Request) -> Response:
    form = _form_dict(await security.checked_form(request))
    operation = request.path_params["operation"]
    options = actions.form_options(operation, form)
    if "confirm" in form:
        options["confirm"] = form["confirm"]
    try:
        started = await start_site_operation(request, request.path_params["site"], operation, options)
    except SecError as exc:
        return await site_page(request, str(exc), 400)
    return _redirect(f"/operations/{started.operation_id}")


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
    form = _form_dict(await security.checked_form(request))
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


# ---- Hosts ----------------------------------------------------------------------------------------

async def hosts_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    clusters = store.list_clusters()
    return render(request, "hosts.html", {"clusters": clusters, "keys": stored_keys(), "roles": store.ROLES,
                                          "error": error, "active": "hosts"}, status_code)


def _host_options(form: dict[str, str], roles: list[str]) -> list[str]:
    argv = []
    for field in ("address", "port", "user", "python"):
        value = form.get(field, "").strip()
        if value:
            if value.startswith("-"):
                raise SecError(f"{field}: {value!r} is not valid")
            argv.append(f"--{field}={value}")
    if form.get("key"):
        if form["key"] not in stored_keys():
            raise SecError(f"no key {form['key']!r} in {store.keys_dir()}")
        argv.append(f"--key={store.keys_dir() / form['key']}")
    if roles:
        argv.append(f"--roles={','.join(roles)}")
    return argv


async def host_action(request: Request) -> Response:
    form = await security.checked_form(request)
    fields = _form_dict(form)
    roles = [str(r) for r in form.getlist("roles")]
    action = request.path_params["action"]
    cluster = fields.get("cluster", "").strip()
    name = fields.get("name", "").strip()
    try:
        if not cluster or not name or cluster.startswith("-") or name.startswith("-"):
            raise SecError("give the cluster and the host's name")
        if action == "remove":
            argv = ["host", "remove", cluster, name] + (["--force"] if fields.get("force") == "on" else [])
        elif action in ("add", "edit"):
            argv = ["host", action, cluster, name, *_host_options(fields, roles)]
        else:
            raise HTTPException(404, f"no host action {action}")
    except SecError as exc:
        return await hosts_page(request, str(exc), 400)
    result = await launch.run_cli(argv, user_of(request))
    if not result.ok:
        return await hosts_page(request, result.message, 400)
    return _redirect("/hosts")


# ---- Operations -----------------------------------------------------------------------------------

async def operations_page(request: Request) -> Response:
    records = filtered_operations(request)
    names = sorted({r.get("operation") or "" for r in history.list_operations()} - {""})
    return render(request, "operations.html", {"records": records[:200], "filters": dict(request.query_params),
                                               "statuses": history.STATUSES, "names": names,
                                               "active": "operations"})


async def operation_page(request: Request) -> Response:
    document = operation_document(request.path_params["id"])
    return render(request, "operation.html", {"op": document, "active": "operations",
                                              "duration": history.format_duration(document.get("duration"))})


async def operation_events(request: Request) -> Response:
    """Server-sent events: the log as it grows (`log`), then the final record (`end`). A reconnecting
    browser sends Last-Event-ID, the byte offset it has, and gets only what follows."""
    op_id = operation_document(request.path_params["id"])["id"]
    path = history.operation_dir(op_id) / "stdout"
    try:
        offset = max(0, int(request.headers.get("last-event-id", "0")))
    except ValueError:
        offset = 0

    async def stream():
        nonlocal offset
        yield "retry: 1000\n\n"
        while True:
            running = history.read_record(op_id).get("status") == "running"
            data = b""
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            if running:
                data = data[: data.rfind(b"\n") + 1]  # whole lines only while more may come
            if data:
                offset += len(data)
                text = json.dumps(data.decode("utf-8", errors="replace"))
                yield f"id: {offset}\nevent: log\ndata: {text}\n\n"
            if not running:
                document = operation_document(op_id)
                summary = {k: document.get(k) for k in ("status", "message", "duration", "ended", "rc")}
                summary["duration_text"] = history.format_duration(document.get("duration"))
                yield f"event: end\ndata: {json.dumps(summary)}\n\n"
                return
            if await request.is_disconnected():
                return
            yield ": waiting\n\n"
            await asyncio.sleep(_SSE_POLL)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# ---- Releases -------------------------------------------------------------------------------------

def _release_rows() -> list[dict[str, Any]]:
    running: dict[str, list[str]] = {}
    for cluster in store.list_clusters():
        for site in cluster.sites:
            running.setdefault(site.version or "", []).append(site.name)
    return [{**r, "running": running.get(r["version"], [])} for r in list_releases()]


async def releases_page(request: Request, error: str | None = None, added: dict | None = None,
                        status_code: int = 200) -> Response:
    return render(request, "releases.html", {"releases": _release_rows(), "error": error, "added": added,
                                             "active": "releases"}, status_code)


async def add_uploaded_release(request: Request) -> launch.CliResult:
    """The form's `release` file, streamed to a private folder, then `sec releases add` on it (which checks
    it completely and copies it in, or refuses it whole); the upload is removed either way."""
    form = await security.checked_form(request)  # multipart: the file is spooled to disk as it arrives
    upload = form.get("release")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise SecError("choose a release archive (<name>-<version>.tar.gz) as the form's `release` file")
    staging = Path(tempfile.mkdtemp(prefix="upload-", dir=_uploads_dir()))
    try:
        target = staging / Path(upload.filename).name
        with open(target, "wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        return await launch.run_cli(["releases", "add", str(target), "--json"], user_of(request))
    finally:
        await upload.close()
        shutil.rmtree(staging, ignore_errors=True)


async def upload_release(request: Request) -> Response:
    try:
        result = await add_uploaded_release(request)
    except SecError as exc:
        return await releases_page(request, str(exc), status_code=400)
    if not result.ok:
        return await releases_page(request, result.message, status_code=400)
    return await releases_page(request, added=json.loads(result.stdout))


def _uploads_dir() -> Path:
    path = sec_home() / "uploads"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


# ---- Advanced operations --------------------------------------------------------------------------

_modules_cache: list[dict[str, Any]] = []


def modules() -> list[dict[str, Any]]:
    return _modules()


def _modules() -> list[dict[str, Any]]:
    if not _modules_cache:
        from ansible_collections.fpt.sec.plugins.plugin_utils.module_docs import module_doc

        from sec_wrapper.commands.advanced import MODULES_DIR, NOT_LISTED

        for path in sorted(MODULES_DIR.glob("*.py")):
            if path.stem in NOT_LISTED or path.stem.startswith("_"):
                continue
            doc = module_doc(str(path))
            _modules_cache.append({"module": path.stem, "doc": doc, "options": doc.get("options") or {}})
    return _modules_cache


async def advanced_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    modules = await asyncio.to_thread(_modules)
    sites = [s.name for c in store.list_clusters() for s in c.sites]
    return render(request, "advanced.html", {"modules": modules, "sites": sites, "error": error,
                                             "chosen": request.query_params.get("module"), "active": "advanced"},
                  status_code)


async def run_advanced(request: Request) -> Response:
    form = _form_dict(await security.checked_form(request))
    module, site = form.pop("module", ""), form.pop("site", "")
    form.pop("csrf", None)
    known = {m["module"]: m for m in await asyncio.to_thread(_modules)}
    if module not in known:
        return await advanced_page(request, f"no low-level module {module!r}", 400)
    args = []
    for key, value in form.items():
        if key.startswith("opt_") and value.strip():
            name = key[4:]
            if name not in known[module]["options"]:
                return await advanced_page(request, f"fpt.sec.{module} has no option {name}", 400)
            args.append(f"{name}={value.strip()}")
    if not site or site.startswith("-"):
        return await advanced_page(request, "choose a site", 400)
    started = await launch.launch_operation(["advanced", "run", module, site, *args, "--json"], user_of(request))
    if started.operation_id is None:
        return await advanced_page(request, started.message, 400)
    return _redirect(f"/operations/{started.operation_id}")


routes = [
    Route("/", clusters_page),
    Route("/clusters", add_cluster, methods=["POST"]),
    Route("/clusters/{name}", cluster_page),
    Route("/clusters/{name}/connect", connect_cluster, methods=["POST"]),
    Route("/clusters/{name}/remove", remove_cluster, methods=["POST"]),
    Route("/clusters/{name}/health", check_health, methods=["POST"]),
    Route("/sites/{site}", site_page),
    Route("/sites/{site}/run/{operation}", run_site_operation, methods=["POST"]),
    Route("/sites/{site}/settings", settings_page),
    Route("/sites/{site}/settings", save_settings, methods=["POST"]),
    Route("/sites/{site}/backups", backups_page),
    Route("/sites/{site}/upgrade", upgrade_plan_page),
    Route("/hosts", hosts_page),
    Route("/hosts/{action}", host_action, methods=["POST"]),
    Route("/operations", operations_page),
    Route("/operations/{id}", operation_page),
    Route("/operations/{id}/events", operation_events),
    Route("/releases", releases_page),
    Route("/releases", upload_release, methods=["POST"]),
    Route("/advanced", advanced_page),
    Route("/advanced", run_advanced, methods=["POST"]),
]
