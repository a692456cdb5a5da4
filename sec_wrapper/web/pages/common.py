"""What the console's pages share: redirects, form fields, the keys offered by the forms."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from sec_wrapper import store


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def form_dict(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def stored_keys() -> list[str]:
    """Private keys in SEC_HOME/keys, as paths relative to it (what "Add cluster" and Hosts offer)."""
    base = store.keys_dir()
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
