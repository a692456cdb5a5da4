"""The console's one route table: every page and every API path, with its handler."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sec_wrapper.web import api
from sec_wrapper.web.pages import accounts, advanced, clusters, login, operations, releases, site
from sec_wrapper.web.rendering import HERE

routes = [
    Route("/login", login.login_page, methods=["GET", "POST"]),
    Route("/logout", login.logout, methods=["POST"]),
    # Pages
    Route("/", clusters.clusters_page),
    Route("/clusters", clusters.add_cluster, methods=["POST"]),
    Route("/clusters/{name}", clusters.cluster_page),
    Route("/clusters/{name}/connect", clusters.connect_cluster, methods=["POST"]),
    Route("/clusters/{name}/remove", clusters.remove_cluster, methods=["POST"]),
    Route("/clusters/{name}/health", clusters.check_health, methods=["POST"]),
    Route("/sites/{site}", site.site_page),
    Route("/sites/{site}/run/{operation}", site.run_site_operation, methods=["POST"]),
    Route("/sites/{site}/settings", site.settings_page),
    Route("/sites/{site}/settings", site.save_settings, methods=["POST"]),
    Route("/sites/{site}/backups", site.backups_page),
    Route("/sites/{site}/upgrade", site.upgrade_plan_page),
    Route("/hosts", clusters.hosts_page),
    Route("/hosts/{action}", clusters.host_action, methods=["POST"]),
    Route("/operations", operations.operations_page),
    Route("/operations/{id}", operations.operation_page),
    Route("/operations/{id}/events", operations.operation_events),
    Route("/releases", releases.releases_page),
    Route("/releases", releases.upload_release, methods=["POST"]),
    Route("/advanced", advanced.advanced_page),
    Route("/advanced", advanced.run_advanced, methods=["POST"]),
    Route("/accounts", accounts.accounts_page),
    Route("/accounts/{name}/revoke", accounts.revoke_sessions, methods=["POST"]),
    Route("/accounts/{name}/token", accounts.rotate_token, methods=["POST"]),
    # The JSON API
    Route("/api/clusters", api.clusters),
    Route("/api/clusters", api.create_cluster, methods=["POST"]),
    Route("/api/clusters/{name}", api.cluster),
    Route("/api/clusters/{name}", api.remove_cluster, methods=["DELETE"]),
    Route("/api/clusters/{name}/connect", api.cluster_action, methods=["POST"]),
    Route("/api/sites", api.sites),
    Route("/api/sites/{site}", api.site),
    Route("/api/sites/{site}/{operation}", api.site_operation, methods=["POST"]),
    Route("/api/hosts", api.hosts),
    Route("/api/hosts", api.add_host, methods=["POST"]),
    Route("/api/hosts/{cluster}/{name}", api.edit_host, methods=["PATCH"]),
    Route("/api/hosts/{cluster}/{name}", api.remove_host, methods=["DELETE"]),
    Route("/api/operations", api.operations),
    Route("/api/operations/{id}", api.operation),
    Route("/api/operations/{id}/log", api.operation_log),
    Route("/api/releases", api.releases),
    Route("/api/releases", api.upload_release, methods=["POST"]),
    Route("/api/advanced", api.advanced),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]
