"""Starting and stopping the sandbox's own processes, always by recorded pid (never by name)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive

SYSTEM_BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def system_tool(names: Sequence[str], package: str) -> str:
    """The first of `names` on PATH, else in the system's sbin/bin folders (an installed `sec` may run with a
    minimal PATH that lacks /usr/sbin); else RuntimeError naming the package that brings it."""
    for name in names:
        for candidate in (shutil.which(name), *(os.path.join(d, name) for d in SYSTEM_BIN_DIRS)):
            if candidate and os.access(candidate, os.X_OK):
                return candidate
    raise RuntimeError(f"{names[0]} not found on PATH nor in /usr/sbin or /sbin: install the {package} package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, pid: int | None = None, log: Path | None = None,
                  address: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            raise RuntimeError(f"process {pid} exited before listening on port {port}{_tail(log)}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout:.0f}s{_tail(log)}")


def start_daemon(argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> int:
    """Starts a long-running process detached from our session; its output goes to `log`."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=cwd, close_fds=True)
    return proc.pid


def alive(pid: int) -> bool:
    if pid_alive(pid):
        return True
    # Gone, or a zombie: reap it if it is a child of ours.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return False


def descendants(pid: int) -> list[int]:
    """All live descendants of pid, read from /proc (sshd's session children, Apache's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def stop(pid: int, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signals pid and its descendants, then waits; escalates to SIGKILL after `timeout`."""
    if not alive(pid):
        return
    tree = [pid, *descendants(pid)]
    for target in tree:
        _signal(target, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.05)
    for target in tree:
        if alive(target):
            _signal(target, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _tail(log: Path | None, lines: int = 5) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    return (": " + " | ".join(text)) if text else ""
