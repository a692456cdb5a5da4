"""Every playbook run as AWX runs it, against the sandbox.

AWX runs a job as `ansible-playbook -i <inventory> <playbook> -e @<credential extra vars> -e @<extra vars>`
in the project folder, with no TTY and stdin closed, the credential type's env injected and its files
written 0600 into a private folder that exists only for that run, and the collections path pointed at what
the project sync installed from collections/requirements.yml. tests/awx_emulation.py renders the
definitions in awx/ exactly so; here they drive real runs:
- the inventory source (sec.apache_sites.yml) as an AWX inventory update, and a job on the synced result;
- each playbook's good runs (least invasive real inputs, on the staging site, which is put back);
- each bad input, through the survey as AWX would pass it: refused by the playbook's first play, on
  localhost, before any App server, with the message a survey user needs;
- each optional text answer left blank, as "" or null (AWX versions send one or the other).

Adding a playbook is a row in CASES (and a job template in awx/job_templates/, which the unit tests ask for).
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.awx_emulation import (
    INVENTORY_SOURCE,
    ROOT,
    inject_credential,
    job_templates_by_playbook,
    launch_extra_vars,
    load_credential_type,
    playbook_paths,
    survey_questions,
)
from tests.integration.conftest import http_get, sandbox_inventory, site_by_name, site_status

pytestmark = pytest.mark.integration

PROD = "prod.teststudio.com"
STAGING = "staging.teststudio.com"
BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
Answers = dict[str, Any]


# -- AWX, emulated -----------------------------------------------------------------------------------------------
@dataclass
class Job:
    argv: list[str]
    returncode: int
    output: str
    extra_vars: dict[str, Any]

    @property
    def plays(self) -> list[str]:
        return re.findall(r"^PLAY \[(.*)\] \*+$", self.output, re.M)

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for line in self.output.split("PLAY RECAP", 1)[-1].splitlines():
            match = re.match(r"^(\S+)\s+:\s+(.*)$", line)
            if match:
                counts[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
        return counts

    def explain(self) -> str:
        return f"$ {' '.join(self.argv)}\nextra vars: {json.dumps(self.extra_vars)}\n{self.output[-6000:]}"


class Awx:
    """One AWX, one organization: a credential of our type for the sandbox's App server, the project synced
    (its collections/requirements.yml installed), job ids counting up."""

    def __init__(self, sandbox: dict, workdir: Path) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.ctype = load_credential_type()
        app = sandbox["app_server"]
        self.inputs = {"app_server": app["address"], "port": str(app["port"]), "username": app["user"],
                       "ssh_key": Path(app["key"]).read_text(), "known_hosts": Path(app["known_hosts"]).read_text()}
        self.templates = job_templates_by_playbook()
        self.job_ids = itertools.count(1001)
        self.collections = workdir / "requirements_collections"
        # The project sync: AWX installs collections/requirements.yml from the project folder.
        sync = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-r",
                               "collections/requirements.yml"], cwd=ROOT, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300,
                              env={**self.base_env(), "ANSIBLE_COLLECTIONS_PATH": str(self.collections)})
        assert sync.returncode == 0, sync.stdout + sync.stderr

    def base_env(self) -> dict[str, str]:
        # Nothing of the developer's Ansible or SEC_* settings leaks in: AWX starts from a clean environment.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANSIBLE_", "SEC_")) and k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def run_env(self, injected: dict[str, str]) -> dict[str, str]:
        # AWX's own ANSIBLE_* settings for every run, then the collections path it builds for the project.
        return {**self.base_env(), **injected,
                "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
                "ANSIBLE_FORCE_COLOR": "True", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
                "ANSIBLE_COLLECTIONS_PATH": f"{self.collections}:~/.ansible/collections:/usr/share/ansible/collections",
                "PYTHONUNBUFFERED": "1"}

    def private_dir(self, name: str) -> Path:
        path = self.workdir / f"{name}-{next(self.job_ids)}"
        path.mkdir(mode=0o700)
        return path

    def inventory_update(self, inputs: dict | None = None) -> tuple[subprocess.CompletedProcess, Path]:
        """`ansible-inventory` as an AWX inventory update from a project source runs it."""
        private = self.private_dir("update")
        injection = inject_credential(self.ctype, inputs or self.inputs, private, job=False)
        argv = ["ansible-inventory", "-i", str(INVENTORY_SOURCE), "--playbook-dir", str(ROOT), "--list", "--export"]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              start_new_session=True, timeout=300, env=self.run_env(injection.env))
        return done, private

    def job(self, playbook: str, answers: Answers, *, inventory: Path | None = None, raw_vars: Answers | None = None,
            limit: str | None = None, credential_extra_vars: bool = True, timeout: float = 900) -> Job:
        """A job launch: the survey turns the answers into extra vars (refusing what AWX refuses), the
        credential is injected into a fresh private folder, ansible-playbook runs detached from any TTY."""
        template = self.templates[f"playbooks/{playbook}.yml"]
        job_id = next(self.job_ids)
        extra_vars = launch_extra_vars(template, answers, job_id=job_id)
        extra_vars.update(raw_vars or {})
        private = self.private_dir(f"job{job_id}")
        injection = inject_credential(self.ctype, self.inputs, private)
        vars_file = private / "env" / "extravars"
        vars_file.write_text(json.dumps(extra_vars))
        vars_file.chmod(0o600)
        argv = ["ansible-playbook", "-i", str(inventory or INVENTORY_SOURCE), str(ROOT / template["playbook"])]
        if credential_extra_vars:
            argv += ["-e", f"@{injection.extra_vars_file}"]
        argv += ["-e", f"@{vars_file}"]
        if limit:
            argv += ["--limit", limit]
        # Each AWX job runs in a fresh container: no SSH master connection of an earlier job is reused. (A
        # short folder: a socket path has ~100 characters at most, and playbooks may name their own sockets.)
        control_dir = tempfile.mkdtemp(prefix="awxcp", dir="/tmp")
        env = {**self.run_env(injection.env), "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir}
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL, start_new_session=True, timeout=timeout, env=env)
        shutil.rmtree(control_dir, ignore_errors=True)
        return Job(argv, done.returncode, ANSI.sub("", done.stdout), extra_vars)


@pytest.fixture(scope="module")
def awx(sandbox: dict, tmp_path_factory: pytest.TempPathFactory) -> Awx:
    return Awx(sandbox, tmp_path_factory.mktemp("awx"))


def plain(value: Any) -> Any:
    """ansible-inventory --export wraps some strings as {'__ansible_unsafe': s}; AWX stores plain values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# -- the inventory source ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_known_hosts", [True, False], ids=["known-hosts", "accept-new"])
