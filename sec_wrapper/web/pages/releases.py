"""Releases: the list with verification state and sites, and the upload."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.release_store import list_releases
from sec_wrapper.web import uploads
from sec_wrapper.web.rendering import render


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


async def upload_release(request: Request) -> Response:
    try:
        added = await uploads.add_uploaded_release(request)
    except SecError as exc:
        return await releases_page(request, str(exc), status_code=400)
    return await releases_page(request, added=added)
