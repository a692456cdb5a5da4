"""bench/trim: trimming half of a big events table while the site serves.

A sandbox site database gets --events events (generated server-side, spread over four years as a live site
writes them). Then, each on a fresh copy of that database and each under the same concurrent load (pgbench
at a fixed rate, -R, running a script of the site's typical reads and writes, with per-transaction logging,
-l), three runs are compared:

  baseline  no trim: the load alone, during --baseline-seconds just before each trim (both windows pooled,
            so that a busy neighbour on the machine weighs on the baseline as on the trims);
  raw       the blunt tool: one transaction doing COPY (SELECT ... WHERE created_at < date) TO STDOUT
            piped to gzip, then DELETE ... WHERE created_at < date, COMMIT;
  module    fpt.sec.events_trim, run as Ansible runs it (the module file with its arguments file).

For each: the trim's duration and rows per second, and the concurrent load's latency (p50, p99, max) over
the transactions that ended while the trim ran. Targets: the module's p99 within 2x the baseline's, and its
throughput at least half of the raw single transaction's.

Run: python bench/trim.py [--events 5000000] [--rate 200] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, log, private_sandbox  # the project's paths on sys.path first

# isort: split

from ansible_collections.fpt.sec.plugins.module_utils.postgres import PgClient, find_binary  # noqa: E402

MODULE = ROOT / "collections/ansible_collections/fpt/sec/plugins/modules/events_trim.py"
SITE = ("trim-bench.teststudio.com", "production")

# One "request" of the live site: the event daemon polling for new events, a project's activity stream,
# someone looking an old event up, a shot page, and an artist's change with the event it writes.
LOAD_SCRIPT = """\\set project random(1, 3)
\\set shot random(1, 200)
\\set user random(1, 10)
\\set old random(1, {events})
SELECT id, event_type, entity_type, entity_id, meta FROM event_log_entries
  WHERE id > (SELECT max(id) - 50 FROM event_log_entries) ORDER BY id LIMIT 50;
SELECT id, created_at, event_type, description FROM event_log_entries
  WHERE project_id = :project ORDER BY created_at DESC LIMIT 20;
SELECT * FROM event_log_entries WHERE id = :old;
SELECT * FROM shots WHERE id = :shot;
BEGIN;
UPDATE shots SET description = 'Shot ' || :shot || ' by ' || :user, updated_at = now() WHERE id = :shot;
INSERT INTO event_log_entries (created_at, event_type, entity_type, entity_id, project_id, user_id,
  attribute_name, description, meta)
  VALUES (now(), 'Shotgun_Shot_Change', 'Shot', :shot, :project, :user, 'description',
  'Artist ' || :user || ' changed shot ' || :shot, '{{"old": 1, "new": 2}}');
COMMIT;
"""



# -- the database -------------------------------------------------------------------------------------------
def superuser_sql(state: dict, sql: str, dbname: str = "postgres") -> None:
    from sec_wrapper.sandbox.postgres import superuser

    with superuser(state["postgres"], dbname) as conn:
        conn.execute(sql)


def reset_database(state: dict, site: dict, template: str) -> None:
    """The site database, fresh from the template, and a checkpoint so that no run pays for another's."""
    superuser_sql(state, f'DROP DATABASE IF EXISTS "{site["db_name"]}" WITH (FORCE)')
    superuser_sql(state, f'CREATE DATABASE "{site["db_name"]}" TEMPLATE "{template}" OWNER "{site["db_user"]}"'
                         " STRATEGY FILE_COPY")
    superuser_sql(state, "CHECKPOINT")


