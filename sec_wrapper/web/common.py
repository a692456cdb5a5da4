"""What the console's handlers share: redirects, form fields, the keys offered by the forms, operations read
for a request."""

from __future__ import annotations

import asyncio
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sec_wrapper import history, site_state, store
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
                              user=q.get("user") or None, since=q.get("since") or None, until=q.get("until") or None,
                              limit=int(limit) if limit and limit.isdigit() and int(limit) > 0 else None)


def _last_ended(sites: list[store.Site]) -> dict[str, float]:
    """{site name: when its newest operation ended}, from one read of the history for all of them."""
    names = {n for site in sites for n in (site.name, site.reverse_name)}
    found: dict[str, float] = {}
    for record in history.list_operations(site=names):  # newest first: the first of each site counts
        site = next((s for s in sites if record.get("site") in (s.name, s.reverse_name)), None)
        if site is not None and site.name not in found:
            found[site.name] = epoch_of_iso(record.get("ended") or "") or 0.0
            if len(found) == len(sites):
                break
    return found


def _older_than(state: dict[str, Any], ended: float | None) -> bool:
    """Whether the site's last operation ended after its state was read (the page would show the past)."""
    read = epoch_of_iso(state.get("read_at") or "")
    return bool(ended) and (read is None or ended > read)


async def cached_state(request: Request, cluster: store.Cluster, site: store.Site | None = None,
                       ) -> dict[str, Any] | None:
    """The cached state of a site (or a cluster's cache, without `site`) for a page: answered from the cache
    at once. A state older than the site's last operation is marked `outdated` (the page says so and reloads
    in a moment); then, or when there is none, `sec serve`'s refresher is woken. Without a refresher (the
    API's in-process tests) a missing state is read now."""
    data = site_state.cached(cluster.name)
    sites = dict((data or {}).get("sites") or {})
    outdated = data is None
    shown = [site] if site else cluster.sites
    ended = _last_ended(shown)
    for each in shown:
        state = sites.get(each.reverse_name)
        if state is None or _older_than(state, ended.get(each.name)):
            outdated = True
            if state is not None:
                sites[each.reverse_name] = {**state, "outdated": True}
    if outdated:
        refresher = getattr(request.app.state, "refresher", None)
        if refresher is not None:
            refresher.wake()
        elif data is None or (site and site.reverse_name not in sites):
            data = await asyncio.to_thread(site_state.probe, cluster.name)
            sites = dict(data.get("sites") or {})
    if site:
        return sites.get(site.reverse_name)
    return None if data is None else {**data, "sites": sites,
                                      "outdated": any(s.get("outdated") for s in sites.values())}
