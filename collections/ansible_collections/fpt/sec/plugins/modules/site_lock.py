#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_lock
short_description: Take, release or inspect the lock that allows one operation per site at a time
version_added: "0.1.0"
description:
  - Every operation that changes a site holds this lock while it runs. The lock is the file
    C(<site_dir>/tmp/sec-operation.lock) on the App server. It is created atomically (it never
    overwrites another lock, and readers never see it half written).
  - The file is JSON and records the operation id, the controller host, the pid of the
    C(ansible-playbook) process there and that process's start time, the controller user, and when the
    lock was taken.
  - With O(state=present), a lock held by another operation fails the task with one line naming the
    holder's operation id and when it started, unless the holder is dead. Then the lock is taken over and
    the task warns, naming the dead operation.
  - While a module of the operation works on the App server, the lock also records that module's pid
    there (C(work)). A holder whose remote work still runs is never dead, whatever became of its
    controller (a killed C(sec) or C(ansible-playbook) leaves its module running); this is checked on the
    App server, also just before a takeover.
  - Otherwise whether a holder is dead is decided on the controller by the action plugin of the same name.
    If the holder ran on this same controller host, its pid must be gone, or now belong to a process with
    another start time. A holder on another controller cannot be checked, so it counts as dead only when it is
    older than O(stale_after).
  - Taking a lock that this same O(operation_id) already holds changes nothing.
extends_documentation_fragment:
  - fpt.sec.site
options:
  state:
    description:
      - V(present) takes the lock, V(absent) releases it, V(query) only reports who holds it.
    type: str
    choices: [present, absent, query]
    default: present
  operation_id:
    description:
      - The id of the operation taking or releasing the lock, for example C(awx-1234).
      - With O(state=query), the operation whose outcome on this host to report (RV(operation_outcome)).
      - Required with O(state=present). With O(state=absent) the lock is released only if this operation
        holds it, unless O(force=true).
    type: str
  finished:
    description:
      - With O(state=absent), how the operation ended, recorded on this host before the lock is released, in
        C(<site_dir>/tmp/sec-outcomes/<operation_id>.json). V(completed) when every step of it ran, else
        V(failed). A controller killed afterwards is then settled from it; a run that never reached its
        release is settled as interrupted, whatever its last step did.
    type: str
    choices: [completed, failed]
  force:
    description:
      - With O(state=absent), release the lock whoever holds it. Use it to clear a lock that you know is
        stale.
    type: bool
    default: false
  stale_after:
    description:
      - Age in seconds after which another controller's lock, or an unreadable lock file, counts as dead
        and may be taken over. A holder on this controller is judged by its process alone and never goes
        stale while that process runs.
      - Not set means the play variable C(sec_lock_stale_after) when it is defined (one setting for every
        playbook, for example on an AWX job template), else never, so locks from other controllers must then
        be released with O(force=true).
    type: int
  lock_owner:
    description:
      - Set by the action plugin with the controller's identity (host, pid, pid_start, user). Do not set
        it yourself.
    type: dict
  takeover_token:
    description:
      - Set by the action plugin when it judged the holder dead. The lock is replaced only if it still
        carries this token. Do not set it yourself.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would be taken, taken over or released, and writes nothing.
  diff_mode:
    support: none
    description: Use the returned O(state=query) record instead.
  action:
    support: full
    description: The action plugin decides on the controller whether a holder is dead.
notes:
  - The lock lives on the host the task runs on. In a playbook that targets several App servers of one
    site, take it with C(run_once) so that every operation locks the same host.
  - Controllers running in short-lived containers (AWX execution environments) have their own host
    names, so their dead locks are only taken over past O(stale_after), or released with O(force=true).
"""

EXAMPLES = r"""
- name: Lock the site for this operation
  fpt.sec.site_lock:
    site_dir: "{{ sec_site.site_dir }}"
    operation_id: "{{ sec_operation_id }}"
  run_once: true

- name: Release it, only if this operation holds it, recording whether every step ran
  fpt.sec.site_lock:
    site_dir: "{{ sec_site.site_dir }}"
    operation_id: "{{ sec_operation_id }}"
    state: absent
    finished: "{{ 'completed' if sec_work_done | default(false) | bool else 'failed' }}"
  run_once: true

