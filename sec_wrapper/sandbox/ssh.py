"""The sandbox App server's sshd: loopback only, one generated key, no passwords."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

from sec_wrapper.sandbox.processes import free_port, start_daemon, system_tool, wait_for_port


def find_sshd() -> str:
    return system_tool(("sshd",), "openssh-server")


def setup(folder: Path, apache_config: Path | None, address: str = "127.0.0.1") -> dict:
    """Generates host and client keys and sshd_config under folder; returns what start() needs."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    host_key = folder / "ssh_host_ed25519_key"
    client_key = folder / "id_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sec-sandbox", "-f", str(key)],
                       check=True, stdin=subprocess.DEVNULL)
    (folder / "authorized_keys").write_text((folder / "id_ed25519.pub").read_text())
    os.chmod(folder / "authorized_keys", 0o600)
    port = free_port()
    user = getpass.getuser()
    config = folder / "sshd_config"
    pinned = f"SEC_APACHE_CONFIG={apache_config} " if apache_config else ""
    config.write_text(
        f"""# sec sandbox: only the generated key of this sandbox may log in.
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {folder / 'sshd.pid'}
AuthorizedKeysFile {folder / 'authorized_keys'}
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
# A host running several Apache instances can pin one for discovery; the sandbox pins its own.
# SHLVL=1: Debian's bash runs ~/.bashrc for every command ssh starts unless it is a nested shell. The
# sandbox's login is this machine's own user, whose .bashrc may be a workstation's (here: pyenv init, about
# 0.1 s per command and its shims first on PATH); an App server's service login has none, so neither has
# the sandbox's. Commands get the plain system PATH, as on a server.
SetEnv {pinned}SHLVL=1
Subsystem sftp internal-sftp
LogLevel ERROR
"""
    )
    host_pub = (folder / "ssh_host_ed25519_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[{address}]:{port} {host_pub[0]} {host_pub[1]}\n")
    return {"port": port, "address": address, "user": user,
            "key": str(client_key), "known_hosts": str(folder / "known_hosts"),
            "config": str(config)}


def start(folder: Path, info: dict) -> int:
    sshd = find_sshd()
    if os.geteuid() == 0:
        # sshd as root insists on its privilege-separation folder.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    pid = start_daemon([sshd, "-D", "-e", "-f", info["config"]], log)
    wait_for_port(info["port"], pid=pid, log=log, address=info.get("address", "127.0.0.1"))
    return pid
