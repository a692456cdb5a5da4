"""Advanced operations: every fpt.sec module with its own documentation and a form for its options."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import store
from sec_wrapper.operation_inputs import MAX_TEXT
from sec_wrapper.web import launch, security
from sec_wrapper.web.api import user_of
from sec_wrapper.web.app import render
from sec_wrapper.web.pages.common import form_dict, redirect

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
    form = form_dict(await security.checked_form(request))
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
            if len(value) > MAX_TEXT:
                return await advanced_page(request, f"{name}: {len(value)} characters is more than an operation "
                                                    f"takes: give at most {MAX_TEXT}", 400)
            args.append(f"{name}={value.strip()}")
    if not site or site.startswith("-"):
        return await advanced_page(request, "choose a site", 400)
    started = await launch.launch_operation(["advanced", "run", module, site, *args, "--json"], user_of(request))
    if started.operation_id is None:
        return await advanced_page(request, started.message, 400)
    return redirect(f"/operations/{started.operation_id}")
