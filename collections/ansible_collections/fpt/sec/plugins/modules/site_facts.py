#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_facts
short_description: Discover the Flow Production Tracking sites an App server serves
version_added: "0.1.0"
description:
  - Finds the Apache httpd configuration of the host, reads it with its C(Include)s, and returns every
    virtual host whose code folder looks like a site dir (C(DocumentRoot <site_dir>/current/public) or
    C(PassengerAppRoot <site_dir>/current), where the site dir holds C(current) and C(shared/)).
  - An SSL virtual host and its port-80 redirect twin are returned as one site.
  - The configuration is found, first match wins, from the O(apache_config) option, then the
    E(SEC_APACHE_CONFIG) environment variable on the host, then the running httpd/apache2 master
    processes (their C(-d), C(-f) and C(-D) arguments), then C(httpd)/C(apache2) on the PATH (and
    C(/usr/sbin), C(/usr/local/apache2/bin)) with the configuration compiled into them (C(-V)).
  - RHEL (C(httpd), C(conf.d/)) and Debian (C(apache2), C(sites-enabled/)) layouts are both understood.
  - Read-only. The database password is never returned.
author:
  - sec maintainers (!UNKNOWN)
options:
  apache_config:
    description:
      - Path of the main Apache configuration file (for example C(/etc/httpd/conf/httpd.conf)), or of a
        ServerRoot folder holding C(httpd.conf), C(apache2.conf) or C(conf/httpd.conf).
      - Overrides the search. Needed when Apache is not running and not on the PATH, or to pick one of
        several Apache instances (the E(SEC_APACHE_CONFIG) environment variable does the same per host).
    type: path
    required: false
  apache_env:
    description:
      - Variables for C(${VAR}) in the configuration, added to (and winning over) the environment the server
        is found to run with. For a variable that comes from somewhere discovery cannot read (a wrapper script,
        a configuration management tool's template); a site whose folder uses an undefined variable is
        listed in RV(skipped_sites) with the variable's name.
    type: dict
    required: false
    default: {}
  apache_defines:
    description:
      - C(-D) names the server is started with that discovery cannot read from the host (they add to those
        of the running process or of its service), for C(<IfDefine>) and C(${VAR}).
    type: list
    elements: str
    required: false
    default: []
attributes:
  check_mode:
    support: full
    description: The module never changes anything, so it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Relative paths in the configuration resolve against its C(ServerRoot).
  - C(${VAR}) resolves against C(Define)s, then the environment the server runs with - the running master
    process's C(/proc/<pid>/environ) when readable (run with become to read it); else what its service
    would give it, the C(httpd)/C(apache2) systemd unit's C(Environment=) and C(EnvironmentFile=) (drop-ins
    included), or C(/etc/sysconfig/httpd) without a unit, then Debian's C(envvars) - then O(apache_env).
  - C(-D) names are the running process's, else those of the unit's C(ExecStart=), C(OPTIONS) in
    C(/etc/sysconfig/httpd) or Debian's C(APACHE_ARGUMENTS), plus O(apache_defines).
  - Conditional sections are evaluated as Apache evaluates them. C(<IfVersion>) (all operators,
    C(=) C(==) C(<) C(<=) C(>) C(>=) C(~) and C(/regex/), C(!) negation) against the C(-v) of the
    httpd/apache2 binary found; without a binary the block is skipped with a warning, never guessed.
    C(<IfModule>) against the C(LoadModule) lines read so far plus the binary's compiled-in modules
    (C(-l)); C(<IfDirective>) and C(<IfSection>) against the core and the loaded modules; C(<IfFile>)
    against the file system; C(<IfDefine>) against the C(Define)s and C(-D) names.
"""

EXAMPLES = r"""
- name: Discover the sites of this App server
  fpt.sec.site_facts:
  register: found

- name: Show each site and its running version
  ansible.builtin.debug:
    msg: "{{ item.name }} ({{ item.reverse_name }}) runs {{ item.version }} from {{ item.site_dir }}"
  loop: "{{ found.sites }}"

- name: Read a configuration that is not the running one
  fpt.sec.site_facts:
    apache_config: /opt/apache/conf/httpd.conf
  register: found

- name: Give a variable and a -D name the host's files do not show
  fpt.sec.site_facts:
    apache_env:
      SITES_ROOT: /srv/shotgun
    apache_defines: [SHOTGUN_SSL]
  register: found

- name: Pin one Apache instance on a host that runs several
  fpt.sec.site_facts:
  environment:
    SEC_APACHE_CONFIG: /etc/httpd-shotgun/conf/httpd.conf
