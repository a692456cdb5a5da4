# Copyright: sec maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory of Flow Production Tracking sites, discovered from the Apache configuration of App servers."""

from __future__ import annotations

DOCUMENTATION = r"""
name: apache_sites
short_description: Flow Production Tracking sites discovered from App servers' Apache configuration
version_added: "0.1.0"
author: sec maintainers (!UNKNOWN)
description:
  - Connects to each App server over SSH, finds its Apache httpd (running process, else C(which httpd apache2)),
    reads the configuration with its Includes and takes every virtual host whose code folder is a site dir.
  - Runs on the App server the same discovery code as the M(fpt.sec.site_facts) module; the parser exists once.
  - Produces groups C(app_servers), C(api_servers), C(db_servers), C(backup_servers), C(production), C(staging)
    and one group per
    site named by its reverse name (C(prod.teststudio.com) is C(com_teststudio_prod)); each App server carries
    C(sec_sites), its sites keyed by reverse name, and C(sec_skipped_sites), the site-shaped virtual hosts
    that are not sites, each with the reason (an undefined variable, a dangling C(current), no C(shared/), a
    section Apache does not load); each of those is also shown as a warning.
  - Every connection option also reads an environment variable, so that an AWX custom credential can inject
    the SSH user and key into a project-sourced inventory.
  - Uses a YAML configuration file whose name ends with C(.apache_sites.yml) or C(.apache_sites.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it must be C(fpt.sec.apache_sites).
    required: true
    choices: [fpt.sec.apache_sites]
    type: str
  app_servers:
    description:
      - App servers to read. Each item is an address, or a dict with C(address) and optionally C(name), C(port),
        C(user), C(private_key_file). Missing values come from the options below.
      - When empty, the single server named by O(address) is read.
    type: list
    elements: raw
    default: []
  api_servers:
    description:
      - API servers of the sites, items as in O(app_servers). Each is read like an App server, and its own view
        of every site the App servers carry (its site dir, its vhost) lands in its C(sec_sites); it joins the
        C(api_servers) group and every site's group, after the App servers.
    type: list
    elements: raw
    default: []
  db_servers:
    description:
      - DB servers, items as in O(app_servers), matched by address to the database host the sites'
        C(database.yml) names; they join the C(db_servers) group with these SSH settings. A database host
        not listed here is reached with the SSH settings of the App server that names it.
    type: list
    elements: raw
    default: []
  backup_servers:
    description:
      - Backup hosts (a NAS or backup server reachable over SSH), items as in O(app_servers) plus C(backup_dir),
        the folder the copies of every backup go to (C(<backup_dir>/<cluster>/<site>/<backup>)). They join
        the C(backup_servers) group, with C(sec_backup_dir).
    type: list
    elements: raw
    default: []
  address:
    description: Address of the App server when O(app_servers) is empty.
    type: str
    env:
      - name: SEC_APP_SERVER
  port:
    description: SSH port.
    type: int
    default: 22
    env:
      - name: SEC_SSH_PORT
  user:
    description: SSH user.
    type: str
    env:
      - name: SEC_SSH_USER
  private_key_file:
    description: Path of the SSH private key (an AWX credential injects it as a file).
    type: path
    env:
      - name: SEC_SSH_PRIVATE_KEY_FILE
  known_hosts_file:
    description: SSH known hosts file; new hosts are added to it on first contact.
    type: path
    env:
      - name: SEC_SSH_KNOWN_HOSTS
  host_key_checking:
    description: SSH StrictHostKeyChecking for discovery and for the inventory's hosts.
    type: str
    default: accept-new
    choices: [accept-new, "yes", "no"]
    env:
      - name: SEC_SSH_HOST_KEY_CHECKING
  site_roles:
    description:
      - Roles of sites, by name or reverse name, where the name alone does not say it. Discovery marks a
        site staging when its name contains C(staging), and production otherwise, the safe default since
        nothing ever syncs into production.
    type: dict
    default: {}
  apache_config:
    description: Path of Apache's main configuration file on the App servers, to skip the search.
    type: path
  apache_env:
    description:
      - Variables for C(${VAR}) in the Apache configuration that discovery cannot read from the App servers
        (it reads the running server's environment, else its systemd unit, C(/etc/sysconfig/httpd) and
        Debian's C(envvars)); they win over what is read. See M(fpt.sec.site_facts).
    type: dict
    default: {}
  apache_defines:
    description: C(-D) names the App servers' Apache is started with that discovery cannot read from them.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds allowed for discovery on one App server.
    type: int
    default: 120
"""

