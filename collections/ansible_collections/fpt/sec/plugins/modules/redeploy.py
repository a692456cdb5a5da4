#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redeploy
short_description: Apply a site's persisted settings, reloading its application and Apache gracefully
version_added: "0.1.0"
description:
  - Applies the settings persisted in C(<site_dir>/shared/config/site_settings.json) (see
    M(fpt.sec.site_settings)), as the vendor's console does with a redeploy.
  - Checks the settings against the collection's schema (keys the schema does not know are passed on),
    then regenerates the runtime config the application boots from, C(shared/config/runtime.json), atomically,
    keeping the previous one as C(runtime.json.prev). It holds the settings plus a C(_sec) object that
    records when, from which settings and by which operation it was made.
  - Touches C(<site_dir>/tmp/restart.txt), so that the application process reloads gracefully at its next
    request (Passenger's convention), then restarts the Apache that serves the site gracefully
    (C(<httpd> -d <ServerRoot> -f <config> -k graceful), after a configuration test with C(-t)). Requests
    in flight are finished; nothing is refused.
  - The Apache is the one whose configuration has a virtual host for O(site_dir), found as
    M(fpt.sec.site_facts) finds it (the O(apache_config) option, the E(SEC_APACHE_CONFIG) environment
    variable, the running httpd/apache2 masters, the binaries on the PATH). It must be running.
  - Nothing pending (the runtime config holds the persisted settings and the application was told to
    reload since) means nothing to do, and the task reports no change, unless O(force=true).
  - A health check through the virtual host is the caller's next step (M(fpt.sec.site_health)).
extends_documentation_fragment:
  - fpt.sec.site
options:
  force:
    description: Redeploy even when nothing is pending (regenerate, reload the application, restart Apache).
    type: bool
    default: false
  apache_config:
    description:
      - Path of the main configuration file of the Apache that serves the site, or of its ServerRoot folder.
        Pins it when several Apache instances run on the host.
    type: path
  restart_apache:
    description:
      - Restart Apache gracefully after the application was told to reload. Turn it off on a host whose
        Apache is managed by something else; the application still reloads.
    type: bool
    default: true
  operation_id:
    description: The operation this redeploy belongs to, recorded in the runtime config.
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Validates the settings, finds the Apache and tests its configuration, and reports what would
        change. Writes nothing and signals nothing.
  diff_mode:
    support: none
    description: The RV(changes) list shows what the runtime config gets.
notes:
  - If the graceful restart of Apache fails after the runtime config was written, the task fails and the
    application has already been told to reload; fix Apache and run again with O(force=true).
seealso:
  - module: fpt.sec.site_settings
  - module: fpt.sec.site_health
"""

EXAMPLES = r"""
- name: Apply the persisted settings of the staging site
  fpt.sec.redeploy:
    site_dir: /var/rails/com_teststudio_staging
    operation_id: "{{ sec_operation_id }}"
  register: redeployed

- name: Check the site through its virtual host
  fpt.sec.site_health:
    url: http://127.0.0.1/status
    host_header: staging.teststudio.com
    retries: 5
  when: redeployed is changed

- name: Redeploy even though nothing is pending, pinning the Apache instance
  fpt.sec.redeploy:
    site_dir: /var/rails/com_teststudio_prod
    apache_config: /etc/httpd-shotgun/conf/httpd.conf
    force: true
"""

RETURN = r"""
settings:
  description: The settings applied (in check mode, that would be applied).
  returned: success
  type: dict
  sample: {site_url: https://staging.teststudio.com, site_name: Staging, timezone: UTC}
changes:
  description: Keys whose value in the runtime config changes, from the previously applied value (old) to
    the persisted one (new). Empty on a forced redeploy of unchanged settings.
  returned: success
  type: list
  elements: dict
  sample: [{key: site_url, old: "https://staging.teststudio.com", new: "https://staging2.teststudio.com"}]
reason:
  description: Why the redeploy ran (or would run, or did not run).
  returned: success
  type: str
  sample: the settings changed since the last redeploy
pending_redeploy:
  description:
    - Whether a redeploy is still pending after the task. False after a redeploy; in check mode, the
      current state (nothing was applied).
  returned: success
  type: bool
  sample: false
runtime_file:
  description: The runtime config the application boots from.
  returned: success
  type: str
  sample: /var/rails/com_teststudio_staging/shared/config/runtime.json
previous_runtime_file:
  description: Where the runtime config before this redeploy was kept; null when there was none or
    nothing was written.
  returned: success
  type: str
  sample: /var/rails/com_teststudio_staging/shared/config/runtime.json.prev
restarted:
  description: What was (or in check mode, would be) restarted.
  returned: success
  type: dict
  contains:
    app:
      description: The application was told to reload (C(tmp/restart.txt) touched).
      type: bool
    apache:
      description: Apache was restarted gracefully.
      type: bool
  sample: {app: true, apache: true}
apache:
  description: The Apache that serves the site, as found; null when O(restart_apache=false) or nothing was
    to be done.
  returned: success
  type: dict
  contains:
    binary:
      description: The httpd binary.
      type: str
      sample: /usr/sbin/apache2
    server_root:
      description: Its ServerRoot.
      type: str
      sample: /etc/apache2
    config:
      description: Its main configuration file.
      type: str
      sample: /etc/apache2/apache2.conf
    pid:
      description: The master process, the same before and after a graceful restart.
      type: int
      sample: 1234
    command:
      description: The graceful restart command (run, or that would run).
      type: list
      elements: str
      sample: [/usr/sbin/apache2, -d, /etc/apache2, -f, /etc/apache2/apache2.conf, -k, graceful]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.apache_config import ApacheConfigError
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import (
    ApacheInstance,
    ApacheNotFoundError,
    find_binaries,
    locate_apache,
)
from ansible_collections.fpt.sec.plugins.module_utils.discovery import discover_sites
from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module
from ansible_collections.fpt.sec.plugins.module_utils.site_runtime import (
    SettingsFileError,
    dump_json,
    pending_state,
    read_json_object,
    restart_path,
    runtime_document,
    runtime_path,
    settings_path,
    touch,
    write_atomic,
)
from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import SettingsError, validate_document

# -D names that change how httpd runs, not what its configuration says. The server may have been started
# with them (the sandbox runs -DFOREGROUND); passing them to -k graceful would make httpd stay in the
# foreground should it ever start instead of signalling.
PROCESS_DEFINES = frozenset({"FOREGROUND", "NO_DETACH", "ONE_PROCESS", "DEBUG"})


class RedeployError(Exception):
    """The redeploy cannot go on; the message says why and what to do."""


def main() -> None:
    module = site_module(
        argument_spec={
            "force": {"type": "bool", "default": False},
            "apache_config": {"type": "path"},
            "restart_apache": {"type": "bool", "default": True},
            "operation_id": {"type": "str"},
        },
        supports_check_mode=True,
    )
    result, failure = attempt(module)
    if failure is not None:
        module.fail_json(msg=failure)
    module.exit_json(**result)


def attempt(module: AnsibleModule) -> tuple[dict, str | None]:
    # fail_json is called by the caller, outside this except block: Apache not running or a bad setting
    # are expected answers, not crashes, and must not carry a traceback.
    try:
        return redeploy(module), None
    except (RedeployError, SettingsFileError) as exc:
        return {}, str(exc)


def redeploy(module: AnsibleModule) -> dict:
    site_dir: str = module.params["site_dir"]
    settings = read_settings(site_dir)
    state = pending_state(site_dir, settings)
    runtime_file = runtime_path(site_dir)
    result: dict = {
        "changed": False,
        "settings": settings,
        "changes": state["changes"],
        "reason": state["reason"],
        "pending_redeploy": state["pending"],
        "runtime_file": runtime_file,
        "previous_runtime_file": None,
        "restarted": {"app": False, "apache": False},
        "apache": None,
    }
    # A site sec never redeployed has no runtime config: nothing waits to be applied, but a redeploy asked
    # for writes it (from the settings the application already runs), so later changes can be compared.
    first = not os.path.exists(runtime_file)
    if not state["pending"] and not first and not module.params["force"]:
        return result
    if first and not state["pending"]:
        result["reason"] = "the first redeploy by sec: the runtime config is written from the persisted settings"
    elif not state["pending"]:
        result["reason"] = "forced: " + state["reason"]

    # Everything that can refuse comes before the first write: the settings were checked, now Apache is
    # found and its configuration tested, so that a redeploy does not stop half way for a known reason.
    instance = None
    command: list[str] = []
    if module.params["restart_apache"]:
        instance = apache_for_site(module, site_dir)
        base = httpd_argv(instance)
        config_test(module, instance, base)
        command = [*base, "-k", "graceful"]
        result["apache"] = {"binary": base[0], "server_root": instance.server_root, "config": instance.config,
                            "pid": instance.pid, "command": command}

    result["changed"] = True
    result["restarted"] = {"app": True, "apache": instance is not None}
    if module.check_mode:
        return result

    document = runtime_document(settings, site_dir, module.params["operation_id"])
    try:
        result["previous_runtime_file"] = write_atomic(runtime_file, dump_json(document),
                                                       template=settings_path(site_dir), keep_previous=True)
        # After the runtime config is in place: the application re-reads it when it sees the new mtime.
        touch(restart_path(site_dir))
    except OSError as exc:
        raise RedeployError(f"cannot write the runtime config of {site_dir}: {exc}") from None

    if instance is not None:
        graceful(module, instance, command)
    result["pending_redeploy"] = pending_state(site_dir, settings)["pending"]
    return result


def read_settings(site_dir: str) -> dict:
    path = settings_path(site_dir)
    settings, _raw = read_json_object(path)
    if settings is None:
        raise RedeployError(f"{path} does not exist: there are no persisted settings to apply")
    try:
        # Unknown keys got into the file with force; they are passed on. A bad known value is not applied.
        return validate_document(settings, force=True)
    except SettingsError as exc:
        raise RedeployError(f"{path} holds an invalid setting, not applied: {exc} (fix it with "
                            "fpt.sec.site_settings)") from None


def apache_for_site(module: AnsibleModule, site_dir: str) -> ApacheInstance:
    """The running Apache whose configuration serves ``site_dir``, with what running httpd needs (binary,
    ServerRoot, -D names, environment). Uses discovery, so this is the Apache site_facts reports."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv)

    wanted = os.path.realpath(site_dir)

    def serves(found: dict) -> bool:
        return any(os.path.realpath(site["site_dir"]) == wanted for site in found["sites"])

    try:
        found = discover_sites(module.params["apache_config"], run=run)
        configs = [entry["config"] for entry in found["apache"]]
        if len(configs) == 1:
            serving = configs if serves(found) else []
        else:
            # Several instances: discover each on its own to learn which one has the site's vhost.
            serving = [config for config in configs if serves(discover_sites(config, run=run))]
        if not serving:
            raise RedeployError(f"no Apache configuration found on this host has a virtual host for {site_dir} "
                                f"(read: {', '.join(configs)}); give the right one with apache_config")
        instance = locate_apache(serving[0], run=run)[0]
    except (ApacheNotFoundError, ApacheConfigError) as exc:
        raise RedeployError(f"cannot find the Apache of {site_dir}: {exc}") from None

    if instance.pid is None:
        # -k graceful on a stopped server would start one, outside whatever supervises it.
        raise RedeployError(f"the Apache of {site_dir} ({instance.config}) is not running; start it the way "
                            "it is normally started, then run the redeploy again")
    if not instance.binary or not os.path.isabs(instance.binary) or not os.access(instance.binary, os.X_OK):
        # /proc/<pid>/exe is unreadable without privileges; argv[0] may be a bare name.
        name = os.path.basename(instance.binary or "httpd").split(".")[0]
        candidates = find_binaries(names=(name,)) or find_binaries()
        if not candidates:
            raise RedeployError(f"the httpd binary of {instance.config} was not found; run with become")
        instance.binary = candidates[0]
    return instance


def httpd_argv(instance: ApacheInstance) -> list[str]:
    """The command line that names this instance exactly as it runs: binary, -d, -f, -D, -C, -c."""
    argv = [str(instance.binary)]
    if instance.server_root:
        argv += ["-d", instance.server_root]
    argv += ["-f", instance.config]
    for name in instance.defines:
        if name.split("=", 1)[0] not in PROCESS_DEFINES and not name.startswith("DUMP_"):
            argv += ["-D", name]
    for directive in instance.pre_directives:
        argv += ["-C", directive]
    for directive in instance.post_directives:
        argv += ["-c", directive]
    return argv


def _run(module: AnsibleModule, instance: ApacheInstance, argv: list[str]) -> tuple[int, str, str]:
    # The server's own environment: Debian's configuration reads ${APACHE_RUN_DIR} and friends from it.
    rc, out, err = module.run_command(argv, environ_update=dict(instance.env))
    return rc, out, err


def config_test(module: AnsibleModule, instance: ApacheInstance, base: list[str]) -> None:
    # A graceful restart with a broken configuration stops the server; httpd -t finds that first.
    rc, out, err = _run(module, instance, [*base, "-t"])
    if rc != 0:
        detail = " ".join((err or out).split())
        raise RedeployError(f"Apache configuration test failed ({instance.config}), nothing was changed: {detail}")


def graceful(module: AnsibleModule, instance: ApacheInstance, command: list[str]) -> None:
    rc, out, err = _run(module, instance, command)
    if rc != 0:
        detail = " ".join((err or out).split())
        raise RedeployError(f"graceful restart of Apache failed ({' '.join(command)}): {detail}; the application "
                            "was told to reload already; fix Apache and run again with force")
    # The master keeps its pid through a graceful restart; if it exits, the new configuration killed it.
    time.sleep(0.5)
    if instance.pid is not None and not pid_alive(instance.pid):
        raise RedeployError(f"Apache (pid {instance.pid}) stopped after the graceful restart; see its error log")


if __name__ == "__main__":
    main()
