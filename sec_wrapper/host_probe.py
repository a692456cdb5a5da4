"""Which of a cluster's hosts answer over SSH right now: read-only commands say which did not."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

from sec_wrapper import store
from sec_wrapper.inventory import HOST_KEY_CHECKING, known_hosts_file


def probe_host(cluster: store.Cluster, host: store.Host, timeout: int = 5) -> str | None:
    """None when the host answers over SSH, else ssh's last line (why it did not)."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}",
            "-o", f"StrictHostKeyChecking={HOST_KEY_CHECKING}",
            "-o", f"UserKnownHostsFile={known_hosts_file(cluster)}", "-o", "ControlMaster=no",
            "-o", "ControlPath=none", "-p", str(host.port)]
    if host.key:
        argv += ["-i", str(store.key_path(host.key)), "-o", "IdentitiesOnly=yes"]
    argv += [f"{host.user}@{host.address}", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout + 5, check=False)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout + 5}s"
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"ssh exited {done.returncode}"


def probe_hosts(cluster: store.Cluster, names: list[str]) -> dict[str, str | None]:
    """{host name: None (answered) or why not}, probed in parallel."""
    hosts = [cluster.host(n) for n in names]
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        answers = list(pool.map(lambda h: probe_host(cluster, h), hosts))
    return {h.name: a for h, a in zip(hosts, answers, strict=True)}


def web_heads(cluster: store.Cluster, site: store.Site) -> list[str]:
    """The hosts that serve a site: its App servers, then the cluster's API servers."""
    api = [h.name for h in cluster.hosts_with_role("api") if h.name not in site.app_hosts]
    return [*site.app_hosts, *api]
