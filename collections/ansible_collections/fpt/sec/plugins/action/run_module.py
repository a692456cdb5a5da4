# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of fpt.sec.run_module: runs one of this collection's modules on a site.

It fills the options the chosen module declares from the site's inventory facts (site_dir, the site's
name, its health URL), so `sec advanced run MODULE SITE key=value` and an AWX job template need only the
module's own arguments. A module with a controller side of its own (site_lock) runs through it.
"""

from __future__ import annotations

import copy
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import module_loader
from ansible_collections.fpt.sec.plugins.plugin_utils.module_docs import module_doc

COLLECTION = "fpt.sec"
# Options a module may declare, and where their value comes from in the site's inventory facts.
SITE_DEFAULTS = {"site_dir": "site_dir", "site": "name", "site_name": "name", "url": "health_url",
                 "host_header": "name"}


def module_options(fqcn: str) -> dict[str, Any]:
    path = module_loader.find_plugin(fqcn)
    if not path:
        raise AnsibleActionFail(f"{fqcn} is not a module of this collection: see `sec advanced list`")
    return module_doc(path)["options"]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("name", "site", "args"))

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        name = str(self._task.args.get("name") or "")
        if not name or "." in name or name == "run_module":
            raise AnsibleActionFail("name: give a module of fpt.sec by its short name, e.g. maintenance")
        fqcn = f"{COLLECTION}.{name}"
        site = self._task.args.get("site") or {}
        args = dict(self._task.args.get("args") or {})
        options = module_options(fqcn)
        unknown = sorted(set(args) - set(options))
        if unknown:
            raise AnsibleActionFail(f"{fqcn} has no option {', '.join(unknown)}; it takes {', '.join(sorted(options))}")
        for option, key in SITE_DEFAULTS.items():
            if option in options and option not in args and site.get(key):
                args[option] = site[key]
        action = self._shared_loader_obj.action_loader.get(fqcn, task=self._sub_task(fqcn, args),
                                                           connection=self._connection,
                                                           play_context=self._play_context, loader=self._loader,
                                                           templar=self._templar,
                                                           shared_loader_obj=self._shared_loader_obj)
        if action is not None:
            result.update(action.run(task_vars=task_vars))
        else:
            result.update(self._execute_module(module_name=fqcn, module_args=args, task_vars=task_vars))
        result["module"] = fqcn
        result["module_args"] = args
        return result

    def _sub_task(self, fqcn: str, args: dict) -> Any:
        task = copy.copy(self._task)
        task.action = fqcn
        task.args = args
        return task