- name: Who holds the lock?
  fpt.sec.site_lock:
    site_dir: /var/rails/com_teststudio_prod
    state: query
  register: site_lock

- name: Clear a lock that another controller left, four hours old or more
  fpt.sec.site_lock:
    site_dir: /var/rails/com_teststudio_prod
    operation_id: manual-cleanup
    stale_after: 14400

- name: Release whatever lock is there
  fpt.sec.site_lock:
    site_dir: /var/rails/com_teststudio_prod
    state: absent
    force: true
"""

RETURN = r"""
lock_path:
  description:
    - The lock file. (Not named C(path), which would make Ansible add the file's owner, mode and a
      C(state) of its own to the result.)
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/tmp/sec-operation.lock
outcome:
  description:
    - What happened. V(acquired), V(already_held) (this operation already had it), V(taken_over) (from a
      dead holder), V(held_by_other) (the task fails), V(released), V(not_held) (nothing to release or held
      by another operation), or V(query).
  returned: always
  type: str
  sample: acquired
held:
  description: Whether a lock is in place after the task (or would be, in check mode).
  returned: always
  type: bool
  sample: true
lock:
  description:
    - The lock in force after the task. For O(state=present) it is this operation's lock, for
      O(state=query) the current holder. Null when there is none.
  returned: always
  type: dict
  contains:
    format:
      description: Version of the lock file format, currently 1.
      type: int
    operation_id:
      description: The operation holding the lock.
      type: str
      sample: awx-1234
    token:
      description: Unique per acquisition.
      type: str
    owner_host:
      description: Host name of the controller that runs the operation.
      type: str
      sample: awx-task-7f9c
    owner_pid:
      description: Pid of the C(ansible-playbook) process on that controller.
      type: int
      sample: 4242
    owner_pid_start:
      description: That process's start identity (boot id and start time in ticks), null where unknown.
      type: str
    owner_user:
      description: The user the controller runs as.
      type: str
      sample: awx
    started:
      description: When the lock was taken, UTC ISO 8601.
      type: str
      sample: "2024-05-01T12:00:00Z"
    started_epoch:
      description: The same as seconds since the epoch.
      type: float
    age_seconds:
      description: How long the lock has been held, by the App server's clock.
      type: float
    unreadable:
      description: Present and true when the lock file is not a valid lock record.
      type: bool
    work:
      description:
        - Present while a module of the operation works on the App server, with its C(module), C(pid),
          C(pid_start) and C(started) there.
      type: dict
    work_running:
      description: For a holder, whether that remote work still runs, judged on the App server.
      type: bool
  sample:
    format: 1
    operation_id: awx-1234
    token: 2b1f0c9e8d7a4b3c9f6e5d4c3b2a1908
    owner_host: awx-task-7f9c
    owner_pid: 4242
    owner_pid_start: "3c1e...:81234567"
    owner_user: awx
    started: "2024-05-01T12:00:00Z"
    started_epoch: 1714564800.0
holder:
  description:
    - The other lock found. That is the dead holder for V(taken_over), the live one for V(held_by_other),
      the one left in place for V(not_held), and the current one for V(query). Same keys as RV(lock).
  returned: when another operation's lock was found, and always with O(state=query) (null when free)
  type: dict
holder_status:
  description:
    - V(running) or V(dead), as judged from the controller. V(unknown) when the holder's owner cannot be
      checked (another controller) and it is not past O(stale_after).
  returned: when a holder was found
  type: str
  sample: running
holder_reason:
  description: Why the holder counts as running, dead or unknown.
  returned: when a holder was found
  type: str
  sample: its process 4242 on ctl1 is gone
taken_over:
  description: The dead holder's record, when its lock was taken over.
  returned: when RV(outcome) is V(taken_over)
  type: dict
