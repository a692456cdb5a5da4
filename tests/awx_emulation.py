"""What AWX does with this project's AWX definitions (awx/), emulated for the tests.

There is no AWX in the test environment, so the tests reproduce the few AWX behaviours the definitions rely
on, as AWX documents and implements them:
- a custom credential type is validated when it is created (input fields, injector names, templates that
  only use defined fields) and, at each run, rendered in a Jinja sandbox: one private file per
  `file.template.<name>` (mode 0600), `env` injected into the process environment, `extra_vars` written to a
  file passed as `-e @file` (jobs only, never inventory updates);
- a survey spec is validated when it is saved, and at launch the job's extra vars are the survey's defaults
  (those that pass the question's own checks) overlaid with the answers, every answer checked by type,
  choices and min/max;
- a job gets `awx_job_id` and friends as extra vars.
Nothing here talks to a network or needs AWX installed.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from jinja2 import StrictUndefined, Undefined
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[1]
AWX_DIR = ROOT / "awx"
CREDENTIAL_TYPE = AWX_DIR / "credential_type.yml"
JOB_TEMPLATES = AWX_DIR / "job_templates"
INVENTORY_SOURCE = ROOT / "sec.apache_sites.yml"

NAME_RE = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
FILE_KEY_RE = re.compile(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$")
FIELD_KEYS = {"id", "label", "type", "format", "choices", "help_text", "multiline", "secret", "ask_at_runtime",
              "default"}
STRING_ONLY_KEYS = ("choices", "multiline", "format", "secret")
# Environment variables AWX refuses in a credential type (they belong to the job runner itself).
ENV_REFUSED = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
               "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
               "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
               "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH"}
SURVEY_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,), "textarea": (str,), "password": (str,), "multiplechoice": (str,), "multiselect": (str,),
    "integer": (int,), "float": (float, int),
}


# -- credential type ----------------------------------------------------------------------------------------------
def load_credential_type() -> dict:
    return yaml.safe_load(CREDENTIAL_TYPE.read_text())


class _Filenames:
    """tower.filename as AWX's validation sees it: only the declared file names exist."""

    def __init__(self, names: list[str], single: bool) -> None:
        self._names = set(names)
        self._single = single

    def __getattr__(self, name: str) -> str:
        if name.startswith("_") or name not in self._names:
            raise UndefinedError(f"tower.filename.{name} is not a declared file injector")
        return "EXAMPLE_FILENAME"

    def __str__(self) -> str:
        if not self._single:
            raise UndefinedError("tower.filename needs an unnamed file injector (template)")
        return "EXAMPLE_FILENAME"


