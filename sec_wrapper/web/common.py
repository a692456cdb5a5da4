"""What the console's handlers share: redirects, form fields, the keys offered by the forms, operations read
for a request."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.operations import reading


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def form_dict(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def stored_keys() -> list[str]:
    """Private keys in SEC_HOME/keys, as paths relative to it (what "Add cluster" and Hosts offer)."""
    base = store.keys_dir()
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def operation_or_404(op_id: str, settled: bool = False) -> dict[str, Any]:
    try:
        return reading.settled_document(op_id) if settled else reading.document(op_id)
    except SecError as exc:
        raise HTTPException(404, str(exc)) from None


def filtered_operations(request: Request) -> list[dict[str, Any]]:
    q = request.query_params
    limit = q.get("limit")
    return reading.operations(site=q.get("site") or None, status=q.get("status") or None,
                              cluster=q.get("cluster") or None, operation=q.get("operation") or None,
                              user=q.get("user") or None,
                              limit=int(limit) if limit and limit.isdigit() and int(limit) > 0 else None)
