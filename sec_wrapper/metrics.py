"""`/metrics`: sec's state in Prometheus' text format, read from the history, the sites' cached state and the
schedules at each scrape (prometheus_client renders it; nothing is kept in memory between scrapes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from ansible_collections.fpt.sec.plugins.module_utils.utc import epoch_of_iso
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from sec_wrapper import alerts, history, schedules, site_state, store
from sec_wrapper.errors import SecError


class SecCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        records = [history.effective(r) for r in history.list_operations()]
        backup_time = GaugeMetricFamily("sec_backup_last_success_timestamp_seconds",
                                        "When the newest good backup of the site was made (Unix time)",
                                        labels=["cluster", "site"])
        backup_size = GaugeMetricFamily("sec_backup_last_size_bytes", "Size of the last successful backup's dump",
                                        labels=["cluster", "site"])
        drill_time = GaugeMetricFamily("sec_drill_last_success_timestamp_seconds",
                                       "When the last restore drill that passed ended (Unix time)",
                                       labels=["cluster", "site"])
        drill_restore = GaugeMetricFamily("sec_drill_last_restore_seconds",
                                          "Recovery time (restore and checks) of the last drill that passed",
                                          labels=["cluster", "site"])
        last_status = GaugeMetricFamily("sec_operation_last_status",
                                        "How the newest ended operation of its kind on the site went (1 success, "
                                        "0 failure)", labels=["cluster", "site", "operation"])
        site_up = GaugeMetricFamily("sec_site_up", "1 when the web head answered through the site's vhost at the "
                                    "last state read", labels=["site", "host"])
        free = GaugeMetricFamily("sec_host_free_bytes", "Free space where the site writes, at the last state read",
                                 labels=["host", "path"])
        for cluster in store.list_clusters():
            for site in cluster.sites:
                names = {site.name, site.reverse_name}
                mine = [r for r in records if r.get("site") in names and r.get("cluster") == cluster.name]
                cached = site_state.site_state(cluster.name, site.name) or {}
                newest = alerts.newest_backup_epoch(mine, cached)
                if newest:
                    backup_time.add_metric([cluster.name, site.name], newest)
                size = alerts.last_backup_bytes(mine)
                if size is not None:
                    backup_size.add_metric([cluster.name, site.name], size)
                drill = next((r for r in mine if r.get("operation") == "drill" and r.get("status") == "successful"),
                             None)
                if drill:
                    drill_time.add_metric([cluster.name, site.name], epoch_of_iso(drill.get("ended") or "") or 0)
                    seconds = (drill.get("result") or {}).get("recovery_seconds")
                    if isinstance(seconds, (int, float)):
                        drill_restore.add_metric([cluster.name, site.name], seconds)
                seen: set[str] = set()
                for record in mine:
                    operation = record.get("operation") or "?"
                    if operation in seen or record.get("status") in ("running", "skipped"):
                        continue
                    seen.add(operation)
                    last_status.add_metric([cluster.name, site.name, operation],
                                           1 if record.get("status") == "successful" else 0)
                for head in cached.get("heads") or []:
                    health = head.get("health") or {}
                    ok = not head.get("error") and health and not health.get("error") and not health.get("problem")
                    site_up.add_metric([site.name, head["host"]], 1 if ok else 0)
                for disk in cached.get("disk") or []:
                    if disk.get("free_bytes") is not None:
                        free.add_metric([disk["host"], disk["path"]], disk["free_bytes"])
        yield from (backup_time, backup_size, drill_time, drill_restore, last_status, site_up, free)

        totals = CounterMetricFamily("sec_operations", "Operations in the history, by kind and outcome",
                                     labels=["operation", "status"])
        for (operation, status), count in sorted(Counter(
                (r.get("operation") or "?", r.get("status") or "?") for r in records).items()):
            totals.add_metric([operation, status], count)
        yield totals

        next_run = GaugeMetricFamily("sec_schedule_next_run_timestamp_seconds",
                                     "The schedule's next occurrence (Unix time); absent when paused or ended",
                                     labels=["schedule"])
        for schedule in schedules.list_schedules():
            try:
                upcoming = None if schedule.paused else schedules.next_run(schedule)
            except SecError:
                upcoming = None
            if upcoming:
                next_run.add_metric([schedule.name], upcoming.timestamp())
        yield next_run


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SecCollector())
    return generate_latest(registry)


def content_type() -> str:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    return CONTENT_TYPE_LATEST

