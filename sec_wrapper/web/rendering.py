"""Pages as HTML: the templates and the one `render` every page uses."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso
from markupsafe import Markup, escape
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


def _age_since(stamp: str | None) -> str:
    """How long ago a UTC time stamp was, now (a cached state's ages would be as old as the cache)."""
    when = epoch_of_iso(stamp or "")
    return human_age(max(0, int(time.time() - when))) or "-" if when is not None else "-"


templates.env.filters["age_since"] = _age_since

# Ansible's documentation markup: C(code), O(option), V(value), RV(return value), E(env), M(module), P(plugin),
# I(italic), B(bold), U(url), L(text,url). Text only, never a link: the page shows what the doc says.
_CODE = re.compile(r"\b(?:C|O|V|RV|E|M|P)\(([^()]*)\)")
_ITALIC, _BOLD = re.compile(r"\bI\(([^()]*)\)"), re.compile(r"\bB\(([^()]*)\)")
_URL, _LINK = re.compile(r"\bU\(([^()]*)\)"), re.compile(r"\bL\(([^(),]*),[^()]*\)")


def doc_markup(text: Any) -> Markup:
    """A module documentation line as HTML: its markup rendered, everything else escaped."""
    html = str(escape(str(text)))
    html = _CODE.sub(r"<code>\1</code>", html)
    html = _ITALIC.sub(r"<em>\1</em>", html)
    html = _BOLD.sub(r"<b>\1</b>", html)
    html = _LINK.sub(r"\1", _URL.sub(r"\1", html))
    return Markup(html)  # noqa: S704 (built from escaped text above)


def doc_text(text: Any) -> str:
    """A documentation line as plain text (a tooltip): the markup's words without it."""
    plain = _CODE.sub(r"\1", str(text))
    plain = _BOLD.sub(r"\1", _ITALIC.sub(r"\1", plain))
    return _LINK.sub(r"\1", _URL.sub(r"\1", plain))


templates.env.filters["doc"] = doc_markup
templates.env.filters["doc_text"] = doc_text


# The service words its fixes for the CLI (`sec ...`); a page says where the same fix is in the console.
_CONSOLE_WORDS = [
    (re.compile(r"(?:run )?`?sec site repair (\S+?)`?( first)?(?=$|[;,.)])"), r"Repair on the site's page\2"),
    (re.compile(r"(?:refresh it with )?`?sec cluster connect (\S+?)`?(?=$|[;,.)])"),
     r"refresh it with Connect on cluster \1's page"),
    (re.compile(r"sec host add (\S+) NAME --roles app \.\.\."), r"add one on the Hosts page (role app)"),
    (re.compile(r"(?:use )?`sec host edit[^`]*`"), "edit it on the Hosts page"),
    (re.compile(r"`?sec site role (\S+) staging`?"), r"mark \1 staging (sec site role \1 staging)"),
    (re.compile(r"see `sec (?:ops|cluster|site|host|user) list[^`]*`"), "see its list in the console"),
    (re.compile(r"as `sec backups SITE` lists it"), "as the site's Backups page lists it"),
    (re.compile(r"--tested \(the console: tick \"I have tested this\"\)"), 'tick "I have tested this"'),
]


def console_words(message: str) -> str:
    for pattern, words in _CONSOLE_WORDS:
        message = pattern.sub(words, message)
    return message


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    csrf = security.csrf_token(request) if request.scope.get("sec_auth") != "token" else ""
    context = {"user": request.scope.get("sec_user"), "csrf": csrf, **(context or {})}
    for key in ("error", "message"):
        if isinstance(context.get(key), str):
            context[key] = console_words(context[key])
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
