"""The console's words for an action (a route's name, a page's form, a JSON body) as the operation service's
typed request. Values are data: they are checked by the operation's spec, never turned into a command line."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.operations.clusters import check_roles
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.web.common import stored_keys

# A site route's last segment (/api/sites/S/<segment>, /sites/S/run/<segment>) -> the operation's name.
SITE_OPERATIONS: dict[str, str] = {
    "maintenance": "maintenance", "backup": "backup", "backups": "backups", "restore": "restore", "drill": "drill",
    "trim-events": "trim-events", "redeploy": "redeploy", "upgrade": "upgrade", "sync-db": "sync-db",
    "sync-media": "sync-media", "settings": "site settings", "repair": "site repair",
}
# The CLI's own switches, which a console request never sets: the confirmation is the typed name.
_NOT_OPTIONS = {"json", "yes", "plan"}


def site_request(segment: str, site: str, options: Mapping[str, Any]) -> OperationRequest:
    """`POST /api/sites/<site>/<segment>` with JSON options (or a page's form) as a request."""
    operation = SITE_OPERATIONS.get(segment)
    if operation is None:
        raise SecError(f"no operation {segment}: choose one of {', '.join(sorted(SITE_OPERATIONS))}")
    given = dict(options)
    cluster = given.pop("cluster", None)  # only needed when the site's name is in several clusters
    typed = given.pop("confirm", None)
    for name in given:
        if name.replace("-", "_") in _NOT_OPTIONS:
            raise SecError(f"{segment} has no option {name!r} here")
    return OperationRequest(operation, site=site, options=given, cluster=str(cluster) if cluster else None,
                            typed_name=None if typed is None else str(typed))


def form_options(form: Mapping[str, str]) -> dict[str, Any]:
    """A page's form fields as options: a ticked checkbox sends "on" (the spec types it), empty fields are
    left out, the CSRF token is not an option."""
    return {key: value.strip() for key, value in form.items() if key != "csrf" and value.strip()}


def text_field(fields: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, (dict, list, bool)):
        raise SecError(f"{name}: give a single value")
    return str(value).strip()


def key_path(key: str | None, keys: Collection[str], keys_dir: Path) -> str | None:
    """A key chosen among the stored ones (SEC_HOME/keys), never an arbitrary path of the console's host."""
    if not key:
        return None
    if key not in keys:
        raise SecError(f"no key {key!r} in {keys_dir}: add it there, or choose one of the stored keys")
    return str(keys_dir / key)


def cluster_create_request(fields: Mapping[str, Any], keys: Collection[str], keys_dir: Path) -> OperationRequest:
    """"Add cluster" (a form or `POST /api/clusters`) as the request `sec cluster create` makes."""
    name, address = text_field(fields, "name"), text_field(fields, "app_server")
    if not name or not address:
        raise SecError("give the cluster's name and its App server's address (name, app_server)")
    options = {"name": name, "app_server": address, "port": text_field(fields, "port", "22"),
               "user": text_field(fields, "user", "root"),
               "key": key_path(text_field(fields, "key"), keys, keys_dir)}
    return OperationRequest("cluster create", options=options)


def checked(fields: Mapping[str, Any], name: str) -> bool:
    return fields.get(name) in (True, "on", "true", "1")


def _roles(fields: dict[str, Any]) -> list[str] | None:
    roles = fields.get("roles")
    if roles is None or roles == "" or roles == []:
        return None
    if not isinstance(roles, (list, str)):
        raise SecError("roles: give a list such as [\"app\", \"api\"]")
    return check_roles(roles)


def _port(fields: dict[str, Any]) -> int | None:
    port = text_field(fields, "port")
    if port is None:
        return None
    if not port.isdigit():
        raise SecError(f"port {port!r}: give a whole number")
    return int(port)


def host_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A host form's (or body's) fields, checked: what `sec host add/edit` takes."""
    cluster_name, name = text_field(fields, "cluster"), text_field(fields, "name")
    if not cluster_name or not name:
        raise SecError("give the cluster and the host's name")
    return {"cluster_name": cluster_name, "name": name, "address": text_field(fields, "address"),
            "port": _port(fields), "user": text_field(fields, "user"), "roles": _roles(fields),
            "python": text_field(fields, "python"), "backup_dir": text_field(fields, "backup_dir"),
            "key": key_path(text_field(fields, "key"), stored_keys(), store.keys_dir())}
