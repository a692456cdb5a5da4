"""bench/sync: `sec sync-media` and `sec sync-db` against the raw tools they use, in one run.

A private sandbox (production and staging sites on one App server) is seen as two clusters: one reaches its
sshd as 127.0.0.1, the other as localhost. For sec those are two hosts, so a sync from one cluster to the
other takes the host-to-host way (the target's App server pulls from the source's over SSH, with the
forwarded agent), as between two real App servers.

  media     --files files (default 100,000) of mixed sizes (log-uniform between --min-kib and --max-kib)
            in the vendor's layout (one folder per file id) on the production site:
            raw   rsync -a --ignore-existing over SSH into an empty folder, then again (no-op)
            sec   sec sync-media prod staging (first run), then again (no-op)
  database  the production database grown to --db-size-gb (default 2):
            raw   pg_dump -Fd -j N (the compression db_backup picks) + pg_restore -j N into a new database,
                  the pair db_backup and db_restore run
            sec   sec sync-db prod staging --yes (backup, transfer, checks, maintenance, restore, settings,
                  redeploy, health check, clean-up)

Every sec time is the wall time of the `sec` command, start to end. Targets (issue 7): media first run within
1.1x of raw rsync, no-op run within raw + 3 s, sync-db within 1.2x of the raw pair.

Run: python bench/sync.py [--files 100000] [--db-size-gb 2] [--repeat 1] [--skip-media] [--skip-db] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from common import ROOT, log, private_sandbox  # the project's paths on sys.path first

# isort: split

from ansible_collections.fpt.sec.plugins.module_utils.postgres import (  # noqa: E402
    PgClient,
    default_jobs,
)

from sec_wrapper.sandbox.watch import VhostWatch  # noqa: E402

PROD, STAGING = "prod.teststudio.com", "staging.teststudio.com"
NEAR, FAR = "near", "far"



def sec(*args: str) -> float:
    """Runs the real `sec` command; returns its wall time."""
    started = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).parent / "sec"), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"sec {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return elapsed


def last_operation_tasks() -> list[dict]:
    """The tasks of the newest operation in SEC_HOME, from its job events: name, module and seconds (the
    module's own `duration` too where it reports one), so that sec's time can be told apart."""
    operations = Path(os.environ["SEC_HOME"]) / "operations"
    newest = max(operations.iterdir(), key=lambda p: p.name)
    tasks = []
    for path in sorted(newest.rglob("job_events/*.json")):
        event = json.loads(path.read_text())
        if event.get("event") not in ("runner_on_ok", "runner_on_failed"):
            continue
        data = event["event_data"]
        if not (data.get("start") and data.get("end")):
            continue
        seconds = (datetime.fromisoformat(data["end"]) - datetime.fromisoformat(data["start"])).total_seconds()
        tasks.append({"counter": event["counter"], "task": data["task"], "action": data["task_action"],
                      "seconds": round(seconds, 2), "module_seconds": (data.get("res") or {}).get("duration")})
    return sorted(tasks, key=lambda t: t["counter"])


def breakdown(tasks: list[dict], heavy: tuple[str, ...]) -> dict:
    """The heavy modules' task times, and the count and sum of every other task (Ansible's fixed costs)."""
    parts: dict = {}
    for task in tasks:
        if task["action"] in heavy:
            name = task["action"].rsplit(".", 1)[-1]
            parts[name] = round(parts.get(name, 0) + task["seconds"], 2)
    others = [t for t in tasks if t["action"] not in heavy]
    return {**parts, "other_tasks": len(others), "other_tasks_seconds": round(sum(t["seconds"] for t in others), 2)}


def timed(argv: list[str], env: dict | None = None) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def settle() -> None:
    """Flush what the previous step wrote, so that no run pays for another's writeback."""
    subprocess.run(["sync"], check=False)


# -- media ------------------------------------------------------------------------------------------------------
def write_media(media: Path, count: int, min_kib: float, max_kib: float) -> tuple[int, int]:
    """`count` files under media/files in the vendor's layout, sizes log-uniform in [min, max] KiB. The bytes
    come from one random buffer at random offsets: as incompressible as real images, fast to write."""
    rng = random.Random(7)
    pool = os.urandom(8 * 1024 * 1024)
    total = 0
    low, high = math.log(min_kib * 1024), math.log(max_kib * 1024)
    for index in range(count):
        size = int(math.exp(rng.uniform(low, high)))
        padded = f"{50_000_000 + index * 3:012d}"
        folder = media / "files" / padded[0:4] / padded[4:8] / padded[8:12]
        folder.mkdir(parents=True, exist_ok=True)
        start = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
        (folder / f"bench_{index:06d}_v001.jpg").write_bytes(pool[start:start + size])
        total += size
        if index and index % 20_000 == 0:
            log(f"  {index} files written")
    return count, total


