"""Runs `sec` commands for the console: the same CLI, in a child process, as the logged-in user.

The web layer holds no operation logic: an action becomes the argv of the CLI command that does it. A
long operation is started with a pre-claimed operation id (SEC_OPERATION_ID) and answered as soon as its
record exists; a command refused before it ran anything (bad input) is answered with the CLI's message.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sec_wrapper import history

# How long a launch waits for the operation's record before answering with its id anyway.
_RECORD_WAIT = 30.0
_POLL = 0.05
# The child's own stdout (its --json document) and stderr (progress, or its one-line error).
RESULT_FILE = "console-result.json"
ERRORS_FILE = "console-stderr.txt"
_children: set[asyncio.Task] = set()  # reapers of running children, kept so they are not collected


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def message(self) -> str:
        return cli_message(self.stderr)


@dataclass
class Launch:
    operation_id: str | None  # None: refused before anything ran
    message: str  # the CLI's one-line error when refused


def cli_message(stderr: str) -> str:
    """The CLI's one-line error: its `sec: ...` line, else argparse's `... error: ...`, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if ": error: " in line:  # argparse: "sec backup: error: ..."
            return line.split(": error: ", 1)[1]
        if line.startswith("sec: "):
            return line[len("sec: "):]
    return lines[-1] if lines else "the command failed"


def _argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "sec_wrapper.cli", *args]


def _env(user: str, operation_id: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (history.OPERATION_ID_ENV, history.OPERATION_USER_ENV)}
    env[history.OPERATION_USER_ENV] = user
    if operation_id:
        env[history.OPERATION_ID_ENV] = operation_id
    return env


async def run_cli(args: list[str], user: str) -> CliResult:
    """Runs a short command (a store change, a listing) to its end."""
    proc = await asyncio.create_subprocess_exec(*_argv(args), stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=_env(user))
    out, err = await proc.communicate()
    return CliResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


async def launch_operation(args: list[str], user: str) -> Launch:
    """Starts an operation and returns its id once recorded, or the CLI's message if it was refused."""
    op_id = history.new_operation_id()
    folder = history.operation_dir(op_id)
    try:
        with open(folder / RESULT_FILE, "wb") as out, open(folder / ERRORS_FILE, "wb") as err:
            # Its own session: the operation goes on when the console stops, as a CLI run in a shell would.
            proc = await asyncio.create_subprocess_exec(*_argv(args), stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                        stderr=err, env=_env(user, op_id), start_new_session=True)
    except OSError as exc:  # e.g. an argument past the kernel's limit: nothing ran, leave no empty operation
        shutil.rmtree(folder, ignore_errors=True)
        return Launch(None, f"the operation could not start: {exc.strerror or exc}")
    reaper = asyncio.create_task(proc.wait())
    _children.add(reaper)
    reaper.add_done_callback(_children.discard)
    record = folder / history.RECORD
    deadline = time.monotonic() + _RECORD_WAIT
    while not record.exists() and proc.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(_POLL)
    if record.exists() or proc.returncode is None:
        return Launch(op_id, "")
    if proc.returncode == 0:  # a command that needed no playbook run (e.g. an upgrade plan)
        return Launch(op_id, "")
    message = cli_message(_read(folder / ERRORS_FILE))
    shutil.rmtree(folder, ignore_errors=True)  # nothing ran: leave no empty operation behind
    return Launch(None, message)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