def credential_type_errors(ctype: dict) -> list[str]:
    """The checks AWX makes when a custom credential type is created; an empty list means it is accepted."""
    errors: list[str] = []
    if ctype.get("kind") not in ("cloud", "net"):
        errors.append(f"kind must be cloud or net for a custom type, not {ctype.get('kind')!r}")
    inputs = ctype.get("inputs") or {}
    if set(inputs) - {"fields", "required"}:
        errors.append(f"inputs has unknown keys {sorted(set(inputs) - {'fields', 'required'})}")
    ids: list[str] = []
    for item in inputs.get("fields", []):
        fid = item.get("id", "")
        if set(item) - FIELD_KEYS:
            errors.append(f"field {fid}: unknown keys {sorted(set(item) - FIELD_KEYS)}")
        if not NAME_RE.match(str(fid)) or fid == "tower":
            errors.append(f"field id {fid!r} is not a valid variable name")
        if "label" not in item:
            errors.append(f"field {fid}: no label")
        if fid in ids:
            errors.append(f"field id {fid} is duplicated")
        ids.append(fid)
        kind = item.get("type", "string")
        if kind not in ("string", "boolean"):
            errors.append(f"field {fid}: type must be string or boolean")
        if "default" in item and not isinstance(item["default"], {"string": str, "boolean": bool}.get(kind, str)):
            errors.append(f"field {fid}: default {item['default']!r} is not a {kind}")
        for key in STRING_ONLY_KEYS:
            if key in item and kind != "string":
                errors.append(f"field {fid}: {key} is only allowed on strings")
        if item.get("format") not in (None, "ssh_private_key", "url"):
            errors.append(f"field {fid}: unknown format {item['format']!r}")
    for name in inputs.get("required", []):
        if name not in ids:
            errors.append(f"required names an unknown field {name}")

    injectors = ctype.get("injectors") or {}
    if set(injectors) - {"file", "env", "extra_vars"}:
        errors.append(f"injectors has unknown keys {sorted(set(injectors) - {'file', 'env', 'extra_vars'})}")
    files = injectors.get("file", {})
    for key in files:
        if not FILE_KEY_RE.match(key):
            errors.append(f"file injector {key!r}: use template or template.<name>")
    single = "template" in files
    if single and len(files) > 1:
        errors.append("one unnamed file template cannot be mixed with named ones")
    for name, value in injectors.get("env", {}).items():
        if not NAME_RE.match(name):
            errors.append(f"env {name!r} is not a variable name")
        if name.startswith("ANSIBLE_") or name in ENV_REFUSED:
            errors.append(f"env {name} is reserved by AWX")
        if not isinstance(value, str) or not value.isascii():
            errors.append(f"env {name}: the template must be ASCII text")
    for name, value in injectors.get("extra_vars", {}).items():
        if not NAME_RE.match(name):
            errors.append(f"extra_vars {name!r} is not a variable name")
        if not isinstance(value, str):
            errors.append(f"extra_vars {name}: the template must be text")

    names = [key.split(".", 1)[1] for key in files if "." in key]
    namespace: dict[str, Any] = {fid: "EXAMPLE" for fid in ids}
    namespace["tower"] = SimpleNamespace(filename=_Filenames(names, single))
    sandbox = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for section in ("file", "env", "extra_vars"):
        for key, template in injectors.get(section, {}).items():
            try:
                sandbox.from_string(str(template)).render(**namespace)
            except (UndefinedError, SecurityError, TemplateSyntaxError) as exc:
                errors.append(f"{section}.{key}: {exc}")
    return errors


@dataclass
class Injection:
    """What a credential put into one run: environment, private files and the extra vars file."""

    env: dict[str, str]
    files: dict[str, Path]
    extra_vars: dict[str, str]
    extra_vars_file: Path | None = None
    private_dir: Path | None = None
    safe_env: dict[str, str] = field(default_factory=dict)


def inject_credential(ctype: dict, inputs: dict[str, Any], private_dir: Path, *, job: bool = True) -> Injection:
    """Renders the credential type for one run as AWX does: files in <private_dir>/env (0600), then env, then
    (for a job, not an inventory update) extra vars written to a file."""
    env_dir = private_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    namespace: dict[str, Any] = {}
    for item in ctype["inputs"]["fields"]:
        value = inputs.get(item["id"])
        if item.get("type") == "boolean":
            namespace[item["id"]] = bool(value)
        elif value:
            # AWX leaves a blank input out of the namespace: it renders as an empty string.
            text = str(value)
            if item.get("format") == "ssh_private_key" and not text.endswith("\n"):
                text += "\n"
            namespace[item["id"]] = text
    sandbox = ImmutableSandboxedEnvironment(undefined=Undefined)
    files: dict[str, Path] = {}
    single: Path | None = None
    for key, template in ctype["injectors"].get("file", {}).items():
        handle, name = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(sandbox.from_string(template).render(**namespace))
        os.chmod(name, stat.S_IRUSR | stat.S_IWUSR)
        if "." in key:
            files[key.split(".", 1)[1]] = Path(name)
        else:
            single = Path(name)
    namespace["tower"] = SimpleNamespace(filename=str(single) if single else SimpleNamespace(
        **{k: str(v) for k, v in files.items()}))
    env = {name: sandbox.from_string(template).render(**namespace)
           for name, template in ctype["injectors"].get("env", {}).items() if name not in ENV_REFUSED}
    extra_vars = {name: sandbox.from_string(template).render(**namespace)
                  for name, template in ctype["injectors"].get("extra_vars", {}).items()}
    injection = Injection(env=env, files=files if not single else {"template": single}, extra_vars=extra_vars,
                          private_dir=private_dir)
    if job and extra_vars:
        handle, name = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(yaml.safe_dump(extra_vars))
        os.chmod(name, stat.S_IRUSR)
        injection.extra_vars_file = Path(name)
    return injection


