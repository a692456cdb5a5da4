"""One real sandbox for the integration session; tests that change a site put it back as they found it."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sec_wrapper.sandbox import Sandbox


def make_world_traversable_dir(prefix: str) -> Path:
    # As root, PostgreSQL and Apache run as other users; pytest's tmp folders are 0700.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def sec_home() -> Iterator[Path]:
    home = make_world_traversable_dir("sec-test-home-")
    old = os.environ.get("SEC_HOME")
    os.environ["SEC_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("SEC_HOME", None)
    else:
        os.environ["SEC_HOME"] = old
    subprocess.run(["rm", "-rf", str(home)], check=False)


@pytest.fixture(scope="session")
def sandbox(sec_home: Path) -> Iterator[dict]:
    box = Sandbox(sec_home / "sandbox")
    summary = box.up(events=20_000, media_files=40)
    summary["state"] = box.state()
    yield summary
    box.down()


def http_get(sandbox: dict, site: str, path: str = "/status", timeout: float = 5.0) -> tuple[int, str]:
    """GET through the real Apache vhost, with the site's Host header."""
    port = sandbox["state"]["apache"]["port"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": site})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def site_status(sandbox: dict, site: str) -> dict:
    code, body = http_get(sandbox, site)
    assert code == 200, body
    return json.loads(body)


def site_by_name(sandbox: dict, name: str) -> dict:
    return next(s for s in sandbox["sites"] if s["name"] == name)
