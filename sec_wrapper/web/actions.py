"""A console action as the argv of the CLI command that does it: the one mapping of the web's words
(`POST /api/sites/<site>/<operation>` with JSON options, or a page's form) to `sec` commands."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sec_wrapper.errors import SecError
from sec_wrapper.operation_inputs import MAX_TEXT

_OPTION_RE = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
# Set by the console itself, never by the caller: --json always, --yes only from the typed site name.
_RESERVED = {"json", "yes", "plan", "cluster"}


@dataclass(frozen=True)
class SiteOperation:
    command: tuple[str, ...]
    positional: tuple[str, ...] = ()  # options that are the command's positional arguments, in order
    confirm: bool = False  # changes a production site's data: needs the site's name typed (the web's --yes)
    target_confirms: bool = False  # the name to type is the target's (sync-db overwrites the target)
    flags: tuple[str, ...] = field(default=())  # boolean options (a form's checkbox)


SITE_OPERATIONS: dict[str, SiteOperation] = {
    "maintenance": SiteOperation(("maintenance",), positional=("state",)),
    "backup": SiteOperation(("backup",)),
    "backups": SiteOperation(("backups",), flags=("check",)),
    "restore": SiteOperation(("restore",), positional=("backup",), confirm=True,
                             flags=("force", "switch_release")),
    "trim-events": SiteOperation(("trim-events",), confirm=True, flags=("vacuum",)),
    "redeploy": SiteOperation(("redeploy",), flags=("force",)),
    "upgrade": SiteOperation(("upgrade",), confirm=True),
    "sync-db": SiteOperation(("sync-db",), positional=("target",), confirm=True, target_confirms=True,
                             flags=("keep_backup",)),
    "sync-media": SiteOperation(("sync-media",), positional=("target",), flags=("dry_run",)),
    "settings": SiteOperation(("site", "settings")),
    "repair": SiteOperation(("site", "repair")),
}


def _value(name: str, value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, (dict, list)) or value is None:
        raise SecError(f"{name}: give a single value")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise SecError(f"{name}: {len(text)} characters is more than an operation takes: give at most {MAX_TEXT}")
    if not text or text.startswith("-") or "\n" in text or "\x00" in text:
        raise SecError(f"{name}: {text!r} is not a valid value")
    return text


def site_operation_argv(operation: str, site: str, options: dict[str, Any], confirmed: bool,
                        cluster: str | None = None) -> list[str]:
    """`sec <command> SITE [POSITIONAL...] --option=value... [--cluster=C] --json [--yes]` for `operation`."""
    spec = SITE_OPERATIONS.get(operation)
    if spec is None:
        raise SecError(f"no operation {operation}: choose one of {', '.join(sorted(SITE_OPERATIONS))}")
    argv = [*spec.command, _value("site", site)]
    options = dict(options)
    for name in spec.positional:
        if name not in options:
            raise SecError(f"{operation} needs {name}")
        argv.append(_value(name, options.pop(name)))
    for name, value in options.items():
        if not _OPTION_RE.match(name) or name.replace("-", "_") in _RESERVED:
            raise SecError(f"{operation} has no option {name!r} here")
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            argv += [f"{flag}={_value(name, v)}" for v in value]
        else:
            argv.append(f"{flag}={_value(name, value)}")
    if cluster:
        argv.append(f"--cluster={_value('cluster', cluster)}")
    argv.append("--json")
    if spec.confirm and confirmed:
        argv.append("--yes")
    return argv


def confirm_name(operation: str, site: str, options: dict[str, Any]) -> str:
    """The name the user types to change a production site's data with `operation`."""
    spec = SITE_OPERATIONS[operation]
    return str(options.get("target")) if spec.target_confirms else site


def form_options(operation: str, form: dict[str, str]) -> dict[str, Any]:
    """A page's form fields as the JSON API's options: checkboxes are flags, empty fields are left out."""
    spec = SITE_OPERATIONS.get(operation)
    flags = spec.flags if spec else ()
    options: dict[str, Any] = {}
    for key, value in form.items():
        if key in ("csrf", "confirm"):
            continue
        if key in flags:
            options[key] = value in ("on", "true", "1")
        elif value.strip():
            options[key] = value.strip()
    return options


def _field(fields: Mapping[str, Any], name: str, default: str = "") -> str:
    value = fields.get(name)
    if value is None or value == "":
        return default
    return _value(name, value).strip()


def _key_path(key: str, keys: Collection[str], keys_dir: Path) -> str:
    """A key chosen among the stored ones (SEC_HOME/keys), never an arbitrary path of the console's host."""
    if key not in keys:
        raise SecError(f"no key {key!r} in {keys_dir}: add it there, or choose one of the stored keys")
    return str(keys_dir / key)


def cluster_create_argv(fields: Mapping[str, Any], keys: Collection[str], keys_dir: Path) -> list[str]:
    """"Add cluster" (a form or `POST /api/clusters`) as `sec cluster create ... --json`."""
    name, address = _field(fields, "name"), _field(fields, "app_server")
    if not name or not address:
        raise SecError("give the cluster's name and its App server's address (name, app_server)")
    argv = ["cluster", "create", name, "--app-server", address, "--port", _field(fields, "port", "22"),
            "--user", _field(fields, "user", "root")]
    if _field(fields, "key"):
        argv += ["--key", _key_path(_field(fields, "key"), keys, keys_dir)]
    return [*argv, "--json"]


def host_argv(action: str, fields: Mapping[str, Any], roles: list[str], keys: Collection[str],
              keys_dir: Path) -> list[str]:
    """The Hosts page's add/edit/remove (or the API's) as `sec host ACTION CLUSTER NAME ...`."""
    if action not in ("add", "edit", "remove"):
        raise SecError(f"no host action {action}: choose add, edit or remove")
    cluster, name = _field(fields, "cluster"), _field(fields, "name")
    if not cluster or not name:
        raise SecError("give the cluster and the host's name")
    if action == "remove":
        return ["host", "remove", cluster, name] + (["--force"] if fields.get("force") in (True, "on") else [])
    argv = ["host", action, cluster, name]
    for option in ("address", "port", "user", "python"):
        if _field(fields, option):
            argv.append(f"--{option}={_field(fields, option)}")
    if _field(fields, "key"):
        argv.append(f"--key={_key_path(_field(fields, 'key'), keys, keys_dir)}")
    if roles:
        argv.append(f"--roles={','.join(_value('roles', r) for r in roles)}")
    if action == "add" and fields.get("no_check") in (True, "on"):  # as `sec host add --no-check`
        argv.append("--no-check")
    return argv
