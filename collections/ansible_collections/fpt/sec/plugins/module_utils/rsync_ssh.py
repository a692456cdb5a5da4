# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rsync between App servers: the one place where sec builds an rsync command, its ssh transport and
reads what rsync did.

The module runs on the receiving App server and pulls from the sending one (``rsync user@source:dir/
dir/``), so that data goes host to host, never through the controller. It logs in to the source with:

* the SSH agent that the controller forwarded into the module's session (``ForwardAgent``; ``sec`` loads
  only the source host's key into a private agent for the operation, AWX forwards its own agent), or
* ``ssh_key``, a key file already on the receiving host, when an administrator set one up between App
  servers.

The source's host key is checked, never accepted blindly: with ``host_keys`` (the public keys the
controller already trusts for the source, as ``<type> <base64>``) a private known_hosts file is written
for this one command; without them the receiving user's own known_hosts decides.

Itemized output (``--out-format``) tells which files were created and their sizes; ``--stats`` gives the
totals of the run. Nothing here deletes anything: the commands built never carry ``--delete`` or
``--remove-source-files``.

Pure standard library, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time

__all__ = [
    "ADD_ONLY_OPTIONS",
    "BACKUP_COPY_OPTIONS",
    "RSYNC_SOURCE_ARGUMENT_SPEC",
    "OUT_FORMAT",
    "RsyncError",
    "RsyncRun",
    "check_endpoint",
    "check_host_keys",
    "display_name",
    "explain_failure",
    "find_rsync",
    "known_hosts_pattern",
    "parse_item",
    "parse_stats",
    "remote_spec",
    "run_rsync",
    "ssh_transport",
    "write_known_hosts",
]

# The options of doc fragment fpt.sec.rsync_source: how the receiving host reaches the source over SSH.
RSYNC_SOURCE_ARGUMENT_SPEC = {
    "source_host": {"type": "str"},
    "source_port": {"type": "int", "default": 22},
    "source_user": {"type": "str"},
    "host_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "ssh_key": {"type": "path", "no_log": False},
    "connect_timeout": {"type": "int", "default": 15},
}

# Add-only, as the vendor's media sync: recurse, keep modification times, create what is missing and skip
# every name that exists on the receiver (even when it differs). Permissions and owners are not
# preserved on purpose: without -p/-o/-g rsync never changes an existing directory's mode or owner, and
# new files get the source's mode through the receiver's umask. --omit-dir-times leaves the times of
# existing folders alone. --keep-dirlinks follows a symlinked folder on the receiver (media on another
# volume) instead of replacing it. Symbolic links and special files are not copied (no -l, -D).
ADD_ONLY_OPTIONS = ["--recursive", "--times", "--omit-dir-times", "--ignore-existing", "--keep-dirlinks",
                    "--protect-args", "--no-human-readable", "--8-bit-output", "--stats"]
# A backup folder copied whole into a fresh temporary folder (its files are checked against the manifest after).
# Pins (.sec-pinned, .sec-reader-PID) belong to the place that holds them: a copy starts unpinned.
BACKUP_COPY_OPTIONS = ["--recursive", "--times", "--protect-args", "--no-human-readable", "--8-bit-output", "--stats",
                       "--exclude=/.sec-*"]
# One line per item: the change summary, the size, the name (last: a name may contain the separator).
OUT_FORMAT = "--out-format=%i|%l|%n"
# What rsync prints (without --links) for a source entry it does not copy: a symbolic link, a device...
_SKIPPING = b"skipping non-regular file "
_ITEM_RE = re.compile(rb"^(?P<flags>[<>ch.*][fdLDS][^|]*)\|(?P<size>-?\d+)\|(?P<name>.*)$")
# rsync always escapes control characters in names as \#ooo (--8-bit-output leaves the other bytes alone).
_ESCAPE_RE = re.compile(rb"\\#([0-7]{3})")
# An address or user that ssh could read as an option ("-oProxyCommand=...") must never reach it.
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9_][A-Za-z0-9_.-]*)$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
_KEY_RE = re.compile(r"^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}$")
_STAT_PATTERNS = {
    "files": r"^Number of files: ([\d,.']+)",
    "created": r"^Number of created files: ([\d,.']+)",
    "transferred_files": r"^Number of regular files transferred: ([\d,.']+)",
    "total_size": r"^Total file size: ([\d,.']+) bytes",
    "transferred_size": r"^Total transferred file size: ([\d,.']+) bytes",
    "bytes_sent": r"^Total bytes sent: ([\d,.']+)",
    "bytes_received": r"^Total bytes received: ([\d,.']+)",
}
_SUBCOUNT_RE = re.compile(r"(reg|dir|link|dev|special): ([\d,.']+)")
# rsync exit statuses that mean "ran, but some names could not be handled" rather than "did not run".
PARTIAL_CODES = (23, 24)


