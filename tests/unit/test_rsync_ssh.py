"""rsync between App servers (module_utils/rsync_ssh.py): reading rsync's output, building its ssh
transport and known_hosts, explaining its failures, and running it on real folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import rsync_ssh
from ansible_collections.fpt.sec.plugins.module_utils.rsync_ssh import (
    ADD_ONLY_OPTIONS,
    OUT_FORMAT,
    RsyncError,
    check_host_keys,
    explain_failure,
    known_hosts_pattern,
    parse_item,
    parse_stats,
    remote_spec,
    run_rsync,
    ssh_transport,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILQROuEYHQ9wNIjDODGmOsC9YL/YdU/AA8C12Wc6c8Hl"

STATS = """
Number of files: 1,234 (reg: 1,200, dir: 34)
Number of created files: 10 (reg: 8, dir: 2)
Number of deleted files: 0
Number of regular files transferred: 8
Total file size: 1,234,567 bytes
Total transferred file size: 12345 bytes
Literal data: 12,345 bytes
Total bytes sent: 286
Total bytes received: 13,063
"""


def test_items_give_what_was_written_with_exact_names() -> None:
    assert parse_item(b">f+++++++++|4096|files/0000/0222/8524/a.jpg\n") == (">", "f", 4096,
                                                                            b"files/0000/0222/8524/a.jpg")
    assert parse_item(b"cd+++++++++|4096|files/0000/\n") == ("c", "d", 4096, b"files/0000/")
    # rsync escapes control characters as \#ooo; the name comes back exact, separators in it included.
    assert parse_item(b">f+++++++++|3|odd\\#012name|x.jpg\n") == (">", "f", 3, b"odd\nname|x.jpg")
    assert parse_item(b"Number of files: 3 (reg: 2, dir: 1)\n") is None
    assert parse_item(b"\n") is None


def test_stats_are_read_with_or_without_separators() -> None:
    stats = parse_stats(STATS)
    assert stats["files"] == 1234
    assert stats["files_by_type"] == {"reg": 1200, "dir": 34}
    assert stats["transferred_files"] == 8
    assert stats["total_size"] == 1234567
    assert stats["transferred_size"] == 12345
    assert stats["bytes_received"] == 13063
    assert parse_stats("nothing here") == {}


def test_host_keys_are_only_keys() -> None:
    assert check_host_keys([KEY, f"[127.0.0.1]:2222 {KEY} comment", KEY]) == [KEY]
    for bad in ("ssh-ed25519", "command=\"rm -rf /\" ssh-ed25519 AAAA", "@revoked * ssh-rsa AAAA", "not a key"):
        with pytest.raises(RsyncError):
            check_host_keys([bad])


def test_known_hosts_names_the_host_as_ssh_does(tmp_path: Path) -> None:
    assert known_hosts_pattern("app1.example.com", 22) == "app1.example.com"
    assert known_hosts_pattern("10.0.0.5", 2222) == "[10.0.0.5]:2222"
    assert known_hosts_pattern("[::1]", 2222) == "[::1]:2222"
    path = rsync_ssh.write_known_hosts(str(tmp_path), "10.0.0.5", 2222, [KEY])
    assert Path(path).read_text() == f"[10.0.0.5]:2222 {KEY}\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_ssh_transport_never_prompts_and_checks_the_host_key() -> None:
    line = ssh_transport(2222, "/tmp/private dir/known_hosts", None)
    assert line.startswith("ssh -p 2222 ")
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes", "ForwardAgent=no", "ControlPath=none"):
        assert option in line
    # rsync splits -e on spaces and honours quotes: a path with a space is one argument.
    assert "'UserKnownHostsFile=/tmp/private dir/known_hosts'" in line
    assert "-i /k/id -o IdentitiesOnly=yes" in ssh_transport(22, None, "/k/id")
    with pytest.raises(RsyncError):
        ssh_transport(22, None, "/k/it's")


def test_remote_spec() -> None:
    assert remote_spec("shotgun", "app1", "/var/rails/x/media/") == "shotgun@app1:/var/rails/x/media/"
    assert remote_spec(None, "::1", "/m/") == "[::1]:/m/"


def test_failures_are_explained() -> None:
    auth = explain_failure(255, "root@app1: Permission denied (publickey).\nrsync: connection closed", "app1:22")
    assert "cannot log in to app1:22" in auth and "agent" in auth
    assert "host key of app1:22" in explain_failure(255, "Host key verification failed.\n", "app1:22")
    assert "cannot reach" in explain_failure(255, "ssh: connect to host app1 port 22: Connection refused", "app1:22")
    assert explain_failure(1, "", "x").startswith("rsync failed (exit 1)")


def test_the_add_only_options_never_delete_or_overwrite() -> None:
    joined = " ".join(ADD_ONLY_OPTIONS)
    assert "--ignore-existing" in joined
    assert "--delete" not in joined and "--remove-source-files" not in joined
    # No -p/-o/-g: an existing folder's mode and owner are never changed.
    assert not {"--perms", "--owner", "--group", "-a", "--archive"} & set(ADD_ONLY_OPTIONS)


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")
def test_a_local_run_copies_only_what_is_missing(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    (source / "files/0001").mkdir(parents=True)
    (source / "files/0001/new.jpg").write_bytes(b"n" * 100)
    (source / "files/0001/same.jpg").write_bytes(b"source version")
    (target / "files/0001").mkdir(parents=True)
    (target / "files/0001/same.jpg").write_bytes(b"target version, different")
    (target / "extra.jpg").write_bytes(b"only on the target")
    argv = [shutil.which("rsync"), *ADD_ONLY_OPTIONS, OUT_FORMAT, f"{source}/", f"{target}/"]
    seen: list[tuple[str, bytes]] = []
    run = run_rsync(argv, on_item=lambda kind, name: seen.append((kind, name)))
    assert run.rc == 0
    assert run.file_count == 1 and run.bytes == 100
    assert run.files == [("files/0001/new.jpg", 100)]
    assert seen == [("f", b"files/0001/new.jpg")]
    assert run.stats["files_by_type"]["reg"] == 2
    assert (target / "files/0001/same.jpg").read_bytes() == b"target version, different"
    assert (target / "extra.jpg").read_bytes() == b"only on the target"
    again = run_rsync(argv)
    assert again.rc == 0 and again.file_count == 0 and again.dir_count == 0


def test_an_address_or_user_that_ssh_would_read_as_an_option_is_refused() -> None:
    for host in ("app1", "10.0.0.5", "::1", "[fe80::1]", "app-1.teststudio.com"):
        rsync_ssh.check_endpoint(host, "shotgun", 22)
    for host, user, port in (("-oProxyCommand=touch /tmp/x", None, 22), ("app1", "-l", 22), ("a b", None, 22),
                             ("app1", None, 0)):
        with pytest.raises(RsyncError):
            rsync_ssh.check_endpoint(host, user, port)