EXAMPLES = r"""
# sandbox.apache_sites.yml
plugin: fpt.sec.apache_sites
app_servers:
  - address: app1.studio.lan
    user: sec
    private_key_file: ~/.ssh/sec_ed25519
site_roles:
  qa.studio.example: staging
keyed_groups:
  - key: sec_roles
    prefix: role
compose:
  sec_site_count: sec_sites | length

# For AWX: address, user and key come from the credential's environment variables.
plugin: fpt.sec.apache_sites

# split.apache_sites.yml: two App servers, an API server and the DB server, each named
plugin: fpt.sec.apache_sites
user: sec
private_key_file: ~/.ssh/sec_ed25519
app_servers:
  - {name: app1, address: app1.studio.lan}
  - {name: app2, address: app2.studio.lan}
api_servers:
  - {name: api1, address: api1.studio.lan}
db_servers:
  - {name: db1, address: db1.studio.lan, user: postgres-admin}
"""

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.fpt.sec.plugins.plugin_utils.cluster_inventory import (
    cluster_from_discovery,
    describe_skipped,
    inventory_from_cluster,
)
from ansible_collections.fpt.sec.plugins.plugin_utils.remote_discovery import (
    RemoteDiscoveryError,
    discover_remote,
)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "fpt.sec.apache_sites"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith((".apache_sites.yml", ".apache_sites.yaml"))

    def parse(self, inventory, loader, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        data = None
        if use_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if data is None:
            data = self._discover()
        if update_cache:
            self._cache[cache_key] = data
        self._populate(data)

    def _servers(self, option: str = "app_servers") -> list[dict]:
        defaults = {"port": self.get_option("port"), "user": self.get_option("user"),
                    "key": self.get_option("private_key_file")}
        items = self.get_option(option) or []
        if not items and option == "app_servers":
            if not self.get_option("address"):
                raise AnsibleParserError("apache_sites: no App server given: set app_servers or address "
                                         "(or the SEC_APP_SERVER environment variable)")
            items = [self.get_option("address")]
        servers = []
        for item in items:
            item = {"address": item} if isinstance(item, str) else dict(item)
            if not item.get("address"):
                raise AnsibleParserError(f"apache_sites: every {option} item needs an address")
            server = {"address": item["address"], "name": item.get("name") or item["address"],
                      "port": item.get("port", defaults["port"]), "user": item.get("user", defaults["user"]),
                      "key": item.get("private_key_file", defaults["key"])}
            if option == "backup_servers":
                if not item.get("backup_dir"):
                    raise AnsibleParserError("apache_sites: every backup_servers item needs a backup_dir")
                server["backup_dir"] = item["backup_dir"]
            servers.append(server)
        return servers

    def _discover(self) -> dict:
        app_servers, api_servers = self._servers("app_servers"), self._servers("api_servers")
        discoveries = {}
        for server in [*app_servers, *api_servers]:
            try:
                discoveries[server["name"]] = discover_remote(
                    server["address"], apache_config=self.get_option("apache_config"),
                    apache_env=self.get_option("apache_env"), apache_defines=self.get_option("apache_defines"),
                    timeout=self.get_option("timeout"), port=server["port"], user=server["user"],
                    private_key_file=server["key"], known_hosts_file=self.get_option("known_hosts_file"),
                    host_key_checking=self.get_option("host_key_checking"))
            except RemoteDiscoveryError as exc:
                raise AnsibleParserError(f"apache_sites: {exc}") from exc
        return cluster_from_discovery(app_servers, discoveries, api_servers, self._servers("db_servers"),
                                      self._servers("backup_servers"))

    def _apply_site_roles(self, cluster: dict) -> None:
        roles = self.get_option("site_roles") or {}
        bad = {k: v for k, v in roles.items() if v not in ("production", "staging")}
        if bad:
            raise AnsibleParserError(f"apache_sites: site_roles takes production or staging, not {bad}")
        for site in cluster["sites"]:
            role = roles.get(site["name"]) or roles.get(site["reverse_name"])
            if role:
                site["role"] = role

    def _populate(self, cluster: dict) -> None:
        self._apply_site_roles(cluster)
        shaped = inventory_from_cluster(cluster, self.get_option("known_hosts_file"),
                                        self.get_option("host_key_checking"))
        strict = self.get_option("strict")
        for group in shaped["groups"]:
            self.inventory.add_group(group)
        for name, hostvars in shaped["hosts"].items():
            self.inventory.add_host(name)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
        for group, members in shaped["groups"].items():
            for name in members:
                self.inventory.add_child(group, name)
        for host, skipped in (cluster.get("skipped_sites") or {}).items():
            self.inventory.set_variable(host, "sec_skipped_sites", skipped)
            for entry in skipped:
                self.display.warning(f"apache_sites: {host}: {describe_skipped(entry)}")
        for name, hostvars in shaped["hosts"].items():
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