class RsyncError(Exception):
    """rsync could not run or failed. ``str()`` is one line that says what to do."""


class RsyncRun:
    """What one rsync run did: the created files (name, size), created folders, the totals, its errors."""

    def __init__(self) -> None:
        self.rc: int | None = None
        self.files: list[tuple[str, int]] = []  # the first list_limit created files
        self.dirs: list[str] = []  # the first list_limit created folders
        self.file_count = 0
        self.dir_count = 0
        self.bytes = 0
        self.stats: dict = {}
        self.errors: list[str] = []
        self.skipped: list[str] = []  # source names rsync passed over: symbolic links, special files
        self.stderr = ""
        self.duration = 0.0
        self.argv: list[str] = []

    @property
    def partial(self) -> bool:
        return self.rc in PARTIAL_CODES


# -- the command -------------------------------------------------------------------------------------------
def find_rsync() -> str:
    found = shutil.which("rsync")
    if not found:
        raise RsyncError("rsync is not installed on this App server: install the rsync package (on both App "
                         "servers when they are different hosts)")
    return found


def known_hosts_pattern(host: str, port: int) -> str:
    """How ssh names ``host:port`` in known_hosts (a bare name for port 22, else ``[host]:port``)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bare if int(port) == 22 else f"[{bare}]:{int(port)}"


def check_host_keys(keys: list[str] | None) -> list[str]:
    """The public host keys as ``<type> <base64>``, from that form or from a whole known_hosts line (its
    host field is dropped). Anything else (a marker, an option) is refused, so that nothing but a key
    reaches the known_hosts file."""
    clean: list[str] = []
    for key in keys or []:
        parts = str(key).split()
        text = " ".join(parts[:2])
        if not _KEY_RE.match(text) and len(parts) >= 3:
            text = " ".join(parts[1:3])
        if not _KEY_RE.match(text):
            raise RsyncError(f"host key {str(key)[:40]!r} is not '<type> <base64>' as in a .pub file")
        if text not in clean:
            clean.append(text)
    return clean


def write_known_hosts(folder: str, host: str, port: int, keys: list[str]) -> str:
    """A private known_hosts file (0600) in ``folder`` that trusts exactly ``keys`` for ``host:port``."""
    path = os.path.join(folder, "known_hosts")
    pattern = known_hosts_pattern(host, port)
    with open(path, "w", encoding="ascii") as handle:
        for key in check_host_keys(keys):
            handle.write(f"{pattern} {key}\n")
    os.chmod(path, 0o600)
    return path


def _rsync_quote(arg: str) -> str:
    """rsync splits -e on spaces and honours quotes (not backslashes): quote an argument with spaces."""
    if "'" in arg or '"' in arg:
        raise RsyncError(f"{arg!r}: a quote cannot be passed through rsync's -e option")
    return f"'{arg}'" if " " in arg or not arg else arg


def ssh_transport(port: int, known_hosts: str | None, ssh_key: str | None, connect_timeout: int = 15) -> str:
    """The ``-e`` value: ssh that never prompts, checks the host key strictly, and forwards nothing on."""
    argv = ["ssh", "-p", str(int(port)), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={int(connect_timeout)}", "-o", "ForwardAgent=no", "-o", "ForwardX11=no",
            "-o", "ClearAllForwardings=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
            # Media and compressed dumps do not compress further: spare the CPUs of both App servers.
            "-o", "Compression=no", "-o", "ServerAliveInterval=30", "-o", "LogLevel=ERROR"]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if ssh_key:
        argv += ["-i", ssh_key, "-o", "IdentitiesOnly=yes"]
    return " ".join(_rsync_quote(a) for a in argv)


def check_endpoint(host: str, user: str | None, port: int) -> None:
    """Refuse an address, user or port that is not one (ssh would take a leading '-' as an option)."""
    if not host or not _HOST_RE.match(host):
        raise RsyncError(f"source_host {host!r} is not a host name or an IP address")
    if user and not _USER_RE.match(user):
        raise RsyncError(f"source_user {user!r} is not a user name")
    if not 0 < int(port) < 65536:
        raise RsyncError(f"source_port {port} is not a TCP port")


def remote_spec(user: str | None, host: str, path: str) -> str:
    """``user@host:path``, an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{user}@{host}:{path}" if user else f"{host}:{path}"


