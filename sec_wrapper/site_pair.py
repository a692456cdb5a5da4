"""Two sites in one operation (the syncs): finding them, one inventory holding both, the refusals that need
no host, and the SSH agent the target's App server uses to reach the source's.

SSH between App servers: the target's App server pulls from the source's with rsync over SSH, so data goes
host to host. It logs in with the controller's agent, forwarded into the target's session by the playbook.
`source_agent` runs a private ssh-agent for the operation that holds only the source host's stored key (not
the user's own keys), for a limited time, and stops it afterwards. The source's host key is the one the
controller already trusts (the cluster's known_hosts file), passed to the playbook.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.fpt.sec.plugins.module_utils.versions import Version

from sec_wrapper import store
from sec_wrapper.errors import SecError
from sec_wrapper.inventory import cluster_inventory, known_hosts_file

# How long the source's key stays usable in the private agent, whatever happens to sec.
AGENT_KEY_LIFETIME = 12 * 3600


@dataclass
class SitePair:
    source_cluster: store.Cluster
    source: store.Site
    target_cluster: store.Cluster
    target: store.Site

    @property
    def same_cluster(self) -> bool:
        return self.source_cluster.name == self.target_cluster.name

    def source_app_host(self) -> store.Host:
        return _first_app_host(self.source_cluster, self.source)

    def target_app_host(self) -> store.Host:
        return _first_app_host(self.target_cluster, self.target)

    def same_host(self) -> bool:
        """As the playbooks decide it: the same cluster host, or the same SSH address and port."""
        src, dst = self.source_app_host(), self.target_app_host()
        if self.same_cluster and src.name == dst.name:
            return True
        return (src.address, int(src.port)) == (dst.address, int(dst.port))


def _first_app_host(cluster: store.Cluster, site: store.Site) -> store.Host:
    app = [h for h in site.app_hosts if "app" in cluster.host(h).roles] if site.app_hosts else []
    if not app:
        raise SecError(f"site {site.name} has no App server in cluster {cluster.name}: "
                       f"`sec cluster connect {cluster.name}` refreshes it")
    return cluster.host(sorted(app)[0])


def find_pair(source: str, target: str, cluster: str | None = None, source_cluster: str | None = None,
              target_cluster: str | None = None) -> SitePair:
    sc, s = store.find_site(source, source_cluster or cluster)
    tc, t = store.find_site(target, target_cluster or cluster)
    return SitePair(sc, s, tc, t)


# -- refusals that need no host ------------------------------------------------------------------------------
def check_distinct(pair: SitePair) -> None:
    if pair.source.reverse_name == pair.target.reverse_name:
        if pair.same_cluster:
            raise SecError(f"the source and the target are the same site ({pair.source.name}): give two sites")
        # One inventory addresses a site by its reverse name: two sites of that name cannot both be in it.
        raise SecError(f"the source and the target are both named {pair.source.name} (in clusters "
                       f"{pair.source_cluster.name} and {pair.target_cluster.name}); sec cannot sync between "
                       "two sites of the same name in one operation")


def check_db_target(pair: SitePair) -> None:
    """A database sync never writes to production, and needs the target on the source's release or newer.
    The playbook checks both again on the hosts (the store may be stale); these fail before any run."""
    check_distinct(pair)
    target = pair.target
    if target.role != "staging":
        raise SecError(f"{target.name} is a production site: nothing is ever synced into production. If it is "
                       f"a staging site, change its role first: sec site role {target.name} staging")
    if pair.source.version and target.version:
        try:
            older = Version(target.version) < Version(pair.source.version)
        except ValueError:
            older = False  # the playbook reads the real versions on the hosts and compares them
        if older:
            raise SecError(f"{target.name} runs {target.version}, older than {pair.source.name} "
                           f"({pair.source.version}): its schema would not match the data. Upgrade {target.name} "
                           f"to {pair.source.version} first")


# -- one inventory with both sites -----------------------------------------------------------------------------
def pair_inventory(pair: SitePair) -> dict[str, Any]:
    """The inventory the sync playbooks get: the cluster's own when both sites are in one cluster; else the
    App servers of each site from its cluster, each with its cluster's connection settings. Host names that
    both clusters use are suffixed with @<cluster> so that they stay two hosts."""
    if pair.same_cluster:
        return cluster_inventory(pair.source_cluster)
    sides = [(pair.source_cluster, pair.source), (pair.target_cluster, pair.target)]
    inventories = [cluster_inventory(cluster) for cluster, _ in sides]
    names = [set(inv["all"]["hosts"]) for inv in inventories]
    shared = names[0] & names[1]
    hosts: dict[str, dict[str, Any]] = {}
    children: dict[str, dict[str, Any]] = {g: {"hosts": {}} for g in ("app_servers", "production", "staging")}
    for (cluster, site), inventory in zip(sides, inventories, strict=True):
        groups = inventory["all"]["children"]
        app = set(groups.get("app_servers", {}).get("hosts", {}))
        for name in sorted(set(groups.get(site.reverse_name, {}).get("hosts", {})) & app):
            alias = f"{name}@{cluster.name}" if name in shared else name
            hostvars = dict(inventory["all"]["hosts"][name])
            hostvars["sec_sites"] = {site.reverse_name: hostvars["sec_sites"][site.reverse_name]}
            hostvars["sec_cluster"] = cluster.name
            hosts[alias] = hostvars
            children["app_servers"]["hosts"][alias] = None
            children.setdefault(site.reverse_name, {"hosts": {}})["hosts"][alias] = None
            children.setdefault(site.role or "production", {"hosts": {}})["hosts"][alias] = None
    return {"all": {"hosts": hosts, "children": children}}


def source_known_hosts(pair: SitePair) -> str:
    """The known_hosts file in which the controller keeps the source host's key."""
    return str(known_hosts_file(pair.source_cluster))