def test_inventory_update_from_the_project_source(awx: Awx, sandbox: dict, with_known_hosts: bool) -> None:
    inputs = dict(awx.inputs, known_hosts=awx.inputs["known_hosts"] if with_known_hosts else "")
    done, private = awx.inventory_update(inputs)
    assert done.returncode == 0, done.stderr
    data = plain(json.loads(done.stdout))
    host = sandbox["app_server"]["address"]
    for group in ("app_servers", "db_servers", "production", "staging", "com_teststudio_prod",
                  "com_teststudio_staging", "role_app", "role_db"):
        assert host in data[group]["hosts"], group
    hostvars = data["_meta"]["hostvars"][host]
    assert hostvars["ansible_ssh_private_key_file"].startswith(str(private / "env"))
    assert set(hostvars["sec_sites"]) == {"com_teststudio_prod", "com_teststudio_staging"}
    assert "password" not in json.dumps(hostvars)
    checking = "yes" if with_known_hosts else "accept-new"
    assert f"StrictHostKeyChecking={checking}" in hostvars["ansible_ssh_common_args"]
    if not with_known_hosts:
        # The key met on first contact went into this run's own known_hosts file, not ~/.ssh/known_hosts.
        (known,) = [p for p in (private / "env").iterdir() if "ssh-ed25519" in p.read_text()]
        found = subprocess.run(["ssh-keygen", "-F", f"[{host}]:{sandbox['app_server']['port']}", "-f", str(known)],
                               capture_output=True, text=True)
        assert found.returncode == 0, found.stdout + found.stderr


def test_an_unreachable_app_server_fails_the_inventory_update(awx: Awx) -> None:
    done, _ = awx.inventory_update(dict(awx.inputs, port="1"))
    assert done.returncode != 0
    assert "unreachable over SSH" in done.stderr


def test_a_job_on_the_synced_inventory_uses_its_own_copy_of_the_key(awx: Awx, tmp_path: Path) -> None:
    """AWX stores what the inventory update found and removes the update's private folder; a job gets the
    stored hosts (key path included, now stale) and its own injection of the credential."""
    done, private = awx.inventory_update()
    assert done.returncode == 0, done.stderr
    shutil.rmtree(private)
    stored = tmp_path / "inventory" / "hosts"
    stored.parent.mkdir()
    # AWX hands a job its inventory as a Python script printing the stored hosts (inventory/hosts).
    data = json.dumps(plain(json.loads(done.stdout)))
    stored.write_text(f"#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint({data!r})\n")
    stored.chmod(0o700)
    job = awx.job("discover", {}, inventory=stored)
    assert job.returncode == 0, job.explain()
    assert PROD in job.output and STAGING in job.output
    # Without the credential's extra vars the stale key and known_hosts paths would stop the job.
    job = awx.job("discover", {}, inventory=stored, credential_extra_vars=False)
    assert job.returncode != 0
    assert "UNREACHABLE" in job.output


