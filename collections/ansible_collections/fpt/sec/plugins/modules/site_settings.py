#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_settings
short_description: Read or change a site's persisted settings (site_settings.json), with a schema
version_added: "0.1.0"
description:
  - Reads and writes C(<site_dir>/shared/config/site_settings.json), the settings of a Flow Production
    Tracking site as the vendor's console persists them.
  - Every value is checked against the schema the collection ships before anything is written. A string
    is read by its key's type, so V("false") sets a boolean and V("500") an integer; C(KEY=VALUE) values
    from a command line can be passed as they are. A bad value fails the task with one line naming the key
    and what it allows, and the file is left as it was.
  - Unknown keys are refused unless O(force=true). Unknown keys already in the file are kept, with a
    warning.
  - The file is replaced atomically (a temporary file in the same folder, fsynced, renamed over it), and
    the previous version is kept as C(site_settings.json.prev).
  - Writing the same values again changes nothing and leaves the file untouched.
  - Settings take effect only after a redeploy (M(fpt.sec.redeploy)). The module reports whether one is
    pending, by comparing the persisted settings with the runtime config the last redeploy generated
    (C(shared/config/runtime.json)).
  - "The known settings: C(site_url) (required, an http:// or https:// URL with a host name),
    C(site_name) (required, non-empty text of at most 100 characters), C(email_notifications_enabled)
    (boolean), C(timezone) (an IANA name such as C(UTC) or C(Europe/Paris); when the host has a time zone
    database the zone must be in it), C(max_upload_mb) (integer, 1 to 100000), C(session_timeout_minutes)
    (integer, 5 to 10080), C(email_from) (an email address), C(smtp_host) (a host name or IP address),
    C(smtp_port) (integer, 1 to 65535), C(smtp_security) (V(none), V(starttls) or V(tls)), C(log_level)
    (V(debug), V(info), V(warn), V(error) or V(fatal)), C(password_min_length) (integer, 8 to 128),
    C(failed_login_lockout) (integer, 0 to 100, 0 turns locking off), C(two_factor_required) (boolean),
    C(api_rate_limit_per_minute) (integer, 0 to 1000000, 0 means no limit)."
extends_documentation_fragment:
  - fpt.sec.site
options:
  state:
    description:
      - V(present) writes O(settings) into the file (merged into it, or as the whole file with
        O(replace=true)).
      - V(query) only reads the settings and whether a redeploy is pending.
    type: str
    choices: [present, query]
    default: present
  settings:
    description:
      - The settings to write, key to value. Strings are parsed by the key's type.
      - In a merge, a null value removes the key from the file (required keys cannot be removed).
      - Required with O(state=present).
    type: dict
  replace:
    description:
      - The given O(settings) are the whole file. Keys not given are removed, and the required keys must
        be given.
    type: bool
    default: false
  force:
    description:
      - Accept keys the schema does not know (their values are written as given). Known keys are
        always validated, and names starting with C(_) are always refused.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Validates and reports the changes and the diff that would be made, and writes nothing.
  diff_mode:
    support: full
    description: Shows the file before and after, as JSON.
notes:
  - The file of every App server of a site is its own; run the module on each of them.
  - Fails when the file is not a JSON object, or when its known keys hold invalid values that the task
    does not correct.
seealso:
  - module: fpt.sec.redeploy
"""

EXAMPLES = r"""
- name: Show a site's settings and whether a redeploy is pending
  fpt.sec.site_settings:
    site_dir: /var/rails/com_teststudio_staging
    state: query
  register: staging_settings

- name: Change the site URL and turn notifications off (strings are typed by the schema)
  fpt.sec.site_settings:
    site_dir: /var/rails/com_teststudio_staging
    settings:
      site_url: https://staging.teststudio.com
      email_notifications_enabled: "false"
      max_upload_mb: "2000"
  register: changed_settings