# -- job templates and surveys -----------------------------------------------------------------------------------
def job_template_files() -> list[Path]:
    return sorted(JOB_TEMPLATES.rglob("*.json"))


def load_job_template(path: Path) -> dict:
    """The one job template of an `awx export`-shaped file."""
    data = json.loads(path.read_text())
    (template,) = data["job_templates"]
    return template


def job_templates_by_playbook() -> dict[str, dict]:
    """{"playbooks/backup.yml": job template}."""
    return {t["playbook"]: t for t in map(load_job_template, job_template_files())}


def survey_questions(template: dict) -> list[dict]:
    return template["related"]["survey_spec"]["spec"]


def _choices(question: dict) -> list[str]:
    choices = question.get("choices", [])
    if isinstance(choices, str):
        return [line for line in choices.splitlines() if line.strip()]
    return list(choices)


def survey_spec_errors(spec: dict) -> list[str]:
    """The checks AWX makes when a survey spec is saved."""
    errors: list[str] = []
    for key, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(key), kind):
            errors.append(f"survey {key} must be a {kind.__name__}")
    if not spec.get("spec"):
        return errors + ["the survey has no question"]
    seen: set[str] = set()
    for index, question in enumerate(spec["spec"]):
        for key in ("type", "question_name", "variable"):
            if not isinstance(question.get(key), str):
                errors.append(f"question {index}: {key} must be text")
        if not isinstance(question.get("required"), bool):
            errors.append(f"question {index}: required must be true or false")
        variable = question.get("variable")
        if variable in seen:
            errors.append(f"question {index}: variable {variable} is asked twice")
        seen.add(variable)
        qtype = question.get("type")
        if qtype not in SURVEY_TYPES:
            errors.append(f"question {index}: unknown type {qtype!r}")
            continue
        if "default" in question and not isinstance(question["default"], SURVEY_TYPES[qtype]):
            errors.append(f"question {index} ({variable}): default {question['default']!r} is not a {qtype}")
        for key in ("min", "max"):
            if question.get(key) is not None and not isinstance(question[key], int):
                errors.append(f"question {index} ({variable}): {key} must be an integer")
        if qtype in ("multiplechoice", "multiselect") and not _choices(question):
            errors.append(f"question {index} ({variable}): no choices")
    return errors


def answer_errors(question: dict, answers: dict[str, Any]) -> list[str]:
    """The checks AWX makes on one question's answer at launch (and on its default)."""
    variable = question["variable"]
    if variable not in answers:
        return [f"'{variable}' value missing"] if question["required"] else []
    value = answers[variable]
    qtype = question["type"]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"{variable}: {value!r} is not text"]
        size = len(value)
    elif qtype in ("integer", "float"):
        if isinstance(value, bool) or not isinstance(value, SURVEY_TYPES[qtype]):
            return [f"{variable}: {value!r} is not a {qtype}"]
        size = value
    elif qtype == "multiplechoice":
        return [] if value in _choices(question) else [f"{variable}: {value!r} is not one of {_choices(question)}"]
    else:
        if not isinstance(value, list) or set(value) - set(_choices(question)):
            return [f"{variable}: {value!r} is not a list of {_choices(question)}"]
        return []
    errors = []
    if question.get("min") not in ("", None) and size < int(question["min"]):
        errors.append(f"{variable}: {value!r} is below the minimum {question['min']}")
    if question.get("max") not in ("", None) and size > int(question["max"]):
        errors.append(f"{variable}: {value!r} is above the maximum {question['max']}")
    return errors


class SurveyRefused(ValueError):
    """AWX refuses the launch: the answers do not pass the survey."""


