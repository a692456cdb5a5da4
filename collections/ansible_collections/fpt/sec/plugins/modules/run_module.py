#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation stub: fpt.sec.run_module is an action plugin (plugins/action/run_module.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: run_module
short_description: Run one of the fpt.sec modules on a site, with the site's own values filled in
version_added: "0.1.0"
author: sec maintainers (!UNKNOWN)
description:
  - Runs the fpt.sec module O(name) with O(args), adding the options that module declares and that the site's
    inventory facts answer (C(site_dir), C(site), C(site_name), C(url) from the site's health URL, C(host_header)).
  - The engine behind C(playbooks/advanced/run_module.yml) and C(sec advanced run).
options:
  name:
    description: Short name of the module to run, for example C(maintenance) or C(db_backup).
    type: str
    required: true
  site:
    description: The site's inventory facts (an entry of C(sec_sites)).
    type: dict
    default: {}
  args:
    description: The module's own arguments.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: The module runs in check mode when the task does.
  diff_mode:
    support: none
    description: The module it runs reports its own diff, if any.
  platform:
    support: full
    platforms: posix
    description: Runs on the App server, as the module it runs does.
notes:
  - An option given in O(args) wins over the value taken from the site.
"""

EXAMPLES = r"""
- name: Put a site in maintenance the low-level way
  fpt.sec.run_module:
    name: maintenance
    site: "{{ sec_sites['com_teststudio_prod'] }}"
    args:
      state: "on"
"""

RETURN = r"""
module:
  description: The module that ran.
  type: str
  returned: always
  sample: fpt.sec.maintenance
module_args:
  description: The arguments it ran with, site values included.
  type: dict
  returned: always
"""
