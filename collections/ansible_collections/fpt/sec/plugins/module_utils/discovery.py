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

Pure standard library, Python 3.8 compatible.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ansible_collections.fpt.sec.plugins.module_utils.apache_config import ApacheConfigError, parse_apache_config
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import ApacheNotFoundError, locate_apache
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
) -> dict:
    """Everything discovery knows about this host's sites.

    Returns ``{"apache": [{binary, server_root, config, pid, defines, source}], "sites": [site dicts],
    "warnings": [str]}``; ``source`` is one of ``option``, ``environment``, ``process``, ``binary``.
    ``environ`` defaults to ``os.environ`` (read for ``SEC_APACHE_CONFIG`` and PATH); ``proc_root``,
    ``run`` and ``search_path`` are for tests. Raises `ApacheNotFoundError` when no Apache is found and
    `ApacheConfigError` (message ``file:line: ...``) when a configuration is broken or unreadable.
    """
    environ = os.environ if environ is None else environ
    explicit, source = apache_config, "option"
    if not explicit and environ.get(ENV_APACHE_CONFIG):
        explicit, source = environ[ENV_APACHE_CONFIG], "environment"
    if search_path is None:
        search_path = environ.get("PATH", "")
    instances = locate_apache(explicit, proc_root=proc_root, run=run, search_path=search_path, source=source)

    warnings: list[str] = []
    sites: list[dict] = []
    seen: dict[str, str] = {}
    for instance in instances:
        config = parse_apache_config(
            instance.config,
            server_root=instance.server_root,
            defines=instance.defines,
            env=instance.env,
            pre_directives=instance.pre_directives,
            post_directives=instance.post_directives,
        )
        # Report the ServerRoot the config settled on, which is what its relative paths used.
        instance.server_root = config.server_root
        warnings.extend(config.warnings)
        for site in build_sites(config, warnings):
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
    return {"apache": [i.to_dict() for i in instances], "sites": sites, "warnings": warnings}