# -- the load -----------------------------------------------------------------------------------------------
class Load:
    """pgbench at a fixed rate, logging every transaction, in the background."""

    def __init__(self, client: PgClient, script: Path, out_dir: Path, name: str, rate: int, clients: int,
                 seconds: int) -> None:
        self.prefix = out_dir / f"pgbench-{name}"
        argv = [find_binary("pgbench"), "-n", "-c", str(clients), "-j", str(min(clients, 4)), "-R", str(rate),
                "-T", str(seconds), "-l", f"--log-prefix={self.prefix}", "-f", str(script),
                # pgbench has no -w (never prompt): the passfile answers, and stdin is closed anyway.
                *[a for a in client.connection_args() if a != "-w"], client.database]
        self.started = time.time()
        self.proc = subprocess.Popen(argv, env=client.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=out_dir)

    def stop(self) -> str:
        """Stops pgbench by its pid if it still runs; what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        return out.decode("utf-8", "replace")

    def wait(self) -> str:
        out, _ = self.proc.communicate()
        return out.decode("utf-8", "replace")

    def latencies(self, start: float, end: float) -> list[float]:
        """Latency in ms (time plus schedule lag: what a user waits under -R) of the transactions that
        ended within [start, end]."""
        found: list[float] = []
        for path in self.prefix.parent.glob(self.prefix.name + ".*"):
            for line in path.read_text().splitlines():
                fields = line.split()
                if len(fields) < 6 or fields[2] == "skipped":
                    continue
                ended = int(fields[4]) + int(fields[5]) / 1e6
                if start <= ended <= end:
                    lag = int(fields[6]) if len(fields) > 6 else 0
                    found.append((int(fields[2]) + lag) / 1000.0)
        return found


def summarize(latencies: list[float]) -> dict:
    if not latencies:
        return {"transactions": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(latencies)
    return {"transactions": len(ordered), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "max_ms": round(ordered[-1], 2)}


# -- the trims ------------------------------------------------------------------------------------------------
def raw_trim(client: PgClient, cutoff: str, out: Path) -> int:
    """One transaction: COPY the old rows out through gzip, DELETE them, COMMIT. Returns the rows archived."""
    sql = (f"BEGIN;\nCOPY (SELECT * FROM event_log_entries WHERE created_at < '{cutoff}') TO STDOUT"
           " (FORMAT csv, HEADER);\n"
           f"DELETE FROM event_log_entries WHERE created_at < '{cutoff}';\nCOMMIT;\n")
    argv = [find_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *client.connection_args(), "-d",
            client.database]
    with open(out, "wb") as target:
        gzip = subprocess.Popen(["gzip", "-6"], stdin=subprocess.PIPE, stdout=target)
        psql = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=gzip.stdin, env=client.environment())
        gzip.stdin.close()
        psql.communicate(sql.encode())
        gzip.wait()
        os.fsync(target.fileno())
    if psql.returncode or gzip.returncode:
        raise RuntimeError(f"raw trim failed: psql {psql.returncode}, gzip {gzip.returncode}")
    lines = subprocess.run(f"zcat '{out}' | wc -l", shell=True, capture_output=True, text=True, check=True)
    return int(lines.stdout) - 1  # no newline inside the generated rows' fields: one line per row


def module_trim(site_dir: str, before: str, work: Path, batch_size: int | None, throttle_ms: int | None) -> dict:
    args: dict = {"site_dir": site_dir, "before": before, "operation_id": "bench"}
    if batch_size is not None:
        args["batch_size"] = batch_size
    if throttle_ms is not None:
        args["throttle_ms"] = throttle_ms
    args_file = work / "module-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "collections")}, stdin=subprocess.DEVNULL)
    result = json.loads(done.stdout or "{}")
    if done.returncode or result.get("failed"):
        raise RuntimeError(f"module failed: {result.get('msg') or done.stderr[-500:]}")
    return result


def count_older(client: PgClient, cutoff: str) -> int:
    return int(client.query(f"SELECT count(*) FROM event_log_entries WHERE created_at < '{cutoff}'")[0][0])


# -- the run ---------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--rate", type=int, default=200, help="pgbench transactions per second (-R)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--baseline-seconds", type=int, default=20,
                        help="load alone before each trim; both windows together are the baseline")
    parser.add_argument("--batch-size", type=int, help="the module's batch_size (default: the module's)")
    parser.add_argument("--throttle-ms", type=int, help="the module's throttle_ms (default: the module's)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of raw then module, each on a fresh copy; latencies are pooled over rounds")
    parser.add_argument("--dir", type=Path, help="work folder (default: a new one under /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up and the folder in place")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    opts = parser.parse_args()

    log(f"creating a site with {opts.events} events (server-side)")
    sandbox = private_sandbox("trim", opts.dir, opts.keep, events=opts.events, media_files=1, sites=[SITE])
    with sandbox as (work, box, _):
        state = box.state()
        results = run(opts, state, state["sites"][0], work)
    report(results, opts)


def run(opts: argparse.Namespace, state: dict, site: dict, work: Path) -> dict:
    template = site["db_name"] + "_template"
    superuser_sql(state, "VACUUM (ANALYZE)", dbname=site["db_name"])
    superuser_sql(state, f'CREATE DATABASE "{template}" TEMPLATE "{site["db_name"]}" STRATEGY FILE_COPY')
    script = work / "load.sql"
    script.write_text(LOAD_SCRIPT.format(events=opts.events))
    # Half the events: the seed spreads them evenly over four years ending now.
    today = datetime.datetime.now(datetime.timezone.utc).date()  # noqa: UP017
    before = (today - datetime.timedelta(days=730)).isoformat()
    cutoff = f"{before} 00:00:00+00"
    warmup = 3.0
    results: dict = {"events": opts.events, "before": before, "rate": opts.rate, "clients": opts.clients,
                     "control_s": opts.baseline_seconds, "rounds": []}
    pooled: dict[str, list[float]] = {"baseline": [], "raw": [], "module": []}
    totals = {name: {"rows": 0, "seconds": 0.0} for name in ("raw", "module")}

    with PgClient.for_site(site["site_dir"]) as client:
        for round_no in range(1, opts.repeat + 1):
            runs: dict = {}
            for name in ("raw", "module"):
                # Each trim on a fresh copy, under a load that first runs alone for the control window: the
                # baseline is measured in the same run, on the same data, just before each trim.
                reset_database(state, site, template)
                expected = count_older(client, cutoff)
                results["rows_to_trim"] = expected
                load = Load(client, script, work, f"{name}-{round_no}", opts.rate, opts.clients, 24 * 3600)
                time.sleep(warmup)
                c0 = time.time()
                log(f"round {round_no} {name}: {opts.baseline_seconds} s of load alone, then trimming {expected}"
                    " events under it")
                time.sleep(opts.baseline_seconds)
                t0 = time.time()
                if name == "raw":
                    rows = raw_trim(client, cutoff, work / "raw.csv.gz")
                    extra: dict = {"csv_bytes": (work / "raw.csv.gz").stat().st_size}
                else:
                    outcome = module_trim(site["site_dir"], before, work, opts.batch_size, opts.throttle_ms)
                    rows = outcome["rows_deleted"]
                    extra = {k: outcome[k] for k in ("batches", "max_batch_ms", "avg_batch_ms", "retries")}
                    extra.update(csv_bytes=outcome["csv_size"], module_duration_s=outcome["duration"])
                t1 = time.time()
                time.sleep(2.0)  # let pgbench write out the window's log lines before it is stopped
                printed = load.stop()
                control, during = load.latencies(c0, t0), load.latencies(t0, t1)
                if not control:
                    raise RuntimeError(f"pgbench logged nothing: {printed.strip()[-800:]}")
                left = count_older(client, cutoff)
                if rows != expected or left:
                    raise RuntimeError(f"{name}: archived {rows} of {expected} events, {left} older ones left")
                pooled["baseline"] += control
                pooled[name] += during
                totals[name]["rows"] += rows
                totals[name]["seconds"] += t1 - t0
                runs[name] = {"duration_s": round(t1 - t0, 2), "rows": rows, "rows_per_s": round(rows / (t1 - t0)),
                              **extra, **summarize(during), "control_p99_ms": summarize(control)["p99_ms"]}
                for path in Path(site["site_dir"]).glob("events_trim_*.csv.gz"):
                    path.unlink()
            results["rounds"].append(runs)
    results["baseline"] = {"duration_s": 2 * opts.repeat * opts.baseline_seconds, **summarize(pooled["baseline"])}
    for name in ("raw", "module"):
        seconds = totals[name]["seconds"]
        results[name] = {"duration_s": round(seconds / opts.repeat, 2),
                         "rows_per_s": round(totals[name]["rows"] / seconds), **summarize(pooled[name])}
    base, raw, mod = results["baseline"], results["raw"], results["module"]
    results["ratios"] = {
        "module_p99_vs_baseline": round(mod["p99_ms"] / base["p99_ms"], 2),
        "raw_p99_vs_baseline": round(raw["p99_ms"] / base["p99_ms"], 2),
        "module_throughput_vs_raw": round(mod["rows_per_s"] / raw["rows_per_s"], 2),
    }
    return results


def report(results: dict, opts: argparse.Namespace) -> None:
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\nbench/trim: {results['events']} events, trimming the {results['rows_to_trim']} before "
          f"{results['before']}; load {results['rate']} tx/s over {results['clients']} clients (pgbench -R -l); "
          f"{opts.repeat} round(s)")
    columns = f"{'duration s':>12}{'rows/s':>10}{'load tx':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"

    def line(label: str, r: dict, control: str = "") -> str:
        rate = f"{r['rows_per_s']}" if "rows_per_s" in r else "-"
        return (f"{label:<14}{r['duration_s']:>12}{rate:>10}{r['transactions']:>9}{r['p50_ms']:>9}{r['p99_ms']:>9}"
                f"{r['max_ms']:>9}{control:>17}")

    if opts.repeat > 1:
        print(f"{'round, run':<14}{columns}{'p99 just before':>17}")
        for number, runs in enumerate(results["rounds"], 1):
            for name in ("raw", "module"):
                print(line(f"{number} {name}", runs[name], str(runs[name]["control_p99_ms"])))
        print("all rounds:")
    print(f"{'run':<14}{columns}")
    for name in ("baseline", "raw", "module"):
        print(line(name, results[name]))
    ratios = results["ratios"]
    for number, runs in enumerate(results["rounds"], 1):
        mod = runs["module"]
        print(f"module (round {number}): {mod['batches']} batches, longest {mod['max_batch_ms']} ms, mean "
              f"{mod['avg_batch_ms']} ms, {mod['retries']} retried, archive {mod['csv_bytes']} bytes "
              f"(raw gzip -6: {runs['raw']['csv_bytes']})")
    print(f"p99 during the module's trim / baseline: {ratios['module_p99_vs_baseline']}x (target <= 2; "
          f"raw: {ratios['raw_p99_vs_baseline']}x)")
    print(f"module throughput / raw single transaction: {ratios['module_throughput_vs_raw']} (target >= 0.5)")

if __name__ == "__main__":
    main()
