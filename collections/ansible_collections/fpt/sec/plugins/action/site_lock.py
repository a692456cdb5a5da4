# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of fpt.sec.site_lock: who we are, and whether the holder of a lock is still alive.

Only the controller can tell whether the ansible-playbook process that took a lock still runs, so the
module on the App server reports the holder and this plugin decides. If the holder is dead, the plugin
runs the module again with the holder's token, and the lock is taken over only if nobody changed it
in between.
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import socket
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.fpt.sec.plugins.module_utils import site_lock
from ansible_collections.fpt.sec.plugins.module_utils.site_module import SITE_ARGUMENT_SPEC

MODULE = "fpt.sec.site_lock"

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {**SITE_ARGUMENT_SPEC, **site_lock.ARGUMENT_SPEC}


def playbook_pid() -> int:
    """The pid of the ansible-playbook process that runs this task.

    Action plugins run in a worker process that the main ansible-playbook process forked
    (ansible.utils.multiprocessing uses the 'fork' context), so the owner is the worker's parent. A plugin
    run in the main process itself (no worker) is its own owner.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        return parent.pid
    return os.getpid()


def controller_identity() -> dict[str, Any]:
    pid = playbook_pid()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = str(os.getuid())
    return {"host": socket.gethostname(), "pid": pid, "pid_start": site_lock.process_start(pid), "user": user}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            required_if=[("state", "present", ["operation_id"])],
        )[1]
        if args.get("lock_owner") or args.get("takeover_token"):
            raise AnsibleActionFail("lock_owner and takeover_token are set by the site_lock action itself")
        if args.get("finished") is None:
            args.pop("finished", None)  # not given: the module's choices do not take a null
        me = controller_identity()
        args["lock_owner"] = me
        args["takeover_token"] = None
        stale_after = args.get("stale_after")
        if stale_after is None and (task_vars or {}).get("sec_lock_stale_after") not in (None, ""):
            # Set once for every playbook (an AWX job template's extra var): a job killed in another
            # controller's container can only be judged dead by the age of its lock.
            stale_after = int(self._templar.template(task_vars["sec_lock_stale_after"]))
            args["stale_after"] = stale_after

        found = self._execute_module(module_name=MODULE, module_args=dict(args), task_vars=task_vars)
        holder = found.get("holder")
        status, why = site_lock.UNKNOWN, ""
        if holder:
            status, why = site_lock.holder_state(holder, me["host"], stale_after)
            found["holder_status"] = status
            found["holder_reason"] = why

        if args["state"] != "present" or found.get("outcome") != site_lock.HELD_BY_OTHER or not holder:
            result.update(found)
            return result

        if status != site_lock.DEAD:
            advice = "wait for it to finish" if status == site_lock.RUNNING else (
                "wait for it to finish, or if it is dead release it with fpt.sec.site_lock state=absent force=true"
                " (or take it over with stale_after)")
            # Without the module's captured error, Ansible heads the failure with this message, not the module's.
            found.pop("exception", None)
            found["msg"] = f"site {args['site_dir']} is locked by {site_lock.describe(holder)}: {why}; {advice}"
            result.update(found)
            return result

        args["takeover_token"] = holder["token"]
        retry = self._execute_module(module_name=MODULE, module_args=dict(args), task_vars=task_vars)
        if retry.get("outcome") in (site_lock.TAKEN_OVER, site_lock.ACQUIRED):
            # ACQUIRED: the dead lock vanished between our two calls; the warning still names it.
            retry["taken_over"] = holder
            retry["holder_status"] = status
            retry["holder_reason"] = why
            verb = "would take" if self._task.check_mode else "took"
            retry.setdefault("warnings", []).append(
                f"{verb} over the lock of dead {site_lock.describe(holder)} on site {args['site_dir']}: {why}")
        elif retry.get("outcome") == site_lock.HELD_BY_OTHER and retry.get("holder"):
            # Another operation took it between our two calls: name that one, not the dead one.
            retry.pop("exception", None)
            retry["msg"] = (f"site {args['site_dir']} is locked by {site_lock.describe(retry['holder'])}, which took "
                            f"it while the dead lock of operation {holder.get('operation_id')} was cleared")
        result.update(retry)
        return result