# -- the private agent -------------------------------------------------------------------------------------
@contextmanager
def source_agent(pair: SitePair, *more: store.Host) -> Iterator[bool]:
    """While inside: SSH_AUTH_SOCK names a private agent holding only the source host's key (and those of
    `more`, a backup host the target may pull a copy from). Yields whether there is an agent to forward: none
    when both sites are on one host (the copy is local) and nothing else is reached, or when no host has a
    stored key (the target must then reach the source on its own, with its known keys)."""
    hosts = [*([] if pair.same_host() else [pair.source_app_host()]), *more]
    if not hosts:
        yield False
        return
    with host_agent(*hosts) as forwarding:
        yield forwarding


@contextmanager
def host_agent(*hosts: store.Host) -> Iterator[bool]:
    """While inside: SSH_AUTH_SOCK names a private agent holding only the `hosts`' stored keys, for a host that
    pulls from them over a forwarded agent (sync, a backup host's copy). Yields False when none has a key."""
    if not any(host.key for host in hosts):
        yield False
        return
    for tool in ("ssh-agent", "ssh-add"):
        if not shutil.which(tool):
            raise SecError(f"{tool} is not installed: the target's App server reaches the source's with an SSH "
                           "agent forwarded by sec (install openssh-client)")
    folder = Path(tempfile.mkdtemp(prefix="sec-agent-"))  # 0700: only this user can reach the socket
    socket = folder / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    previous = os.environ.get("SSH_AUTH_SOCK")
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if agent.poll() is not None or time.monotonic() > deadline:
                detail = agent.stderr.read().decode(errors="replace").strip() if agent.stderr else ""
                raise SecError(f"could not start a private ssh-agent: {detail or 'no socket'}")
            time.sleep(0.02)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket)}
        for host, key in ((h, store.key_path(h.key)) for h in hosts if h.key):
            added = subprocess.run(["ssh-add", "-q", "-t", str(AGENT_KEY_LIFETIME), str(key)], env=env,
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            if added.returncode != 0:
                raise SecError(f"could not load the key of {host.name} into the private ssh-agent: "
                               f"{added.stderr.strip() or added.returncode} (is it protected by a passphrase?)")
        # ansible-runner hands our environment to ansible-playbook, whose ssh forwards this agent.
        os.environ["SSH_AUTH_SOCK"] = str(socket)
        yield True
    finally:
        if previous is None:
            os.environ.pop("SSH_AUTH_SOCK", None)
        else:
            os.environ["SSH_AUTH_SOCK"] = previous
        agent.terminate()
        try:
            agent.wait(timeout=5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        if agent.stderr:
            agent.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)
