"""Pages as HTML: the templates and the one `render` every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from sec_wrapper import __version__
from sec_wrapper.render import human_age, human_size
from sec_wrapper.web import security

HERE = Path(__file__).resolve().parent

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__
templates.env.filters["size"] = lambda n: human_size(n) or "-"
templates.env.filters["age"] = lambda seconds: human_age(seconds) or "-"


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    csrf = security.csrf_token(request) if request.scope.get("sec_auth") != "token" else ""
    context = {"user": request.scope.get("sec_user"), "csrf": csrf, **(context or {})}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
