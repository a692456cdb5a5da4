"""The console's one route table: every page and every API path, with its handler."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sec_wrapper.web import api
from sec_wrapper.web.pages import accounts, advanced, clusters, login, operations, releases, schedules, site
from sec_wrapper.web.rendering import HERE

# path: {method: handler}; GET also answers HEAD.
PAGES = {
    "/login": {"GET": login.login_page, "POST": login.login_page},
    "/logout": {"POST": login.logout},
    "/": {"GET": clusters.clusters_page},
    "/clusters": {"POST": clusters.add_cluster},
    "/clusters/{name}": {"GET": clusters.cluster_page},
    "/clusters/{name}/connect": {"POST": clusters.connect_cluster},
    "/clusters/{name}/remove": {"POST": clusters.remove_cluster},
    "/clusters/{name}/refresh": {"POST": clusters.refresh_cluster},
    "/sites/{site}": {"GET": site.site_page},
    "/sites/{site}/run/{operation}": {"POST": site.run_site_operation},
    "/sites/{site}/refresh": {"POST": site.refresh_site},
    "/sites/{site}/settings": {"GET": site.settings_page, "POST": site.save_settings},
    "/sites/{site}/backups": {"GET": site.backups_page},
    "/sites/{site}/upgrade": {"GET": site.upgrade_plan_page},
    "/hosts": {"GET": clusters.hosts_page},
    "/hosts/{action}": {"POST": clusters.host_action},
    "/operations": {"GET": operations.operations_page},
    "/operations/{id}": {"GET": operations.operation_page},
    "/operations/{id}/events": {"GET": operations.operation_events},
    "/operations/{id}/cancel": {"POST": operations.cancel_operation},
    "/releases": {"GET": releases.releases_page, "POST": releases.upload_release},
    "/advanced": {"GET": advanced.advanced_page, "POST": advanced.run_advanced},
    "/schedules": {"GET": schedules.schedules_page, "POST": schedules.add_schedule},
    "/schedules/{name}/{action}": {"POST": schedules.change_schedule},
    "/accounts": {"GET": accounts.accounts_page},
    "/accounts/{name}/revoke": {"POST": accounts.revoke_sessions},
    "/accounts/{name}/token": {"POST": accounts.rotate_token},
}
API = {
    "/api/clusters": {"GET": api.clusters, "POST": api.create_cluster},
    "/api/clusters/{name}": {"GET": api.cluster, "DELETE": api.remove_cluster},
    "/api/clusters/{name}/connect": {"POST": api.cluster_action},
    "/api/sites": {"GET": api.sites},
    "/api/sites/{site}": {"GET": api.site},
    "/api/sites/{site}/state": {"GET": api.site_state},
    "/api/sites/{site}/{operation}": {"POST": api.site_operation},
    "/api/hosts": {"GET": api.hosts, "POST": api.add_host},
    "/api/hosts/{cluster}/{name}": {"PATCH": api.edit_host, "DELETE": api.remove_host},
    "/api/operations": {"GET": api.operations},
    "/api/operations/{id}": {"GET": api.operation},
    "/api/operations/{id}/log": {"GET": api.operation_log},
    "/api/operations/{id}/cancel": {"POST": api.cancel_operation},
    "/api/releases": {"GET": api.releases, "POST": api.upload_release},
    "/api/advanced": {"GET": api.advanced},
    "/metrics": {"GET": api.metrics},
}

routes = [
    *(Route(path, handler, methods=[method]) for table in (PAGES, API) for path, by_method in table.items()
      for method, handler in by_method.items()),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]
