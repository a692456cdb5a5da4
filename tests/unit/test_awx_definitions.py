"""The AWX definitions (awx/, sec.apache_sites.yml) checked as AWX checks them when they are created, and
against what they configure: the inventory plugin's environment variables and each playbook's documented
extra vars. No playbook may wait for a keyboard: AWX jobs have no stdin."""

from __future__ import annotations

import ast
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.awx_emulation import (
    AWX_DIR,
    INVENTORY_SOURCE,
    JOB_TEMPLATES,
    ROOT,
    SurveyRefused,
    credential_type_errors,
    deprecated_playbooks,
    documented_extra_vars,
    inject_credential,
    job_template_files,
    job_templates_by_playbook,
    launch_extra_vars,
    load_credential_type,
    load_job_template,
    playbook_paths,
    survey_questions,
    survey_spec_errors,
)

COLLECTION = ROOT / "collections/ansible_collections/fpt/sec"
PLUGIN = COLLECTION / "plugins/inventory/apache_sites.py"
# Documented extra vars a survey does not ask, and why.
NOT_SURVEYED = {
    # AWX gives each job its own id (awx-<job id>), which is what the site lock and the records need.
    "operation_id",
}
# Mapping-valued extra vars: an AWX survey answers with text, numbers or choices, never a mapping, so the
# templates that take one prompt for extra variables on launch instead.
MAPPING_VARS = {"settings", "module_args"}
# Modules `playbooks/advanced/run_module.yml` refuses or that are not operations (as `sec advanced list`).
NOT_RUNNABLE = {"run_module", "site_lock"}
PAUSE_ACTIONS = {"pause", "ansible.builtin.pause", "ansible.legacy.pause"}
PROMPTLESS_KEYS = {"seconds", "minutes"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _plugin_documentation() -> dict:
    tree = ast.parse(PLUGIN.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError("the inventory plugin has no DOCUMENTATION")


# -- the credential type -----------------------------------------------------------------------------------------
def test_credential_type_passes_awx_validation() -> None:
    ctype = load_credential_type()
    assert credential_type_errors(ctype) == []
    assert ctype["name"] and ctype["description"]
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    assert fields["ssh_key"]["secret"] and fields["ssh_key"]["multiline"]
    assert fields["ssh_key"]["format"] == "ssh_private_key"
    assert "known_hosts" not in ctype["inputs"]["required"]
    assert {"app_server", "username", "ssh_key"} <= set(ctype["inputs"]["required"])


def test_the_validation_refuses_what_awx_refuses() -> None:
    """The emulated checks are not vacuous: each mistake AWX rejects is rejected here."""
    bad = {"name": "x", "kind": "cloud",
           "inputs": {"fields": [{"id": "key", "label": "Key", "type": "boolean", "secret": True}],
                      "required": ["nothing"]},
           "injectors": {"file": {"template": "{{ key }}", "template.other": "x"},
                         "env": {"ANSIBLE_PRIVATE_KEY_FILE": "{{ tower.filename }}", "PATH": "/x",
                                 "SEC_X": "{{ undefined_field }}"},
                         "extra_vars": {"bad-name": "x"}}}
    errors = "\n".join(credential_type_errors(bad))
    for expected in ("secret is only allowed on strings", "unknown field nothing", "cannot be mixed",
                     "ANSIBLE_PRIVATE_KEY_FILE is reserved", "PATH is reserved", "undefined_field",
                     "'bad-name' is not a variable name"):
        assert expected in errors


def test_credential_sets_every_environment_variable_the_inventory_plugin_reads() -> None:
    options = _plugin_documentation()["options"]
    plugin_env = {env["name"] for option in options.values() for env in option.get("env", [])}
    injected = set(load_credential_type()["injectors"]["env"])
    assert plugin_env == injected


@pytest.mark.parametrize("known_hosts", ["[10.0.0.5]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n", ""])
def test_credential_injection_for_an_inventory_update_and_a_job(tmp_path: Path, known_hosts: str) -> None:
    ctype = load_credential_type()
    inputs = {"app_server": "10.0.0.5", "port": "2222", "username": "shotgun",
              "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
              "known_hosts": known_hosts}
    update = inject_credential(ctype, inputs, tmp_path / "update", job=False)
    assert update.extra_vars_file is None
    job = inject_credential(ctype, inputs, tmp_path / "job")
    for run in (update, job):
        key = Path(run.env["SEC_SSH_PRIVATE_KEY_FILE"])
        assert key.read_text().endswith("-----END OPENSSH PRIVATE KEY-----\n")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        hosts = Path(run.env["SEC_SSH_KNOWN_HOSTS"])
        assert hosts.read_text() == known_hosts
        assert run.env["SEC_APP_SERVER"] == "10.0.0.5"
        assert run.env["SEC_SSH_PORT"] == "2222"
        assert run.env["SEC_SSH_USER"] == "shotgun"
        assert run.env["SEC_SSH_HOST_KEY_CHECKING"] == ("yes" if known_hosts else "accept-new")
    # A job points Ansible's SSH at the job's own files: the paths stored by the inventory update are gone.
    assert yaml.safe_load(job.extra_vars_file.read_text()) == job.extra_vars
    assert job.extra_vars["ansible_ssh_private_key_file"] == job.env["SEC_SSH_PRIVATE_KEY_FILE"]
    args = job.extra_vars["ansible_ssh_common_args"].split()
    assert f"UserKnownHostsFile={job.env['SEC_SSH_KNOWN_HOSTS']}" in args
    assert f"StrictHostKeyChecking={job.env['SEC_SSH_HOST_KEY_CHECKING']}" in args


def test_a_blank_port_falls_back_to_22(tmp_path: Path) -> None:
    run = inject_credential(load_credential_type(), {"app_server": "a", "username": "u", "ssh_key": "k"},
                            tmp_path, job=False)
    assert run.env["SEC_SSH_PORT"] == "22"


# -- the inventory source ----------------------------------------------------------------------------------------
def test_inventory_source_takes_everything_from_the_credential() -> None:
    source = yaml.safe_load(INVENTORY_SOURCE.read_text())
    assert INVENTORY_SOURCE.name.endswith(".apache_sites.yml"), "the plugin only reads *.apache_sites.yml files"
    assert source["plugin"] == "fpt.sec.apache_sites"
    # No address, user or key in the file: one file serves every cluster, each with its own credential.
    assert not {"app_servers", "address", "user", "private_key_file", "port", "known_hosts_file"} & set(source)
    assert {"key": "sec_roles", "prefix": "role"} in source["keyed_groups"]


def test_awx_inventory_export_points_at_the_source_and_the_credential() -> None:
    inventory = json.loads((AWX_DIR / "inventory.json").read_text())["inventory"][0]
    (source,) = inventory["related"]["inventory_sources"]
    assert source["source"] == "scm"
    assert (ROOT / source["source_path"]) == INVENTORY_SOURCE
    assert source["credential"]["credential_type"]["name"] == load_credential_type()["name"]
    assert source["overwrite"] and source["update_on_launch"]


# -- the job templates -------------------------------------------------------------------------------------------
def test_an_old_playbook_name_imports_a_playbook_with_a_template() -> None:
    stubs = deprecated_playbooks()
    assert stubs, "sync_staging.yml (sync-db's old name) is kept for one release"
    templates = job_templates_by_playbook()
    for old, new in stubs.items():
        plays = yaml.safe_load(old.read_text())
        assert len(plays) == 1, f"{old.name}: a deprecated name only imports the new playbook"
        assert new.is_file() and _rel(new) in templates, f"{old.name} imports {new.name}, which has no template"


def test_every_playbook_has_a_job_template_and_every_template_a_playbook() -> None:
    playbooks = {_rel(p) for p in playbook_paths()}
    templates = job_templates_by_playbook()
    missing = sorted(playbooks - set(templates))
    assert not missing, f"add a job template under awx/job_templates/ for {missing}"
    assert set(templates) == playbooks
    for path in job_template_files():
        # awx/job_templates/<path under playbooks/>.json, so that each is found next to its playbook's name.
        expected = "playbooks/" + path.relative_to(JOB_TEMPLATES).with_suffix(".yml").as_posix()
        assert load_job_template(path)["playbook"] == expected


@pytest.mark.parametrize("path", job_template_files(), ids=lambda p: p.relative_to(JOB_TEMPLATES).as_posix())
def test_job_template_is_a_complete_awx_export(path: Path) -> None:
    template = load_job_template(path)
    inventory = json.loads((AWX_DIR / "inventory.json").read_text())["inventory"][0]
    assert template["name"].startswith("FPT sec / ")
    assert template["job_type"] == "run"
    assert (ROOT / template["playbook"]).is_file()
    assert template["inventory"]["name"] == inventory["name"]
    assert template["inventory"]["type"] == "inventory"
    assert template["project"]["type"] == "project"
    assert template["natural_key"] == {"organization": template["inventory"]["organization"],
                                       "name": template["name"], "type": "job_template"}
    credentials = template["related"]["credentials"]
    assert [c["credential_type"]["name"] for c in credentials if c["credential_type"]["kind"] == "cloud"] == \
        [load_credential_type()["name"]]
    assert template["survey_enabled"] is True
    assert isinstance(template["ask_variables_on_launch"], bool)
    assert survey_spec_errors(template["related"]["survey_spec"]) == []


@pytest.mark.parametrize("playbook", playbook_paths(), ids=_rel)
def test_survey_asks_what_the_playbook_documents(playbook: Path) -> None:
    documented = documented_extra_vars(playbook)
    assert documented, f"{_rel(playbook)} documents no extra vars in its header"
    template = job_templates_by_playbook().get(_rel(playbook))
    assert template, f"add a job template under awx/job_templates/ for {_rel(playbook)}"
    questions = {q["variable"]: q for q in survey_questions(template)}
    unknown = sorted(set(questions) - set(documented))
    assert not unknown, f"the survey asks {unknown}, which {_rel(playbook)} does not document"
    for name, var in documented.items():
        if name in questions:
            question = questions[name]
            assert question["required"] == var.required, f"{name}: required differs from the playbook header"
            if var.default is not None:
                assert str(question.get("default")).lower() == var.default.lower(), \
                    f"{name}: the survey's default {question.get('default')!r} is not the playbook's {var.default}"
            continue
        assert not var.required, f"{name} is required by {_rel(playbook)} but the survey does not ask it"
        assert name in NOT_SURVEYED or template["ask_variables_on_launch"], \
            f"{name} is neither asked by the survey nor allowed as an extra variable on launch"
        if name in MAPPING_VARS:
            assert template["ask_variables_on_launch"], f"{name} (a mapping) needs ask_variables_on_launch"


def test_survey_types_fit_the_values() -> None:
    """Switches are a false/true choice (the playbooks read 'true'/'false' strings), counts are integers
    with bounds, required text has a minimum length so that an empty answer is refused by AWX itself."""
    for template in job_templates_by_playbook().values():
        for question in survey_questions(template):
            name = f"{template['name']}: {question['variable']}"
            if question["type"] == "multiplechoice":
                if "default" in question:
                    assert question["default"] in question["choices"], name
            if question["type"] == "integer":
                assert isinstance(question.get("min"), int) and isinstance(question.get("max"), int), name
            if question["type"] in ("text", "textarea") and question["required"]:
                assert question.get("min", 0) >= 1, name
            if set(question.get("choices", [])) == {"false", "true"}:
                assert question.get("default") in ("false", "true"), f"{name}: a switch has a default"


def test_advanced_template_offers_every_runnable_module() -> None:
    template = job_templates_by_playbook()["playbooks/advanced/run_module.yml"]
    (module,) = [q for q in survey_questions(template) if q["variable"] == "module"]
    modules = {p.stem for p in (COLLECTION / "plugins/modules").glob("*.py")} - NOT_RUNNABLE - {"__init__"}
    assert set(module["choices"]) == modules, \
        f"awx/job_templates/advanced/run_module.json: set the module choices to {sorted(modules)}"


def test_launch_applies_defaults_and_refuses_what_awx_refuses() -> None:
    template = job_templates_by_playbook()["playbooks/backup.yml"]
    launched = launch_extra_vars(template, {"site": "prod.teststudio.com"}, job_id=42)
    assert launched["keep"] == 5 and launched["label"] == "" and launched["awx_job_id"] == 42
    with pytest.raises(SurveyRefused, match="'site' value missing"):
        launch_extra_vars(template, {})
    with pytest.raises(SurveyRefused, match="below the minimum"):
        launch_extra_vars(template, {"site": ""})
    with pytest.raises(SurveyRefused, match="not a integer"):
        launch_extra_vars(template, {"site": "a", "keep": "5"})
    with pytest.raises(SurveyRefused, match="not allowed on launch"):
        launch_extra_vars(template, {"site": "a", "operation_id": "x"})


# -- no prompts --------------------------------------------------------------------------------------------------
def _tasks(items: object) -> Iterator[dict]:
    for task in items if isinstance(items, list) else []:
        if isinstance(task, dict):
            for key in ("block", "rescue", "always"):
                yield from _tasks(task.get(key))
            yield task


def prompt_problems(data: object) -> list[str]:
    """Where a play or task file would wait for a keyboard: vars_prompt, or a pause without a duration."""
    problems = []
    plays = data if isinstance(data, list) else []
    task_lists = []
    for play in plays:
        if isinstance(play, dict) and ("hosts" in play or "import_playbook" in play):
            if "vars_prompt" in play:
                problems.append(f"play {play.get('name')!r} has vars_prompt")
            task_lists += [play.get(k) for k in ("pre_tasks", "roles", "tasks", "post_tasks", "handlers")]
        else:
            task_lists.append([play])
    for tasks in task_lists:
        for task in _tasks(tasks):
            for action in PAUSE_ACTIONS & set(task):
                args = task[action]
                if isinstance(args, str):
                    args = dict(part.split("=", 1) for part in args.split() if "=" in part)
                if not PROMPTLESS_KEYS & set(args or {}):
                    problems.append(f"task {task.get('name')!r} pauses without seconds or minutes")
    return problems


def test_the_prompt_check_finds_prompts() -> None:
    plays = yaml.safe_load("""
- hosts: all
  vars_prompt: [{name: x}]
  tasks:
    - block:
        - name: wait for enter
          ansible.builtin.pause:
            prompt: press enter
      always:
        - name: timed
          ansible.builtin.pause: {seconds: 1}
        - name: free form
          pause: prompt=go
""")
    assert prompt_problems(plays) == ["play None has vars_prompt",
                                      "task 'wait for enter' pauses without seconds or minutes",
                                      "task 'free form' pauses without seconds or minutes"]


def test_no_playbook_prompts_or_pauses_without_a_timeout() -> None:
    problems = []
    for path in sorted((ROOT / "playbooks").rglob("*.y*ml")):
        text = path.read_text()
        if "vars_prompt" in text:
            problems.append(f"{_rel(path)}: mentions vars_prompt")
        problems += [f"{_rel(path)}: {p}" for p in prompt_problems(yaml.safe_load(text))]
    assert problems == []