# -- the table ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A run of another playbook that a good run needs first (restore needs a backup)."""

    playbook: str
    answers: Answers


@dataclass(frozen=True)
class Bad:
    answers: Answers
    message: str
    raw_vars: Answers = field(default_factory=dict)  # extra variables given on launch, beside the survey
    xfail: str = ""  # a known problem of the playbook, reported; remove once fixed


@dataclass(frozen=True)
class Case:
    playbook: str
    # Survey answers of each good run, in order; a callable gets the sandbox and the jobs run so far.
    good: tuple[Answers | Run | Callable[[dict, list[Job]], Answers], ...]
    bad: tuple[Bad, ...]
    # Answers of the required questions, for the blank-answer checks (validation only).
    minimal: Answers
    no_good_run: str = ""  # why this playbook's good run is left to its own tests


def staging_dir(sandbox: dict) -> Path:
    return Path(site_by_name(sandbox, STAGING)["site_dir"])


def newest_backup(jobs: list[Job], label: str) -> str:
    """The backup the last job wrote, from its report (`Backup <name> (...)`)."""
    names = re.findall(rf"Backup (\S+_{re.escape(label)}(?:-\d+)?) ", jobs[-1].output)
    assert names, jobs[-1].explain()
    return names[-1]


def tomorrow() -> str:
    return (datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=1)).isoformat()


def same_settings(sandbox: dict, jobs: list[Job]) -> Answers:
    """Writes one setting with the value it already has: the write path, with nothing changed."""
    settings = json.loads((staging_dir(sandbox) / "shared/config/site_settings.json").read_text())
    return {"site": STAGING, "settings_json": json.dumps({"max_upload_mb": settings["max_upload_mb"]})}