def launch_extra_vars(template: dict, answers: dict[str, Any], job_id: int = 1) -> dict[str, Any]:
    """The extra vars AWX hands the playbook for a launch with these answers (and extra variables, when the
    template prompts for them): survey defaults that pass their own checks, overlaid with the answers, plus
    the awx_* variables of the job."""
    extra_vars: dict[str, Any] = yaml.safe_load(template.get("extra_vars") or "") or {}
    questions = survey_questions(template) if template.get("survey_enabled") else []
    surveyed = {q["variable"] for q in questions}
    unsurveyed = set(answers) - surveyed
    if unsurveyed and not template.get("ask_variables_on_launch"):
        raise SurveyRefused(f"variables {sorted(unsurveyed)} are not allowed on launch: the template does not "
                            "prompt for extra variables")
    errors = [e for q in questions for e in answer_errors(q, answers)]
    if errors:
        raise SurveyRefused("; ".join(errors))
    for question in questions:
        if question.get("default") is not None and not answer_errors(question, {question["variable"]:
                                                                                question["default"]}):
            extra_vars[question["variable"]] = question["default"]
    extra_vars.update(answers)
    extra_vars.update({"awx_job_id": job_id, "tower_job_id": job_id, "awx_job_template_name": template["name"],
                       "awx_user_name": "admin", "awx_job_launch_type": "manual"})
    return extra_vars


# -- playbooks ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DocumentedVar:
    name: str
    required: bool
    default: str | None


_VAR_LINE = re.compile(r"^#\s{2,}(\w+)\s+(required|optional)\b(.*)$")
_INLINE = re.compile(r"Extra vars:\s*(\w+)\s*\((required|optional)\b([^)]*)\)")
_DEFAULT = re.compile(r"\(default ([^;:,)\s]+)")


DEPRECATED_MARK = "# Deprecated name, kept for one release"


def deprecated_playbooks() -> dict[Path, Path]:
    """{old name: the playbook it imports}: the stubs that keep an operation's old playbook name working."""
    stubs = {}
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        text = path.read_text()
        if text.startswith("---\n" + DEPRECATED_MARK) or text.startswith(DEPRECATED_MARK):
            plays = yaml.safe_load(text)
            stubs[path] = path.parent / plays[0]["ansible.builtin.import_playbook"]
    return stubs


def playbook_paths() -> list[Path]:
    """The playbooks under playbooks/: YAML files that are a list of plays (task files such as
    playbooks/tasks/*.yml are not)."""
    found = []
    for path in sorted((ROOT / "playbooks").rglob("*.yml")):
        if path.parent.name == "plays":
            continue  # plays the operations import (reach_site_hosts.yml), not operations of their own
        if path in deprecated_playbooks():
            continue  # an old name that imports the operation's playbook (and has no template of its own)
        data = yaml.safe_load(path.read_text())
        if isinstance(data, list) and data and all(
                isinstance(play, dict) and ("hosts" in play or "import_playbook" in play or
                                            "ansible.builtin.import_playbook" in play) for play in data):
            found.append(path)
    return found


def documented_extra_vars(playbook: Path) -> dict[str, DocumentedVar]:
    """The extra vars a playbook's header comment documents: `#   name  required|optional  text (default X)`
    lines under `# Extra vars`, or the one-line form `# Extra vars: name (optional ...)`."""
    header = []
    for line in playbook.read_text().splitlines():
        if line.startswith("---"):
            continue
        if not line.startswith("#"):
            break
        header.append(line)
    texts: dict[str, tuple[bool, str]] = {}
    current: str | None = None
    in_vars = False
    for line in header:
        inline = _INLINE.search(line)
        if inline:
            texts[inline.group(1)] = (inline.group(2) == "required", inline.group(3))
            continue
        if line.lstrip("# ").startswith("Extra vars"):
            in_vars = True
            continue
        match = _VAR_LINE.match(line) if in_vars else None
        if match:
            current = match.group(1)
            texts[current] = (match.group(2) == "required", match.group(3))
        elif in_vars and current and line.startswith("#   "):
            # A continuation line of the description above it.
            required, text = texts[current]
            texts[current] = (required, text + " " + line.lstrip("# "))
    found: dict[str, DocumentedVar] = {}
    for name, (required, text) in texts.items():
        default = _DEFAULT.search(text)
        found[name] = DocumentedVar(name, required, default.group(1) if default else None)
    return found
