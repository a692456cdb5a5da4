# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running one migration with psql under watch, for fpt.sec.db_migrate.

A migration is run by psql in its own transaction. While it runs, the module checks that it should go on:
that the controller which started it still reads its result, and that the site lock still belongs to the
operation. A dead upgrade's migration must not keep running (or start the next one) while another operation
rolls the site back.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import re
import select
import signal
import subprocess

from ansible_collections.fpt.sec.plugins.module_utils import site_lock

POLL_SECONDS = 0.25
CANCEL_GRACE = 10.0


class Stopped(Exception):
    """The run must stop: the controller is gone or the lock changed hands."""


def controller_gone() -> bool:
    """Whether nobody reads our result any more: the pipe to the controller's connection is closed.

    A module killed with its controller is not killed with it (ssh just closes the channel); its stdout
    then reports POLLERR. Writing nothing, this tells without spoiling the JSON result.
    """
    try:
        poller = select.poll()
        poller.register(1, select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError, AttributeError):
        return False
    return any(mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _fd, mask in events)


def why_stop(site_dir: str, operation_id: str | None) -> str | None:
    """Why the migrations must stop now, or None to go on."""
    if controller_gone():
        return "the controller that started this run is gone (killed?)"
    if operation_id:
        try:
            holder = site_lock.read_lock(site_lock.lock_path(site_dir))
        except site_lock.LockError as exc:
            return f"the site lock cannot be read ({exc})"
        if holder is None or holder.get("operation_id") != operation_id:
            other = holder.get("operation_id") if holder else None
            return (f"the site lock is no longer held by operation {operation_id}"
                    + (f" but by {other}" if other else ""))
    return None


def run_watched(argv: list[str], env: dict, site_dir: str, operation_id: str | None) -> tuple[int, str, str]:
    """Run psql, checking every POLL_SECONDS that we should go on; cancel it (SIGINT makes psql send the
    server a cancel request, so the transaction rolls back at once) when we should not."""
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    reason = None
    while True:
        try:
            out, err = process.communicate(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        reason = reason or why_stop(site_dir, operation_id)
        if reason:
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=CANCEL_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            raise Stopped(f"{reason}: the running migration was cancelled")
    return process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


_PSQL_PREFIX = re.compile(r"^psql:(?P<file>[^:]*):(?P<line>[0-9]+): ")


def error_lines(stderr: str, rc: int) -> str:
    """The server's error in one short line: psql's "psql:<file>:<line>: " prefix becomes "line N: "."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and ("ERROR" in line or "FATAL" in line or "error" in line)]
    if not lines:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()][-2:]
    lines = [_PSQL_PREFIX.sub(lambda m: f"line {m.group('line')}: ", line) for line in lines[:3]]
    return " ".join(" | ".join(lines).split()) or f"psql exit status {rc}"
