"""One real sandbox for the integration session; tests that change a site put it back as they found it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

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


def sandbox_inventory(sandbox: dict, path: Path) -> Path:
    """A static inventory of the sandbox's App server with the same shape discovery produces: groups by
    role, production/staging, one group per site, and `sec_sites` keyed by reverse name."""
    app = sandbox["app_server"]
    sec_sites = {
        s["reverse_name"]: {"name": s["name"], "reverse_name": s["reverse_name"], "site_dir": s["site_dir"],
                            "role": s["role"], "version": s["version"], "health_url": s["url"] + "status",
                            "media_dir": s["site_dir"] + "/media"}
        for s in sandbox["sites"]
    }
    host = {
        "ansible_host": app["address"], "ansible_port": app["port"], "ansible_user": app["user"],
        "ansible_ssh_private_key_file": app["key"],
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={app['known_hosts']} -o StrictHostKeyChecking=yes",
        "ansible_interpreter_python_fallback": ["/usr/bin/python3", "python3"],
        "sec_sites": sec_sites,
    }
    children = {"app_servers": {"hosts": {"app1": None}}, "db_servers": {"hosts": {"app1": None}}}
    for site in sandbox["sites"]:
        children[site["reverse_name"]] = {"hosts": {"app1": None}}
        children.setdefault(site["role"], {"hosts": {}})["hosts"]["app1"] = None
    inventory = {"all": {"hosts": {"app1": host}, "children": children}}
    path.write_text(json.dumps(inventory, indent=2))
    return path


ROOT = Path(__file__).resolve().parents[2]


def ansible_env() -> dict[str, str]:
    """The environment the tests run ansible and ansible-playbook in: the project's config, no colours."""
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1"}


def run_playbook(playbook: str, inventory: Path, extravars: dict | None = None, *options: str,
                 timeout: float = 600) -> subprocess.CompletedProcess:
    """ansible-playbook as AWX runs it: no TTY, stdin closed, variables from a JSON file; `options` are
    more command-line options (--check, --diff)."""
    argv = ["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / playbook), *options]
    if extravars is not None:
        vars_file = inventory.with_name(f"vars-{os.getpid()}-{time.monotonic_ns()}.json")
        vars_file.write_text(json.dumps(extravars))
        argv += ["-e", f"@{vars_file}"]
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=ansible_env(),
                          timeout=timeout, cwd=ROOT)


class ModuleRun(NamedTuple):
    result: dict  # the module's result as Ansible printed it, with `failed` always set
    output: str  # the run's whole stdout + stderr (warnings included)


def run_module(inventory: Path, module: str, args: dict, check: bool = False, timeout: float = 600) -> ModuleRun:
    """One module of the collection (`fpt.sec.<module>`) on the App server, ad hoc through SSH as a playbook
    task would run it. `result["failed"]` comes from the status word (the printed result does not always
    carry it): true unless the host reported SUCCESS or CHANGED."""
    argv = ["ansible", "app1", "-i", str(inventory), "-m", f"fpt.sec.{module}", "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    env = {**ansible_env(), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
                          timeout=timeout)
    output = done.stdout + done.stderr
    # "app1 | CHANGED => {...}": the result is the JSON document after the arrow.
    status = re.search(r"^app1 \| (\w+)!? => ", done.stdout, re.MULTILINE)
    assert status, output
    result, _ = json.JSONDecoder().raw_decode(done.stdout[status.end():])
    result["failed"] = status.group(1) not in ("SUCCESS", "CHANGED")
    return ModuleRun(result, output)


@pytest.fixture
def inventory(sandbox: dict, tmp_path: Path) -> Path:
    """A discovery-shaped static inventory of the sandbox, in this test's own folder."""
    return sandbox_inventory(sandbox, tmp_path / "inventory.json")


def sec(*args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    """Runs the real `sec` command (SEC_HOME comes from the session fixture's environment, or from `env`)."""
    result = subprocess.run(["sec", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"sec {' '.join(args)} failed ({result.returncode}): {result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def cluster(sandbox: dict) -> str:
    """A cluster named `sandbox`, created from the sandbox's App server by discovery."""
    app = sandbox["app_server"]
    sec("cluster", "create", "sandbox", "--app-server", app["address"], "--port", str(app["port"]),
        "--user", app["user"], "--key", app["key"])
    return "sandbox"


class Console(NamedTuple):
    url: str  # http://127.0.0.1:PORT/
    user: str
    password: str
    token: str
    log: Path  # the server's stdout and stderr


@pytest.fixture(scope="session")
def console(sec_home: Path) -> Iterator[Console]:
    """One `sec serve` on a free loopback port for the session, with an account and its API token."""
    password = "web-test-" + os.urandom(8).hex()
    subprocess.run(["sec", "user", "add", "alice"], input=password + "\n", text=True, check=True,
                   capture_output=True)
    token = sec("user", "token", "alice").stdout.strip()
    log = sec_home / "console.log"
    with open(log, "wb") as out:
        # --refresh 0: the sites' state is read when a page finds none or an older one (and after each console
        # operation), not every minute: the suite shares two cores with everything the sandbox runs. No
        # scheduler: the schedule tests start a console of their own for it.
        server = subprocess.Popen(["sec", "serve", "--port", "0", "--refresh", "0", "--schedule-every", "0"],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"sec console: (http://\S+)", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Console(match.group(1), "alice", password, token, log)
    finally:
        server.terminate()
        server.wait(timeout=15)


def plain_inventory(value):
    """ansible-inventory marks some strings as unsafe ({'__ansible_unsafe': s}); compare plain values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain_inventory(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_inventory(v) for v in value]
    return value


# -- killing a sec run the hard way, as an administrator's kill -9 would -----------------------------------------
def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """pid and every process below it, parents first."""
    return [pid] + [p for child in child_pids(pid) for p in process_tree(child)]


def kill_tree(pid: int) -> None:
    """SIGKILL pid and every process below it (sec, ansible-playbook, its workers, ssh)."""
    for each in process_tree(pid):
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_sec_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float, what: str,
                  poll: float = 0.1) -> None:
    """Waits until `ready()` while `sec` (started in a session of its own) runs, then SIGKILLs it and every
    process below it by pid, as a fault would; `process` never outlives this call. `what`: the moment awaited."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, f"sec ended before {what}"
            assert time.monotonic() < deadline, f"{what} never came"
            time.sleep(poll)
        kill_tree(process.pid)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def process_alive(pid: int) -> bool:
    """Running, and not a zombie (this VM's init does not reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
