#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_prune
short_description: Remove a site's old staged releases, keeping the newest ones
version_added: "0.1.0"
description:
  - Keeps the O(keep) newest releases under C(<site_dir>/releases/) (by version), the release C(current)
    points at, and any listed in O(protect). Every other C(releases/<version>) folder is removed.
  - Also removes hidden folders that a killed staging left under C(releases/) (C(.*.partial), C(.*.new),
    C(.*.sec-old-*)), once they are an hour old.
  - Folders under C(releases/) whose names are not versions are never touched.
extends_documentation_fragment:
  - fpt.sec.site
options:
  keep:
    description: How many of the newest releases to keep, the current one included. At least 1.
    type: int
    default: 3
  protect:
    description: Versions to keep whatever their age, for example the release an upgrade came from.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what would be removed.
  diff_mode:
    support: none
    description: Use RV(removed).
seealso:
  - module: fpt.sec.release_stage
"""

EXAMPLES = r"""
- name: Keep the three newest releases
  fpt.sec.release_prune:
    site_dir: /var/rails/com_teststudio_prod
    keep: 3
"""

RETURN = r"""
removed:
  description: The versions removed (or that would be), oldest first.
  returned: always
  type: list
  elements: str
  sample: [8.0.0, 8.1.2]
kept:
  description: The versions kept.
  returned: always
  type: list
  elements: str
  sample: [8.2.0, 8.3.0]
leftovers_removed:
  description: Hidden folders of killed stagings removed (or that would be).
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible_collections.fpt.sec.plugins.module_utils import site_releases
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version


def main() -> None:
    module = site_module(
        argument_spec={
            "keep": {"type": "int", "default": 3},
            "protect": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    site_dir = os.path.abspath(params["site_dir"])
    if params["keep"] < 1:
        module.fail_json(msg=f"keep must be 1 or more (the current release is always kept), got {params['keep']}")
    try:
        protect = [str(Version(v)) for v in params["protect"]]
    except ValueError as exc:
        module.fail_json(msg=f"protect: {exc}")
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist on this host")

    remove, kept = site_releases.prune_plan(site_dir, params["keep"], protect)
    stale = site_releases.leftovers(site_dir)
    result = {"changed": bool(remove or stale), "removed": remove, "kept": kept,
              "leftovers_removed": [os.path.basename(p) for p in stale]}
    if module.check_mode:
        module.exit_json(**result)
    for version in remove:
        try:
            site_releases.remove_tree(site_releases.release_dir(site_dir, version))
        except OSError as exc:
            module.fail_json(msg=f"cannot remove release {version}: {exc}", **result)
    for path in stale:
        try:
            site_releases.remove_tree(path)
        except OSError as exc:
            module.warn(f"cannot remove the leftover {path}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
