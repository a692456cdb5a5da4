"""pid_alive: a running process is alive, an exited one is not, and neither is a zombie (exited, not reaped)."""

from __future__ import annotations

import os
import subprocess
import time

from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive


def test_this_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        # Not waited for: once it exits it stays a zombie of ours, and kill(pid, 0) still succeeds on it.
        while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(child.pid, 0)
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert not pid_alive(child.pid)
