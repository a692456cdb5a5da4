"""Runs discovery on an App server over plain SSH, for the inventory plugin.

An inventory plugin cannot run a module, so it sends this collection's own module_utils to the host as
an in-memory zip and calls the same `discover_sites()` that the `site_facts` module calls: one code path,
one parser. Only the key's path goes on the ssh command line, never a secret.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import subprocess
import zipfile

MODULE_UTILS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
PACKAGE_PREFIX = "ansible_collections/fpt/sec/plugins/module_utils"

BOOTSTRAP = """
import base64, json, os, sys, tempfile
fd, path = tempfile.mkstemp(suffix=".zip")
try:
    os.write(fd, base64.b64decode(%(blob)r))
    os.close(fd)
    sys.path.insert(0, path)
    from ansible_collections.fpt.sec.plugins.module_utils.discovery import discover_sites
    try:
        result = discover_sites(apache_config=%(apache_config)r, apache_env=%(apache_env)r,
                                apache_defines=%(apache_defines)r)
        result["python"] = sys.executable
        print(json.dumps({"ok": True, "result": result}))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
finally:
    os.unlink(path)
"""


class RemoteDiscoveryError(Exception):
    """The host could not be reached or discovery failed there; the message is one line."""


def module_utils_zip() -> bytes:
    """The collection's module_utils as an importable zip (package folders with empty __init__)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        parts = PACKAGE_PREFIX.split("/")
        for depth in range(1, len(parts) + 1):
            archive.writestr("/".join(parts[:depth]) + "/__init__.py", "")
        for name in sorted(os.listdir(MODULE_UTILS_DIR)):
            if name.endswith(".py") and name != "__init__.py":
                archive.write(os.path.join(MODULE_UTILS_DIR, name), f"{PACKAGE_PREFIX}/{name}")
    return buf.getvalue()


def ssh_command(address: str, port: int | None = None, user: str | None = None,
                private_key_file: str | None = None, known_hosts_file: str | None = None,
                host_key_checking: str = "accept-new", connect_timeout: int = 10,
                extra_args: str | None = None) -> list[str]:
    argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", f"StrictHostKeyChecking={host_key_checking}"]
    if port:
        argv += ["-p", str(port)]
    if private_key_file:
        argv += ["-i", private_key_file, "-o", "IdentitiesOnly=yes"]
    if known_hosts_file:
        argv += ["-o", f"UserKnownHostsFile={known_hosts_file}"]
    if extra_args:
        argv += shlex.split(extra_args)
    argv.append(f"{user}@{address}" if user else address)
    # Like the vendor's console: a login environment, so PATH has the sbin folders where httpd lives.
    # The distribution's Python first, for the reason PYTHON_FALLBACK gives in cluster_inventory.
    argv.append("/bin/sh -c '. /etc/profile >/dev/null 2>&1; "
                "for p in /usr/bin/python3 /usr/libexec/platform-python python3; do "
                "command -v $p >/dev/null && exec $p -; done; echo no python3 >&2; exit 127'")
    return argv


def discover_remote(address: str, apache_config: str | None = None, timeout: int = 120,
                    apache_env: dict[str, str] | None = None, apache_defines: list[str] | None = None,
                    **ssh) -> dict:
    """Discovery on one App server: {"apache": [...], "sites": [...], "skipped_sites": [...]}, or
    RemoteDiscoveryError. ``apache_env``/``apache_defines`` travel in the script on stdin, never in argv."""
    script = BOOTSTRAP % {"blob": base64.b64encode(module_utils_zip()).decode(), "apache_config": apache_config,
                          "apache_env": {str(k): str(v) for k, v in (apache_env or {}).items()},
                          "apache_defines": [str(d) for d in apache_defines or []]}
    try:
        proc = subprocess.run(ssh_command(address, **ssh), input=script.encode(), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RemoteDiscoveryError(f"{address}: discovery timed out after {timeout}s") from exc
    except OSError as exc:
        raise RemoteDiscoveryError(f"cannot run ssh: {exc}") from exc
    stderr = proc.stderr.decode(errors="replace").strip()
    if proc.returncode == 255:
        last = stderr.splitlines()[-1] if stderr else "ssh failed"
        raise RemoteDiscoveryError(f"{address} unreachable over SSH: {last}")
    lines = [line for line in proc.stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if not lines:
        detail = stderr.splitlines()[-1] if stderr else "no output (is python3 installed there?)"
        raise RemoteDiscoveryError(f"{address}: discovery failed: {detail}")
    answer = json.loads(lines[-1])
    if not answer.get("ok"):
        raise RemoteDiscoveryError("{}: {}".format(address, answer.get("error")))
    return answer["result"]
