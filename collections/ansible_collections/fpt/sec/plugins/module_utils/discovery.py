# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Discover the sites a host serves: locate Apache, read its configuration, build the site model.

The one entry point shared by the ``fpt.sec.site_facts`` module and the ``fpt.sec.apache_sites``
inventory plugin, so there is one discovery and one parser.

Which configuration is read, first match wins:

1. the ``apache_config`` argument (the module option of the same name);
2. the ``SEC_APACHE_CONFIG`` environment variable: a host with several Apache instances can pin the one
   that serves the sites (set it in ``/etc/environment``, or with a play's ``environment:`` keyword);
3. the running httpd/apache2 master processes (all of them, when several run distinct configurations);
4. ``httpd``/``apache2`` found on the PATH, and the configuration compiled into them (``-V``).

The configuration is evaluated as that server evaluates it: its binary's version and compiled-in modules
(``-v``, ``-l``), its environment and ``-D`` names (see apache_locate), plus ``apache_env`` and
``apache_defines`` given by the caller for what cannot be read from the host.

Pure standard library, Python 3.8 compatible.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ansible_collections.fpt.sec.plugins.module_utils.apache_config import ApacheConfigError, parse_apache_config
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import (
    ApacheNotFoundError,
    binary_facts,
    locate_apache,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_model import build_sites

if TYPE_CHECKING:
    from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import Runner

__all__ = ["ApacheConfigError", "ApacheNotFoundError", "ENV_APACHE_CONFIG", "discover_sites"]

ENV_APACHE_CONFIG = "SEC_APACHE_CONFIG"


def discover_sites(
    apache_config: str | None = None,
    environ: Mapping[str, str] | None = None,
    proc_root: str = "/proc",
    run: Runner | None = None,
    search_path: str | None = None,
    apache_env: Mapping[str, str] | None = None,
    apache_defines: Iterable[str] = (),
    system_root: str = "/",
) -> dict:
    """Everything discovery knows about this host's sites.

    Returns ``{"apache": [{binary, server_root, config, pid, defines, source, version, env_sources}],
    "sites": [site dicts], "skipped_sites": [{name, file, line, site_dir, reason}], "warnings": [str]}``;
    ``source`` is one of ``option``, ``environment``, ``process``, ``binary``. ``apache_env`` (variables)
    and ``apache_defines`` (``-D`` names) are added to what the server is found to run with, and win.
    ``environ`` defaults to ``os.environ`` (read for ``SEC_APACHE_CONFIG`` and PATH); ``proc_root``,
    ``run``, ``search_path`` and ``system_root`` (where unit files and /etc/sysconfig are) are for tests.
    Raises `ApacheNotFoundError` when no Apache is found and
    `ApacheConfigError` (message ``file:line: ...``) when a configuration is broken or unreadable.
    """
    environ = os.environ if environ is None else environ
    explicit, source = apache_config, "option"
    if not explicit and environ.get(ENV_APACHE_CONFIG):
        explicit, source = environ[ENV_APACHE_CONFIG], "environment"
    if search_path is None:
        search_path = environ.get("PATH", "")
    instances = locate_apache(
        explicit, proc_root=proc_root, run=run, search_path=search_path, source=source, system_root=system_root
    )

    warnings: list[str] = []
    sites: list[dict] = []
    skipped: list[dict] = []
    seen: dict[str, str] = {}
    for instance in instances:
        instance.version, instance.compiled_modules = binary_facts(instance.binary, run)
        if apache_env:
            instance.env = {**instance.env, **apache_env}
            instance.env_sources.append("apache_env option")
        extra_defines = [d for d in apache_defines if d not in instance.defines]
        if extra_defines:
            instance.defines = instance.defines + extra_defines
            instance.env_sources.append("apache_defines option")
        config = parse_apache_config(
            instance.config,
            server_root=instance.server_root,
            defines=instance.defines,
            env=instance.env,
            pre_directives=instance.pre_directives,
            post_directives=instance.post_directives,
            version=instance.version,
            compiled_modules=instance.compiled_modules,
        )
        # Report the ServerRoot the config settled on, which is what its relative paths used.
        instance.server_root = config.server_root
        warnings.extend(config.warnings)
        for site in build_sites(config, warnings, skipped=skipped):
            key = os.path.realpath(site["site_dir"])
            if key in seen:
                warnings.append(
                    f"site {site['name']} ({site['site_dir']}) is served by both {seen[key]} and {instance.config}; "
                    "kept the first"
                )
                continue
            seen[key] = instance.config
            sites.append(site)
    names: dict[str, list[str]] = {}
    for site in sites:
        names.setdefault(site["name"], []).append(site["site_dir"])
    for name, dirs in names.items():
        if len(dirs) > 1:
            warnings.append(
                f"site name {name} is served from several site dirs ({', '.join(dirs)}) by different Apache "
                f"instances; pin one with the apache_config option or {ENV_APACHE_CONFIG}"
            )
    return {"apache": [i.to_dict() for i in instances], "sites": sites, "skipped_sites": skipped, "warnings": warnings}
