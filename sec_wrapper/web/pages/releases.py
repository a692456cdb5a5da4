"""Releases: the list with verification state and sites, and the upload."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.release_store import list_releases
from sec_wrapper.web import launch, security
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
