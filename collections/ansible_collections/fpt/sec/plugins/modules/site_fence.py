#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_fence
short_description: Read, set or clear the mark of a site that needs repair
version_added: "0.2.0"
description:
  - The mark C(<site_dir>/tmp/sec-repair.json) says that a server of the site was lost while the database's
    schema moved (an upgrade's or a restore's window), so that it may serve a release the database does not
    match. The lost server keeps its maintenance page; every server it can still reach gets the mark.
  - While any server of a site has the mark, every operation that changes the site refuses before it starts,
    naming C(sec site repair SITE). The repair playbook aligns every web head on the release that matches the
    database, then clears the mark.
  - O(state=query) also reports a broken site, one whose C(current) points at a release that is missing.
extends_documentation_fragment:
  - fpt.sec.site
options:
  state:
    description:
      - V(query) reads the mark, V(present) sets it (hosts add up with a mark already there), V(absent) clears it.
    type: str
    choices: [query, present, absent]
    default: query
  hosts:
    description: The servers that may not match the database. Required with O(state=present).
    type: list
    elements: str
    default: []
  reason:
    description: What happened, in one line, for the refusals that name the repair.
    type: str
  operation_id:
    description: The operation setting the mark.
    type: str
  operation:
    description: The operation's name (upgrade, restore).
    type: str
  site_name:
    description: The site's name, for RV(refusal). Defaults to the name of O(site_dir)'s folder.
    type: str
  server:
    description: This server's name in the inventory, for RV(refusal).
    type: str
  allow:
    description:
      - With O(state=query), what RV(refusal) lets pass. V(repair_needed) lets a marked site pass (the repair
        itself, a backup, maintenance on), V(broken) a broken one.
    type: list
    elements: str
    choices: [repair_needed, broken]
    default: []
attributes:
  check_mode:
    support: full
    description: Reports whether the mark would be written or removed.
  diff_mode:
    support: none
    description: Use RV(mark).
seealso:
  - module: fpt.sec.upgrade_journal
  - module: fpt.sec.release_activate
"""

EXAMPLES = r"""
- name: Refuse to change a site that needs repair
  fpt.sec.site_fence:
    site_dir: /var/rails/com_teststudio_prod
  register: fence

- name: Mark the site after app2 was lost in the window
  fpt.sec.site_fence:
    site_dir: /var/rails/com_teststudio_prod
    state: present
    hosts: [app2]
    reason: app2 stopped answering over SSH in the upgrade's window
    operation: upgrade
"""

RETURN = r"""
fenced:
  description: Whether the mark is there after the task.
  returned: always
  type: bool
  sample: false
mark:
  description: The mark after the task (as found for O(state=query)), null when there is none.
  returned: always
  type: dict
  sample: {hosts: [app2], reason: app2 stopped answering over SSH in the upgrade's window, operation: upgrade}
broken:
  description: Why the site serves nothing (C(current) names a missing release), null when it is sound.
  returned: always
  type: str
  sample: current -> releases/8.2.0 is missing
refusal:
  description:
    - With O(state=query), the one line that refuses an operation on this site (it names C(sec site repair)),
      null when the operation may go on (see O(allow)).
  returned: always
  type: str
  sample: "prod.teststudio.com needs repair (app2 stopped answering): run sec site repair prod.teststudio.com first"
mark_path:
  description: The mark's file.
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/tmp/sec-repair.json
"""

import os

from ansible_collections.fpt.sec.plugins.module_utils import site_fence
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module


def main() -> None:
    module = site_module(
        argument_spec={
            "state": {"type": "str", "choices": ["query", "present", "absent"], "default": "query"},
            "hosts": {"type": "list", "elements": "str", "default": []},
            "reason": {"type": "str"},
            "operation_id": {"type": "str"},
            "operation": {"type": "str"},
            "site_name": {"type": "str"},
            "server": {"type": "str"},
            "allow": {"type": "list", "elements": "str", "choices": ["repair_needed", "broken"],
                      "default": []},
        },
        required_if=[("state", "present", ("hosts", "reason"))],
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist on this host")
    found = site_fence.read(site_dir)
    broken = site_fence.broken_current(site_dir)
    result = {"changed": False, "mark": found, "fenced": found is not None, "broken": broken,
              "mark_path": site_fence.mark_path(site_dir), "refusal": None}
    if params["state"] == "query":
        result["refusal"] = site_fence.refusal(params["site_name"] or os.path.basename(site_dir),
                                               params["server"], found, broken, params["allow"])
    try:
        if params["state"] == "present":
            if not params["hosts"]:
                module.fail_json(msg="hosts must name at least one server", **result)
            mark = site_fence.new_mark(params["operation_id"], params["operation"], params["hosts"],
                                       params["reason"])
            result.update(changed=True, fenced=True, mark=mark)
            if not module.check_mode:
                site_fence.write(site_dir, mark)
                result["mark"] = site_fence.read(site_dir)
        elif params["state"] == "absent" and found is not None:
            result.update(changed=True, fenced=False, mark=None)
            if not module.check_mode:
                site_fence.remove(site_dir)
    except site_fence.FenceError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