UNKNOWN = "nowhere.teststudio.com"
NOT_IN_INVENTORY = f"Site {UNKNOWN} is not in this inventory"
CASES = [
    Case("discover", good=({},), minimal={},
         bad=(Bad({"apache_config": "relative/apache2.conf"}, "apache_config"),)),
    Case("maintenance", good=({"site": STAGING, "state": "on", "message": "Back soon (AWX test)"},
                              {"site": STAGING, "state": "off"}),
         minimal={"site": STAGING, "state": "on"}, bad=(Bad({"site": UNKNOWN, "state": "on"}, NOT_IN_INVENTORY),)),
    Case("site_settings", good=(same_settings,), minimal={"site": STAGING},
         bad=(Bad({"site": STAGING, "settings_json": "{not json"}, "`settings_json` is not valid JSON"),
              Bad({"site": STAGING, "settings_json": "[1, 2]"}, "`settings_json` must be a JSON object of settings"))),
    Case("redeploy", good=({"site": STAGING},), minimal={"site": STAGING},
         bad=(Bad({"site": UNKNOWN}, NOT_IN_INVENTORY),)),
    Case("backup", good=({"site": STAGING, "keep": 0, "label": "awx-backup"},), minimal={"site": STAGING},
         bad=(Bad({"site": STAGING, "label": "not a label"}, "`label` must be letters, digits and . + -"),)),
    Case("backups", good=({"site": STAGING, "check_files": "true"},), minimal={"site": STAGING},
         bad=(Bad({"site": UNKNOWN}, NOT_IN_INVENTORY),)),
    Case("restore", good=(Run("backup", {"site": STAGING, "keep": 0, "label": "awx-restore"}),
                          lambda box, jobs: {"site": STAGING, "backup": newest_backup(jobs, "awx-restore")}),
         # backup is required but with undo: the blank-answer checks run as an undo, where it may be blank.
         minimal={"site": STAGING, "undo": "true"},
         bad=(Bad({"site": STAGING, "backup": "../com_teststudio_prod/db_backup/x"},
                  "must be the folder name of one of the site's backups"),)),
    Case("drill", good=(Run("backup", {"site": STAGING, "keep": 0, "label": "awx-drill"}),
                        lambda box, jobs: {"site": STAGING, "backup": newest_backup(jobs, "awx-drill")}),
         minimal={"site": STAGING},
         bad=(Bad({"site": STAGING, "backup": "../com_teststudio_prod/db_backup/x"},
                  "must be the folder name of one of the site's backups"),)),
    Case("trim_events", good=({"site": STAGING, "before": "2000-01-01"},), minimal={"site": STAGING,
                                                                                    "before": "2000-01-01"},
         bad=(Bad({"site": STAGING, "before": "2023-02-30"}, "is not a calendar date"),
              Bad({"site": STAGING, "before": tomorrow()}, "is in the future"))),
    Case("advanced/run_module", good=({"site": STAGING, "module": "site_health"},),
         minimal={"site": STAGING, "module": "site_health"},
         bad=(Bad({"site": STAGING, "module": "site_health"}, "module_args must be a mapping",
                  raw_vars={"module_args": "url=http://example.invalid"}),
              Bad({"site": UNKNOWN, "module": "site_health"}, NOT_IN_INVENTORY))),
    Case("upgrade", good=(), minimal={"site": STAGING, "to": "8.0.1", "releases_dir": "RELEASES"},
         no_good_run="an upgrade moves the site's version for good (other tests expect 8.0.0): "
                     "tests/integration/test_upgrade.py runs it",
         bad=(Bad({"site": STAGING, "to": "8.0.1", "releases_dir": "/nonexistent/releases"},
                  "must be the controller folder holding the release archives"),
              Bad({"site": STAGING, "to": "8.x.1", "releases_dir": "RELEASES"}, "must be the target version"),
              Bad({"site": STAGING, "to": "8.9.0", "releases_dir": "RELEASES"}, f"Cannot upgrade {STAGING}"))),
    Case("sync_db", good=(), minimal={"source": PROD, "target": STAGING},
         no_good_run="a sync replaces the staging database with production's data: tests/integration/"
                     "test_sync.py runs it",
         bad=(Bad({"source": STAGING, "target": PROD}, f"{PROD} is marked production"),)),
    Case("operation_outcome", good=({"site": STAGING, "outcome_of": "awx-never-ran"},),
         minimal={"site": STAGING, "outcome_of": "awx-never-ran"},
         bad=(Bad({"site": STAGING, "outcome_of": "not an id!"}, "`outcome_of` must be an operation id"),)),
    Case("repair", good=({"site": STAGING},), minimal={"site": STAGING},
         bad=(Bad({"site": UNKNOWN}, NOT_IN_INVENTORY),
              Bad({"site": STAGING, "releases_dir": "/nonexistent/releases"},
                  "`releases_dir` must be a folder of release archives on the controller"))),
    Case("site_state", good=({"site": STAGING}, {}), minimal={},
         bad=(Bad({"site": UNKNOWN}, NOT_IN_INVENTORY),)),
    Case("sync_media", good=({"source": PROD, "target": STAGING, "dry_run": "true"},),
         minimal={"source": PROD, "target": STAGING},
         bad=(Bad({"source": STAGING, "target": PROD}, f"{PROD} is marked production"),)),
]


def test_every_playbook_has_a_row() -> None:
    rows = {f"playbooks/{case.playbook}.yml" for case in CASES}
    missing = sorted({p.relative_to(ROOT).as_posix() for p in playbook_paths()} - rows)
    assert not missing, f"add a Case to CASES in {Path(__file__).name} for {missing}"


def test_every_row_names_a_playbook_that_exists() -> None:
    """A renamed or removed playbook fails here, instead of its cases silently vanishing."""
    gone = [case.playbook for case in CASES if not (ROOT / f"playbooks/{case.playbook}.yml").is_file()]
    assert not gone, f"CASES names playbooks that do not exist: {gone}"


def input_play(playbook: str) -> str | None:
    """The name of the playbook's first play when it runs on localhost only (where inputs are checked)."""
    first = yaml.safe_load((ROOT / f"playbooks/{playbook}.yml").read_text())[0]
    return first.get("name") if first.get("hosts") == "localhost" else None


def _with_releases(answers: Answers, sandbox: dict) -> Answers:
    return {k: (sandbox["releases_dir"] if v == "RELEASES" else v) for k, v in answers.items()}


@pytest.fixture
def staging_put_back(sandbox: dict) -> Iterator[None]:
    """After the good runs: the staging site out of maintenance, unlocked, serving, and the files the runs
    wrote (backups and trim archives named by these tests) removed."""
    site_dir = staging_dir(sandbox)
    settings = (site_dir / "shared/config/site_settings.json").read_bytes()
    yield
    for leftover in (site_dir / "tmp/maintenance.html", site_dir / "tmp/sec-operation.lock"):
        leftover.unlink(missing_ok=True)
    for backup in (site_dir / "db_backup").glob("*_awx-*"):
        shutil.rmtree(backup, ignore_errors=True)
    for archive in site_dir.glob("events_trim_2000-01-01_*"):
        archive.unlink()
    assert (site_dir / "shared/config/site_settings.json").read_bytes() == settings
    assert http_get(sandbox, STAGING)[0] == 200