# -- reading what rsync did ------------------------------------------------------------------------------------
def parse_item(line: bytes) -> tuple[str, str, int, bytes] | None:
    """(update type, file type, size, name as bytes) of one ``--out-format=%i|%l|%n`` line, or None for
    other output. Update type ``>`` (received) or ``c`` (created locally) means the item was written; with
    --ignore-existing that is always a new one. The name is the exact file name (escapes undone)."""
    match = _ITEM_RE.match(line.rstrip(b"\n"))
    if not match:
        return None
    flags = match.group("flags").decode("ascii", "replace")
    name = _ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 8)]), match.group("name"))
    return flags[0], flags[1], int(match.group("size")), name


def display_name(name: bytes) -> str:
    return name.decode("utf-8", "replace")


def _number(text: str) -> int:
    return int(re.sub(r"[,.']", "", text))


def parse_stats(text: str) -> dict:
    """The totals of ``--stats``: files, created, transferred_files, total_size, transferred_size,
    bytes_sent, bytes_received, plus files_by_type (reg, dir...). Missing lines are left out."""
    stats: dict = {}
    for line in text.splitlines():
        line = line.strip()
        for key, pattern in _STAT_PATTERNS.items():
            match = re.match(pattern, line)
            if match:
                stats[key] = _number(match.group(1))
                if key == "files":
                    stats["files_by_type"] = {k: _number(v) for k, v in _SUBCOUNT_RE.findall(line)}
    return stats


def explain_failure(rc: int | None, stderr: str, source: str) -> str:
    """One line saying why rsync failed and what to do, from its exit status and messages."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = " | ".join(lines[-3:]) if lines else f"exit status {rc}"
    if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return (f"the host key of {source} is not the one trusted (host_keys, or this user's known_hosts): "
                f"check that it is the right host, then refresh the trusted key ({text})")
    if "Permission denied" in stderr and ("publickey" in stderr or "password" in stderr):
        return (f"cannot log in to {source} over SSH from this App server: the forwarded SSH agent holds no "
                "key that the source accepts (sec loads the source host's key into it; under AWX or "
                "ansible-playbook, add the key to the agent that runs the job), or set ssh_key to a key "
                f"on this host ({text})")
    if "Connection refused" in stderr or "Connection timed out" in stderr or "No route to host" in stderr \
            or "Could not resolve hostname" in stderr:
        return f"cannot reach {source} over SSH from this App server ({text})"
    if "command not found" in stderr or (rc == 127):
        return f"rsync is missing on {source}: install the rsync package there ({text})"
    if rc == 20:
        return f"rsync was interrupted ({text})"
    if rc == 11 and "No space left" in stderr:
        return f"the receiving disk is full ({text})"
    return f"rsync failed (exit {rc}): {text}"


# -- running ------------------------------------------------------------------------------------------------
def run_rsync(argv: list[str], env: dict | None = None, list_limit: int = 1000, on_item=None) -> RsyncRun:
    """Run ``argv`` (an rsync command with OUT_FORMAT and --stats), reading its items as they come.

    ``on_item(kind, name)`` is called for every written item (kind ``f`` or ``d``, name as bytes, relative
    to the destination) while rsync runs."""
    run = RsyncRun()
    run.argv = list(argv)
    environment = dict(os.environ if env is None else env)
    # English messages, whatever the host's locale: explain_failure reads them.
    environment["LC_ALL"] = "C"
    started = time.monotonic()
    stats_lines: list[bytes] = []
    err_file = tempfile.TemporaryFile()
    try:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_file,
                                    env=environment)
        except OSError as exc:
            raise RsyncError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        try:
            for line in proc.stdout or ():
                item = parse_item(line)
                if item is None and line.startswith(_SKIPPING):
                    if len(run.skipped) < list_limit:
                        run.skipped.append(line[len(_SKIPPING):].strip().strip(b'"').decode("utf-8", "replace"))
                    continue
                if item is None:
                    stats_lines.append(line)
                    continue
                update, kind, size, name = item
                if update not in ">c":
                    continue  # attribute-only lines (".d..t...."): nothing was created
                if kind == "f":
                    run.bytes += max(size, 0)
                    if len(run.files) < list_limit:
                        run.files.append((display_name(name), size))
                    run.file_count += 1
                elif kind == "d":
                    if len(run.dirs) < list_limit:
                        run.dirs.append(display_name(name).rstrip("/"))
                    run.dir_count += 1
                if on_item is not None:
                    on_item(kind, name)
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        run.rc = proc.returncode
        err_file.seek(0)
        run.stderr = err_file.read().decode("utf-8", "replace")
    finally:
        err_file.close()
    run.duration = time.monotonic() - started
    run.stats = parse_stats(b"".join(stats_lines).decode("utf-8", "replace"))
    run.errors = [line.strip() for line in run.stderr.splitlines()
                  if line.strip() and not line.startswith("rsync error: some files")][:50]
    return run
