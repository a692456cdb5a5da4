"""Runs a playbook on one site of a stored cluster: find the site, build the inventory, run, report.

Every site command goes through here, so they all record their operation, show progress, and end with a
one-line outcome the same way. The playbook receives the site's reverse name as `site`.
"""

from __future__ import annotations

from typing import Any

from sec_wrapper import host_outcome, store
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import cluster_inventory
from sec_wrapper.runner import OperationResult, run_operation


def run_on_site(operation: str, playbook: str, site_query: str, cluster_name: str | None,
                extravars: dict[str, Any] | None = None, arguments: dict[str, Any] | None = None,
                check: bool = True) -> tuple[store.Cluster, store.Site, OperationResult]:
    cluster, site = store.find_site(site_query, cluster_name)
    variables = {"site": site.reverse_name, **(extravars or {})}
    result = run_operation(operation, playbook, cluster_inventory(cluster), variables, cluster=cluster.name,
                           site=site.name, arguments={"site": site.name, **(arguments or extravars or {})})
    host_outcome.settle_taken_over(result)
    if check and not result.ok:
        raise SecError(f"{operation} on {site.name} {result.status}: {result.message or 'see the log'} "
                       f"(sec ops log {result.id})")
    return cluster, site, result


def first_result(result: OperationResult, module: str) -> dict[str, Any]:
    """The result of `module` on the first host that ran it (site-wide steps run once)."""
    results = result.task_results(module)
    return next(iter(results.values()), {})


def require_yes(site: store.Site, yes: bool, what: str) -> None:
    """No prompt (AWX has no terminal): changing a production site's data needs --yes."""
    if site.role == "production" and not yes:
        raise SecError(f"{what} {site.name}, a production site: add --yes to go ahead")
