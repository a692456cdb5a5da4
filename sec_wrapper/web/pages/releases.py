"""Releases: the list with verification state and sites, and the upload."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.release_store import list_releases
from sec_wrapper.web import launch, uploads
from sec_wrapper.web.api import user_of
from sec_wrapper.web.app import render


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
    """The form's `release` file, streamed into a private folder beside releases/, then `sec releases add` on
    it (which checks it completely and copies it in, or refuses it whole); the upload is removed either way."""
    upload = await uploads.receive_upload(request)
    try:
        if upload.path is None:
            raise SecError("choose a release archive (<name>-<version>.tar.gz) as the form's `release` file")
        return await launch.run_cli(["releases", "add", str(upload.path), "--json"], user_of(request))
    finally:
        upload.remove()


async def upload_release(request: Request) -> Response:
    try:
        result = await add_uploaded_release(request)
    except SecError as exc:
        return await releases_page(request, str(exc), status_code=400)
    if not result.ok:
        return await releases_page(request, result.message, status_code=400)
    return await releases_page(request, added=json.loads(result.stdout))