operation_outcome:
  description:
    - With O(state=query) and O(operation_id), what that operation's modules did on this host, from
      C(<site_dir>/tmp/sec-outcomes/<operation_id>.json). C(state) is V(running) while a step's process
      runs, else the last step's V(completed), V(failed) or V(killed) (its process ended without
      recording an end). Null when no module of that operation ran here.
  returned: with O(state=query)
  type: dict
  sample: {operation_id: 20240501T120000Z-1a2b, state: completed,
           steps: [{module: events_trim, pid: 5123, state: completed, msg: "2400 events ... archived"}]}
holder_outcome:
  description: For V(taken_over), how the dead holder's work ended on this host (same shape as RV(operation_outcome)).
  returned: when RV(outcome) is V(taken_over)
  type: dict
site_version:
  description:
    - The version of the release the site's C(current) link points at, read once the lock is held (for
      O(state=query), read as is). Null when it cannot be read. An operation that must refuse a site on the
      wrong release checks it here, under its lock, without a task of its own.
  returned: when O(state=present) or O(state=query) succeeds
  type: str
  sample: 8.0.0
"""

from ansible_collections.fpt.sec.plugins.module_utils import site_lock, site_work
from ansible_collections.fpt.sec.plugins.module_utils.site_model import read_running_version
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module


def main() -> None:
    module = site_module(
        argument_spec=site_lock.ARGUMENT_SPEC,
        required_if=[("state", "present", ["operation_id"])],
        supports_check_mode=True,
    )
    params = module.params
    path = site_lock.lock_path(params["site_dir"])
    state = params["state"]
    try:
        if state == "query":
            holder = site_lock.with_work_state(site_lock.with_age(site_lock.read_lock(path)))
            # With an operation id: what that operation's modules did on this host (a killed controller's
            # history asks this).
            done = site_work.read_outcome(params["site_dir"], params["operation_id"]) if params["operation_id"] \
                else None
            module.exit_json(changed=False, lock_path=path, outcome="query", held=holder is not None, lock=holder,
                             holder=holder, site_version=read_running_version(params["site_dir"])[0],
                             operation_outcome=done)
        elif state == "present":
            found = site_lock.acquire(path, params["operation_id"], params["lock_owner"] or {},
                                      check_mode=module.check_mode, takeover_token=params["takeover_token"])
        else:
            if params["finished"] and params["operation_id"] and not module.check_mode:
                holder = site_lock.read_lock(path)
                if holder and holder.get("operation_id") == params["operation_id"]:
                    warning = site_work.record_finished(params["site_dir"], params["operation_id"],
                                                        params["finished"])
                    if warning:
                        module.warn(warning)
            found = site_lock.release(path, params["operation_id"], force=params["force"],
                                      check_mode=module.check_mode)
    except site_lock.LockError as exc:
        module.fail_json(msg=str(exc), lock_path=path)

    outcome = found["outcome"]
    result = {"lock_path": path, "outcome": outcome, "holder": found.get("holder")}
    if outcome == site_lock.HELD_BY_OTHER:
        # The action plugin turns this into a takeover when the holder is dead, else keeps the failure.
        module.fail_json(msg=f"site {params['site_dir']} is locked by {site_lock.describe(found['holder'])}",
                         held=True, lock=found["holder"], **result)
    if outcome == site_lock.TAKEN_OVER and found.get("holder"):
        # How the dead holder's work ended on this host, for the controller to put in its history.
        result["holder_outcome"] = site_work.read_outcome(params["site_dir"], found["holder"].get("operation_id"))
    if outcome in (site_lock.ACQUIRED, site_lock.ALREADY_HELD, site_lock.TAKEN_OVER):
        module.exit_json(changed=outcome != site_lock.ALREADY_HELD, held=True, lock=found["lock"],
                         site_version=read_running_version(params["site_dir"])[0], **result)
    if outcome == site_lock.RELEASED:
        module.exit_json(changed=True, held=False, lock=None, **result)
    note = "no lock to release" if found["holder"] is None else (
        f"left in place: held by {site_lock.describe(found['holder'])}, not by this operation "
        "(force=true releases it)")
    module.exit_json(changed=False, held=found["holder"] is not None, lock=found["holder"], msg=note, **result)


if __name__ == "__main__":
    main()