@pytest.mark.parametrize("case", [pytest.param(c, id=c.playbook) for c in CASES])
def test_good_runs(awx: Awx, sandbox: dict, staging_put_back: None, case: Case) -> None:
    if case.no_good_run:
        pytest.skip(f"no good run here: {case.no_good_run}")
    before = site_status(sandbox, STAGING)
    jobs: list[Job] = []
    for step in case.good:
        if isinstance(step, Run):
            playbook, answers = step.playbook, step.answers
        else:
            playbook, answers = case.playbook, step(sandbox, jobs) if callable(step) else step
        job = awx.job(playbook, _with_releases(answers, sandbox))
        assert job.returncode == 0, job.explain()
        assert "fatal:" not in job.output, job.explain()
        jobs.append(job)
    # The least invasive inputs leave the staging site as it was: serving, unlocked, the same data.
    after = site_status(sandbox, STAGING)
    assert (after["version"], after["events"]) == (before["version"], before["events"])
    assert not (staging_dir(sandbox) / "tmp/sec-operation.lock").exists()


BAD_CASES = [pytest.param(case, bad, id=f"{case.playbook}-{n}",
                          marks=[pytest.mark.xfail(strict=True, reason=bad.xfail)] if bad.xfail else [])
             for case in CASES for n, bad in enumerate(case.bad)]


@pytest.mark.parametrize(("case", "bad"), BAD_CASES)
def test_bad_input_is_refused_before_any_host(awx: Awx, sandbox: dict, case: Case, bad: Bad) -> None:
    checking_play = input_play(case.playbook)
    assert checking_play, f"playbooks/{case.playbook}.yml has no first play on localhost that checks the inputs"
    job = awx.job(case.playbook, _with_releases(bad.answers, sandbox), raw_vars=bad.raw_vars)
    assert job.returncode != 0, job.explain()
    # Only the input-checking play ran: the App servers' play never started. (In the sandbox the App server
    # is 127.0.0.1, which Ansible also takes for localhost: the recap has one line for both.)
    assert job.plays == [checking_play], job.explain()
    ((_, counts),) = job.recap.items()
    assert counts["failed"] == 1, job.explain()
    assert bad.message in " ".join(job.output.split()), job.explain()


BLANK_KNOWN_PROBLEMS = {
}
BLANK_CASES = [
    pytest.param(case, question["variable"], blank, id=f"{case.playbook}-{question['variable']}-{blank!r}",
                 marks=[pytest.mark.xfail(strict=True, reason=BLANK_KNOWN_PROBLEMS[key])]
                 if (key := (case.playbook, question["variable"], blank)) in BLANK_KNOWN_PROBLEMS else [])
    for case in CASES
    if f"playbooks/{case.playbook}.yml" in job_templates_by_playbook()
    for question in survey_questions(job_templates_by_playbook()[f"playbooks/{case.playbook}.yml"])
    if question["type"] in ("text", "textarea") and not question["required"]
    for blank in ("", None)
]


@pytest.mark.parametrize(("case", "variable", "blank"), BLANK_CASES)
def test_a_blank_optional_answer_is_accepted(awx: Awx, sandbox: dict, tmp_path: Path, case: Case, variable: str,
                                             blank: str | None) -> None:
    """AWX sends an optional text question left blank as "" (most versions) or null (24.x); either must
    mean "not given". Only the input-checking play runs: the static inventory names its App server `app1`
    and localhost apart, and `--limit localhost` leaves the App server out."""
    answers = _with_releases(case.minimal, sandbox)
    if not input_play(case.playbook):
        # No input-checking play (discover): the whole run, which only reads.
        job = awx.job(case.playbook, answers, raw_vars={variable: blank})
        assert job.returncode == 0, job.explain()
        return
    inventory = sandbox_inventory(sandbox, tmp_path / "inventory.json")
    data = json.loads(inventory.read_text())
    data["all"]["hosts"]["localhost"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps(data))
    job = awx.job(case.playbook, answers, raw_vars={variable: blank}, inventory=inventory, limit="localhost")
    assert job.returncode == 0, job.explain()
    assert set(job.recap) == {"localhost"}, job.explain()
