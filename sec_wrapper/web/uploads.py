"""A release upload, streamed from the request straight into a private folder under SEC_HOME.

Starlette's own form parser spools file parts to the system's temp folder first, so a large archive took twice
its size on disk at peak, on another filesystem. Here the multipart body is parsed as it arrives
(python-multipart's parser), the one file part written once, into `uploads/` beside `releases/`, and the CSRF
token must come before the file (the console's form sends it first), so nothing is written for a forged form.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request

from sec_wrapper.errors import SecError
from sec_wrapper.paths import sec_home
from sec_wrapper.release_store import add_release_recorded
from sec_wrapper.web import security

MAX_FIELD = 64 * 1024  # a form field other than the file


def uploads_dir() -> Path:
    path = sec_home() / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def safe_file_name(name: str) -> str:
    """The upload's own name, or SecError: never a path, `.`, `..` or a hidden name."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not base or base.startswith(".") or "\x00" in base or len(base) > 255:
        raise SecError(f"the upload's file name {name!r} is not a file name: upload it as "
                       "<name>-<version>.tar.gz")
    return base


@dataclass
class Upload:
    folder: Path  # private, removed by `remove`
    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # the file part, once written

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


async def receive_upload(request: Request, file_field: str = "release") -> Upload:
    """Parses the multipart body as it arrives; the caller removes the Upload (even when this raises, it has
    removed what it wrote)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    token_auth = request.scope.get("sec_auth") == "token"
    if content_type != b"multipart/form-data" or not boundary:
        if not token_auth:
            security.check_csrf(request)  # a forged request is refused as forged, whatever its shape
        raise SecError(f"send the archive as multipart/form-data with the file as `{file_field}`")
    header_csrf = request.headers.get(security.CSRF_HEADER)
    if not token_auth and header_csrf:
        security.check_csrf(request)
    csrf_ok = token_auth or bool(header_csrf)
    upload = Upload(Path(tempfile.mkdtemp(prefix="upload-", dir=uploads_dir())))
    state: dict = {"name": None, "filename": None, "header": b"", "value": b"", "headers": {}, "buffer": b"",
                   "out": None}
    errors: list[Exception] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header"].lower()] = state["value"]
        state["header"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        nonlocal csrf_ok
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        state["buffer"], state["out"] = b"", None
        if filename is None:
            return
        if state["name"] != file_field or upload.path is not None:
            raise SecError(f"one file only, as the form's `{file_field}`")
        if not csrf_ok:  # the token comes before the file, so a forged form writes nothing
            security.check_csrf(request, upload.fields)  # type: ignore[arg-type]
            csrf_ok = True
        upload.path = upload.folder / safe_file_name(filename.decode("utf-8", "replace"))
        state["out"] = open(upload.path, "xb")  # noqa: SIM115 - closed at the part's end or on failure

    def on_part_data(data: bytes, start: int, end: int) -> None:
        out: IO[bytes] | None = state["out"]
        if out is not None:
            out.write(data[start:end])
        else:
            state["buffer"] += data[start:end]
            if len(state["buffer"]) > MAX_FIELD:
                raise SecError(f"the form field {state['name']!r} is longer than {MAX_FIELD} bytes")

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
        else:
            upload.fields[state["name"]] = state["buffer"].decode("utf-8", "replace")
        state["headers"] = {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (SecError, HTTPException) as exc:
        errors.append(exc)
    except MultipartParseError as exc:
        errors.append(SecError(f"the upload is not a well-formed multipart form: {exc}"))
    except BaseException:  # the body limit (413), a client gone: nothing stays behind
        if state["out"] is not None:
            state["out"].close()
        upload.remove()
        raise
    if state["out"] is not None:
        state["out"].close()
    if errors:
        upload.remove()
        raise errors[0]
    if not csrf_ok:
        upload.remove()
        security.check_csrf(request, upload.fields)  # type: ignore[arg-type]
    return upload


async def add_uploaded_release(request: Request) -> dict:
    """The form's `release` file, streamed into a private folder beside releases/, then added as `sec releases
    add` adds one (checked completely and copied in, or refused whole); the upload is removed either way."""
    upload = await receive_upload(request)
    try:
        if upload.path is None:
            raise SecError("choose a release archive (<name>-<version>.tar.gz) as the form's `release` file")
        return await asyncio.to_thread(add_release_recorded, str(upload.path), str(request.scope["sec_user"]))
    finally:
        upload.remove()
