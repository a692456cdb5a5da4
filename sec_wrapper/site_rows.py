"""The store as rows: clusters and sites as `sec cluster list`, `sec site list` and the console show them."""

from __future__ import annotations

from typing import Any

from sec_wrapper import store


def site_rows(cluster: store.Cluster) -> list[dict[str, Any]]:
    return [{**s.to_dict(), "cluster": cluster.name,
             "database": f"{s.database.name}@{s.database.host}:{s.database.port}" if s.database else None}
            for s in cluster.sites]


def all_site_rows(cluster: str | None = None) -> list[dict[str, Any]]:
    """Every site (of one cluster): `sec site list --json`, the console's /api/sites."""
    clusters = [store.load_cluster(cluster)] if cluster else store.list_clusters()
    return [row for c in clusters for row in site_rows(c)]


def cluster_rows() -> list[dict[str, Any]]:
    """One row per cluster: `sec cluster list --json`, the console's Clusters page and /api/clusters."""
    return [{"name": c.name, "hosts": len(c.hosts), "sites": [s.name for s in c.sites], "updated": c.updated}
            for c in store.list_clusters()]