- name: Remove a setting (back to the application's default)
  fpt.sec.site_settings:
    site_dir: /var/rails/com_teststudio_staging
    settings:
      smtp_host: null

- name: Write a key the schema does not know
  fpt.sec.site_settings:
    site_dir: /var/rails/com_teststudio_staging
    settings:
      beta_feature_flags: [review_notes]
    force: true

- name: Replace the whole file
  fpt.sec.site_settings:
    site_dir: /var/rails/com_teststudio_staging
    replace: true
    settings:
      site_url: https://staging.teststudio.com
      site_name: Staging
      timezone: UTC
"""

RETURN = r"""
settings:
  description: The persisted settings after the task (in check mode, as they would be).
  returned: success
  type: dict
  sample: {site_url: https://staging.teststudio.com, site_name: Staging, email_notifications_enabled: false,
           timezone: UTC, max_upload_mb: 500, session_timeout_minutes: 480}
changes:
  description: The keys the task changed (or would change), in file order; a missing side is null.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: The setting.
      type: str
      sample: site_url
    old:
      description: The value before, null when the key was not in the file.
      type: raw
      sample: https://staging.teststudio.com
    new:
      description: The value after, null when the key was removed.
      type: raw
      sample: https://staging2.teststudio.com
  sample: [{key: site_url, old: "https://staging.teststudio.com", new: "https://staging2.teststudio.com"}]
pending_redeploy:
  description:
    - Whether the persisted settings differ from what the last redeploy applied (or would, in check
      mode), so that a redeploy (M(fpt.sec.redeploy)) is needed for them to take effect.
  returned: success
  type: bool
  sample: true
pending_reason:
  description: Why a redeploy is or is not pending, in words.
  returned: success
  type: str
  sample: the settings changed since the last redeploy
pending_changes:
  description: The keys whose applied value (old) differs from the persisted one (new).
  returned: success
  type: list
  elements: dict
  sample: [{key: site_url, old: "https://staging.teststudio.com", new: "https://staging2.teststudio.com"}]
settings_file:
  description: The settings file.
  returned: success
  type: str
  sample: /var/rails/com_teststudio_staging/shared/config/site_settings.json
previous_file:
  description: Where the version before this change was kept; null when nothing was written or the file
    is new.
  returned: success
  type: str
  sample: /var/rails/com_teststudio_staging/shared/config/site_settings.json.prev
key:
  description: The setting that was refused, so that a caller can point at it.
  returned: failure, when a setting is refused
  type: str
  sample: max_upload_mb
schema:
  description: The known settings (key, type, kind, required, allowed, description, example).
  returned: when O(state=query)
  type: list
  elements: dict
  sample: [{key: max_upload_mb, type: int, kind: int, required: false, allowed: "an integer from 1 to 100000 (MB)",
            description: Largest file a user may upload., example: 500}]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module
from ansible_collections.fpt.sec.plugins.module_utils.site_runtime import (
    SettingsFileError,
    dump_json,
    pending_state,
    read_json_object,
    settings_path,
    write_atomic,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import (
    SettingsError,
    apply_update,
    describe_schema,
    diff_settings,
    validate_document,
)


class Failure(Exception):
    """Ends the task as failed with this one-line message (and extra return values)."""

    def __init__(self, msg: str, **extra: object) -> None:
        super().__init__(msg)
        self.extra = extra


def main() -> None:
    module = site_module(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "query"], "default": "present"},
            "settings": {"type": "dict"},
            "replace": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": False},
        },
        required_if=[("state", "present", ["settings"])],
        supports_check_mode=True,
    )
    result, failure = attempt(module)
    # The arguments come back in the result (invocation); a value too large to accept must not make the
    # result too large to record, or the refusal would reach the user without its reason.
    invocation = {"module_args": short_values(module.params)}
    if failure is not None:
        module.fail_json(msg=str(failure), invocation=invocation, **failure.extra)
    module.exit_json(invocation=invocation, **result)


def short_values(value: object, limit: int = 200) -> object:
    """``value`` with every text longer than ``limit`` cut short and marked with its full length."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: short_values(item, limit) for key, item in value.items()}
    if isinstance(value, list):
        return [short_values(item, limit) for item in value]
    return value


def attempt(module: AnsibleModule) -> tuple[dict, Failure | None]:
    # fail_json is called by the caller, outside this except block: a refused setting is an expected
    # answer, not a crash, and must not carry a traceback.
    try:
        return run(module), None
    except Failure as exc:
        return {}, exc


def run(module: AnsibleModule) -> dict:
    site_dir: str = module.params["site_dir"]
    path = settings_path(site_dir)
    if not os.path.isdir(os.path.join(site_dir, "shared")):
        raise Failure(f"{site_dir} is not a site dir (it has no shared/ folder)")
    try:
        current, _raw = read_json_object(path)
    except SettingsFileError as exc:
        raise Failure(str(exc)) from None

    if module.params["state"] == "query":
        return query(module, site_dir, path, current)

    try:
        new, warnings = apply_update(current or {}, module.params["settings"], replace=module.params["replace"],
                                     force=module.params["force"])
    except SettingsError as exc:
        # One line, the key first: what the CLI prints and what the user fixes. The file is untouched.
        raise Failure(f"invalid setting {exc}", key=exc.key, settings_file=path) from None
    for warning in warnings:
        module.warn(warning)

    changes = diff_settings(current or {}, new)
    # Unchanged values leave the file alone (not even rewritten in the canonical format), so that a
    # repeated run is a no-op for the file's mtime, its .prev copy and anyone watching it.
    changed = bool(changes) or current is None
    previous = None
    if changed and not module.check_mode:
        try:
            previous = write_atomic(path, dump_json(new), keep_previous=True)
        except OSError as exc:
            raise Failure(f"cannot write {path}: {exc}") from None

    result = {
        "changed": changed,
        "settings": new,
        "changes": changes,
        "settings_file": path,
        "previous_file": previous,
    }
    result.update(pending(site_dir, new))
    if module._diff:
        result["diff"] = {
            "before": dump_json(current).decode("utf-8") if current is not None else "",
            "after": dump_json(new).decode("utf-8"),
            "before_header": path,
            "after_header": path,
        }
    return result


def query(module: AnsibleModule, site_dir: str, path: str, current: dict | None) -> dict:
    if current is None:
        raise Failure(f"{path} does not exist: the site has no persisted settings yet")
    # A query shows the file as it is, and says (as a warning) what a write would refuse in it.
    try:
        validate_document(current, force=True)
    except SettingsError as exc:
        module.warn(f"the settings file holds an invalid setting: {exc}")
    result = {"changed": False, "settings": current, "changes": [], "settings_file": path, "previous_file": None,
              "schema": describe_schema()}
    result.update(pending(site_dir, current))
    return result


def pending(site_dir: str, settings: dict) -> dict:
    try:
        state = pending_state(site_dir, settings)
    except SettingsFileError as exc:
        raise Failure(f"cannot tell whether a redeploy is pending: {exc}") from None
    return {"pending_redeploy": state["pending"], "pending_reason": state["reason"],
            "pending_changes": state["changes"]}


if __name__ == "__main__":
    main()