def bench_media(opts: argparse.Namespace, state: dict, work: Path) -> dict:
    prod = next(s for s in state["sites"] if s["name"] == PROD)
    app = state["app_server"]
    source = Path(prod["site_dir"]) / "media"
    log(f"writing {opts.files} media files into {source}")
    files, size = write_media(source, opts.files, opts.min_kib, opts.max_kib)
    raw_target = work / "raw-media"
    staging_media = Path(next(s for s in state["sites"] if s["name"] == STAGING)["site_dir"]) / "media"
    staging_before = set(staging_media.rglob("*"))
    settle()
    # The same transport sec's module uses: no compression (media does not compress), strict host key.
    ssh = (f"ssh -p {app['port']} -i {app['key']} -o UserKnownHostsFile={app['known_hosts']}"
           " -o StrictHostKeyChecking=yes -o BatchMode=yes -o Compression=no")
    raw = ["rsync", "-a", "--ignore-existing", "-e", ssh, f"{source}/", f"{app['user']}@127.0.0.1:{raw_target}/"]
    pair = ("--source-cluster", NEAR, "--target-cluster", FAR)
    best: dict[str, float] = {}
    noop_tasks: dict = {}

    def keep_best(key: str, seconds: float) -> None:
        best[key] = min(best.get(key, seconds), seconds)

    for attempt in range(opts.repeat):
        if attempt:  # back to empty targets: staging keeps only what it had before the first run
            shutil.rmtree(raw_target)
            for path in sorted(set(staging_media.rglob("*")) - staging_before, key=lambda p: -len(p.parts)):
                path.rmdir() if path.is_dir() else path.unlink()
        raw_target.mkdir()
        settle()
        log(f"round {attempt + 1}/{opts.repeat}: raw rsync, first run")
        keep_best("raw_first", timed(raw))
        settle()
        log(f"round {attempt + 1}/{opts.repeat}: sec sync-media, first run")
        keep_best("sec_first", sec("sync-media", PROD, STAGING, *pair, "--yes"))
        settle()
        log(f"round {attempt + 1}/{opts.repeat}: raw rsync, no-op run")
        keep_best("raw_noop", timed(raw))
        log(f"round {attempt + 1}/{opts.repeat}: sec sync-media, no-op run")
        noop = sec("sync-media", PROD, STAGING, *pair, "--yes")
        if noop <= best.get("sec_noop", noop):
            noop_tasks = breakdown(last_operation_tasks(), ("fpt.sec.media_sync",))
        keep_best("sec_noop", noop)
        copied = sum(1 for p in (staging_media / "files").rglob("bench_*"))
        if copied != files:
            raise SystemExit(f"sec sync-media copied {copied} of {files} files")
    shutil.rmtree(raw_target)
    seconds = best
    return {"files": files, "bytes": size, "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "noop_tasks": noop_tasks}


# -- database ----------------------------------------------------------------------------------------------------
def bench_db(opts: argparse.Namespace, state: dict, work: Path) -> dict:
    from backup import grow, superuser_sql  # bench/backup.py: the same generated event log

    prod = next(s for s in state["sites"] if s["name"] == PROD)
    client = PgClient.for_site(prod["site_dir"])
    seconds: dict[str, float] = {}
    with client:
        db_size = grow(client, state, opts.db_size_gb)
        pg_dump, pg_restore = client.tool("pg_dump"), client.tool("pg_restore")
        jobs = default_jobs()
        compression_args, compression = client.pg_dump_compression_args(pg_dump, "auto")
        login = client.connection_args()
        dump = work / "raw-dump"
        fresh = f"{client.database}_bench_raw"
        # Warm the cache for both alike: neither run pays for the first read of the table from disk.
        client.query("SELECT count(*), sum(length(meta::text)) FROM event_log_entries")
        log("raw pg_dump + pg_restore")
        started = time.monotonic()
        result = client.run([pg_dump, *login, "--format=directory", f"--jobs={jobs}", *compression_args,
                             "--file", str(dump), "-d", client.dbname_arg(client.database)], record=False)
        if result.rc != 0:
            raise SystemExit(f"pg_dump failed: {result.errors()}")
        client.create_database_like(fresh, client.database)
        result = client.run([pg_restore, *login, f"--jobs={jobs}", "--no-owner", "--exit-on-error",
                             "-d", client.dbname_arg(fresh), str(dump)], record=False)
        if result.rc != 0:
            raise SystemExit(f"pg_restore failed: {result.errors()}")
        seconds["raw_pair"] = time.monotonic() - started
        client.drop_database(fresh)
        shutil.rmtree(dump)
        # The raw restore's pages are flushed now, not during sec's low-I/O-priority backup.
        superuser_sql(state, "CHECKPOINT")
        settle()
        log("sec sync-db")
        # The target's window (issue 25): prepared while it serves, maintenance only for the swap and after.
        with VhostWatch(state["apache"]["port"], STAGING, poll=0.1) as watch:
            seconds["sec_sync_db"] = sec("sync-db", PROD, STAGING, "--source-cluster", NEAR, "--target-cluster",
                                         FAR, "--yes")
        window = watch.window()["seconds"]
        tasks = breakdown(last_operation_tasks(),
                          ("fpt.sec.db_backup", "fpt.sec.db_backup_transfer", "fpt.sec.db_restore"))
    return {"database_bytes": db_size, "jobs": jobs, "compression": compression, "target_window": window,
            "seconds": {k: round(v, 2) for k, v in seconds.items()}, "tasks": tasks}


# -- run and report ---------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000, help="media files (default 100000)")
    parser.add_argument("--min-kib", type=float, default=1.0, help="smallest media file, KiB (default 1)")
    parser.add_argument("--max-kib", type=float, default=256.0, help="largest media file, KiB (default 256)")
    parser.add_argument("--db-size-gb", type=float, default=2.0, help="database size to generate (default 2)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="media rounds (both targets emptied in between); the best of each measure counts")
    parser.add_argument("--skip-media", action="store_true")
    parser.add_argument("--skip-db", action="store_true")
    parser.add_argument("--dir", type=Path, help="work folder (default: a new one under /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up afterwards")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    opts = parser.parse_args()

    results: dict = {"cpus": os.cpu_count()}
    # The clusters live in the sandbox's private SEC_HOME too.
    with private_sandbox("sync", opts.dir, opts.keep, events=10_000, media_files=10) as (work, box, _):
        state = box.state()
        app = state["app_server"]
        for name, address in ((NEAR, "127.0.0.1"), (FAR, "localhost")):
            sec("cluster", "create", name, "--app-server", address, "--port", str(app["port"]), "--user",
                app["user"], "--key", app["key"])
        if not opts.skip_media:
            results["media"] = bench_media(opts, state, work)
        if not opts.skip_db:
            results["database"] = bench_db(opts, state, work)
    report(results, opts)


def report(results: dict, opts: argparse.Namespace) -> None:
    targets: dict[str, bool] = {}
    ratios: dict[str, float] = {}
    media, database = results.get("media"), results.get("database")
    if media:
        s = media["seconds"]
        ratios["media_first_sec_vs_raw"] = s["sec_first"] / s["raw_first"]
        ratios["media_noop_sec_minus_raw_s"] = s["sec_noop"] - s["raw_noop"]
        targets["media first run within 1.1x of raw rsync"] = ratios["media_first_sec_vs_raw"] <= 1.1
        targets["media no-op run within raw + 3 s"] = ratios["media_noop_sec_minus_raw_s"] <= 3.0
    if database:
        s = database["seconds"]
        ratios["sync_db_sec_vs_raw_pair"] = s["sec_sync_db"] / s["raw_pair"]
        targets["sync-db within 1.2x of the raw pg_dump/pg_restore pair"] = ratios["sync_db_sec_vs_raw_pair"] <= 1.2
        targets["sync-db target window at most 5 s"] = database["target_window"] <= 5.0
    results["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    results["targets"] = targets
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['cpus']} CPUs")
    if media:
        s = media["seconds"]
        print(f"media: {media['files']} files, {media['bytes'] / 1024**3:.2f} GiB "
              f"({opts.min_kib:g}-{opts.max_kib:g} KiB, log-uniform), host to host over SSH"
              f"{f', best of {opts.repeat} rounds' if opts.repeat > 1 else ''}")
        rows = (("raw rsync -a --ignore-existing, first", "raw_first"), ("sec sync-media, first", "sec_first"),
                ("raw rsync, no-op", "raw_noop"), ("sec sync-media, no-op", "sec_noop"))
        for label, key in rows:
            print(f"  {label:42}{s[key]:>9.2f} s")
        noop = media["noop_tasks"]
        print(f"    no-op: media_sync task {noop.get('media_sync', 0):.2f} s, {noop['other_tasks']} other tasks "
              f"{noop['other_tasks_seconds']:.2f} s, the rest is sec, ansible-runner and ansible-playbook starting")
    if database:
        s = database["seconds"]
        print(f"database: {database['database_bytes'] / 1024**3:.2f} GiB, jobs {database['jobs']}, "
              f"compression {database['compression']}, host to host over SSH")
        print(f"  {'raw pg_dump -Fd + pg_restore -j':42}{s['raw_pair']:>9.2f} s")
        print(f"  {'sec sync-db':42}{s['sec_sync_db']:>9.2f} s")
        print(f"    the target's window (not 200): {database['target_window']:.2f} s")
        tasks = database["tasks"]
        print(f"    of which tasks: db_backup {tasks.get('db_backup', 0):.2f} s (dump and its verification), "
              f"db_backup_transfer {tasks.get('db_backup_transfer', 0):.2f} s, db_restore (check and restore) "
              f"{tasks.get('db_restore', 0):.2f} s, {tasks['other_tasks']} other tasks "
              f"{tasks['other_tasks_seconds']:.2f} s")
    print("ratios:")
    for key, value in results["ratios"].items():
        print(f"  {key:34}{value:>8.3f}")
    print("targets:")
    for key, met in targets.items():
        print(f"  {'met' if met else 'MISSED':7}{key}")


if __name__ == "__main__":
    main()
