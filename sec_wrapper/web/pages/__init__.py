"""The console's pages: the vendor console's tabs, server-rendered, each acting through the CLI."""

from __future__ import annotations

from starlette.routing import Route

from sec_wrapper.web.pages.accounts import accounts_page, revoke_sessions, rotate_token
from sec_wrapper.web.pages.advanced import advanced_page, run_advanced
from sec_wrapper.web.pages.clusters import (
    add_cluster,
    check_health,
    cluster_page,
    clusters_page,
    connect_cluster,
    host_action,
    hosts_page,
    remove_cluster,
)
from sec_wrapper.web.pages.operations import operation_events, operation_page, operations_page
from sec_wrapper.web.pages.releases import add_uploaded_release, releases_page, upload_release
from sec_wrapper.web.pages.site import (
    backups_page,
    run_site_operation,
    save_settings,
    settings_page,
    site_page,
    upgrade_plan_page,
)

__all__ = ["add_uploaded_release", "routes"]

routes = [
    Route("/", clusters_page),
    Route("/clusters", add_cluster, methods=["POST"]),
    Route("/clusters/{name}", cluster_page),
    Route("/clusters/{name}/connect", connect_cluster, methods=["POST"]),
    Route("/clusters/{name}/remove", remove_cluster, methods=["POST"]),
    Route("/clusters/{name}/health", check_health, methods=["POST"]),
    Route("/sites/{site}", site_page),
    Route("/sites/{site}/run/{operation}", run_site_operation, methods=["POST"]),
    Route("/sites/{site}/settings", settings_page),
    Route("/sites/{site}/settings", save_settings, methods=["POST"]),
    Route("/sites/{site}/backups", backups_page),
    Route("/sites/{site}/upgrade", upgrade_plan_page),
    Route("/hosts", hosts_page),
    Route("/hosts/{action}", host_action, methods=["POST"]),
    Route("/operations", operations_page),
    Route("/operations/{id}", operation_page),
    Route("/operations/{id}/events", operation_events),
    Route("/releases", releases_page),
    Route("/releases", upload_release, methods=["POST"]),
    Route("/advanced", advanced_page),
    Route("/advanced", run_advanced, methods=["POST"]),
    Route("/accounts", accounts_page),
    Route("/accounts/{name}/revoke", revoke_sessions, methods=["POST"]),
    Route("/accounts/{name}/token", rotate_token, methods=["POST"]),
]