"""

RETURN = r"""
sites:
  description: The sites served by this host, in configuration order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The site's name, the C(ServerName) of its (SSL) virtual host.
      type: str
      sample: prod.teststudio.com
    aliases:
      description: Other names the site answers to (C(ServerAlias), other virtual hosts' names).
      type: list
      elements: str
      sample: [www.teststudio.com]
    reverse_name:
      description: The name reversed, the usual name of the site dir.
      type: str
      sample: com_teststudio_prod
    site_dir:
      description: The site's folder, as the configuration names it.
      type: str
      sample: /var/rails/com_teststudio_prod
    ports:
      description: Ports of the site's virtual hosts, redirect twin included.
      type: list
      elements: int
      sample: [80, 443]
    ssl:
      description: Whether a virtual host serving the site has C(SSLEngine on).
      type: bool
      sample: true
    version:
      description: The running version, from the C(VERSION) file of the release C(current) points at, else
        that release's folder name; null when C(current) is missing.
      type: str
      sample: 8.1.2
    current_release:
      description: The release folder C(<site_dir>/current) points at.
      type: str
      sample: /var/rails/com_teststudio_prod/releases/8.1.2
    database:
      description: The C(production) database from C(shared/config/database.yml); null values where not
        configured. Never the password.
      type: dict
      sample: {host: db.teststudio.com, port: 5432, name: shotgun_prod, user: shotgun}
    media_dir:
      description: The site's media folder.
      type: str
      sample: /var/rails/com_teststudio_prod/media
    backup_dir:
      description: The site's database backup folder.
      type: str
      sample: /var/rails/com_teststudio_prod/db_backup
    role:
      description: C(staging) when the name contains C(staging), else C(production).
      type: str
      sample: production
    hosts:
      description: Other hosts the site implies, by role; C(localhost) means this host.
      type: dict
      sample: {db: [db.teststudio.com]}
    vhosts:
      description: Where the site's virtual hosts are defined.
      type: list
      elements: dict
      sample: [{file: /etc/httpd/conf.d/com_teststudio_prod.conf, line: 1, ports: [443], ssl: true,
                redirect_only: false}]
apache:
  description: The Apache configurations read.
  returned: success
  type: list
  elements: dict
  contains:
    binary:
      description: The httpd binary, when known.
      type: str
      sample: /usr/sbin/httpd
    server_root:
      description: The ServerRoot relative paths resolved against.
      type: str
      sample: /etc/httpd
    config:
      description: The main configuration file.
      type: str
      sample: /etc/httpd/conf/httpd.conf
    pid:
      description: The master process id, when found running.
      type: int
      sample: 1234
    defines:
      description: The C(-D) names of the running server.
      type: list
      elements: str
      sample: [FOREGROUND]
    source:
      description: How it was found, one of V(option), V(environment), V(process), V(binary).
      type: str
      sample: process
    version:
      description: The binary's version (C(-v)) conditional sections were evaluated against; null without one.
      type: str
      sample: 2.4.57
    env_sources:
      description: Where the server's environment and C(-D) names were read from (names only, never values).
      type: list
      elements: str
      sample: [/usr/lib/systemd/system/httpd.service, /etc/sysconfig/httpd]
skipped_sites:
  description:
    - Virtual hosts shaped like a site (C(DocumentRoot <dir>/current/public) or C(PassengerAppRoot)) that
      are not returned as sites, each with the reason - a variable that is not defined, a folder that does
      not exist, no C(current) or a dangling one, no C(shared/), no C(ServerName), or a section Apache
      does not load (a false C(<IfVersion>), C(<IfModule>), C(<IfDirective>)...).
  returned: success
  type: list
  elements: dict
  sample: [{name: old.teststudio.com, file: /etc/httpd/conf.d/old.conf, line: 3,
            site_dir: /var/rails/com_teststudio_old,
            reason: "Apache does not load it: inside <IfVersion < 2.4> at /etc/httpd/conf.d/old.conf:1,
            false for Apache 2.4.57"}]
python:
  description:
    - The Python interpreter that ran this module on the host. Recorded with the host, it spares every later
      operation Ansible's interpreter discovery (one SSH round trip per host and run).
  returned: success
  type: str
  sample: /usr/bin/python3
"""

import re
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.apache_config import ApacheConfigError
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import ApacheNotFoundError
from ansible_collections.fpt.sec.plugins.module_utils.discovery import discover_sites

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "apache_config": {"type": "path", "required": False},
            "apache_env": {"type": "dict", "required": False, "default": {}},
            "apache_defines": {"type": "list", "elements": "str", "required": False, "default": []},
        },
        supports_check_mode=True,
    )
    apache_env = {str(k): "" if v is None else str(v) for k, v in (module.params["apache_env"] or {}).items()}
    names = list(apache_env) + list(module.params["apache_defines"] or [])
    bad = [name for name in names if not _NAME_RE.match(name)]
    if bad:
        module.fail_json(msg=f"apache_env/apache_defines: {', '.join(bad)} is not a variable name "
                             "(letters, digits, _; not starting with a digit)")

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv)

    try:
        found = discover_sites(
            module.params["apache_config"],
            run=run,
            apache_env=apache_env,
            apache_defines=module.params["apache_defines"] or [],
        )
    except ApacheNotFoundError as exc:
        module.fail_json(msg=f"{exc}; give the main config file with the apache_config option")
    except ApacheConfigError as exc:
        module.fail_json(msg=f"Apache configuration: {exc}")

    for warning in found["warnings"]:
        module.warn(warning)
    module.exit_json(
        changed=False,
        sites=found["sites"],
        skipped_sites=found["skipped_sites"],
        apache=found["apache"],
        python=sys.executable,
    )


if __name__ == "__main__":
    main()
