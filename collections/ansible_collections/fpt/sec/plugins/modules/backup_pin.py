#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_pin
short_description: Pin a backup, or a backup host's copy of it, against retention (or unpin it)
version_added: "0.3.0"
description:
  - Pins the backup O(backup) in O(backups_dir) - a site's C(db_backup) folder on its App server, or a backup
    host's folder of the site's copies - with a C(.sec-pinned) file in it. No retention pass of
    M(fpt.sec.db_backup) or M(fpt.sec.backup_copy) removes a pinned backup. O(pinned=false) removes the pin.
  - Each place keeps its own pin; a copy never carries the pin of the backup it was made from.
  - A backup that is not in O(backups_dir) is reported with RV(found=false), not as a failure - a backup host
    may hold a copy the App server lost, and the reverse. A backup that a retention pass removed while it
    was being pinned is found to be gone after the pin is written, and reported the same way.
author:
  - sec maintainers (!UNKNOWN)
options:
  backups_dir:
    description: The folder that holds the backup's folder.
    type: path
    required: true
  backup:
    description: The backup's folder name, as M(fpt.sec.db_backup_info) lists it.
    type: str
    required: true
  pinned:
    description: Pin (V(true)) or unpin (V(false)).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Says whether the pin would change; writes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
seealso:
  - module: fpt.sec.db_backup
  - module: fpt.sec.backup_copy
"""

EXAMPLES = r"""
- name: Keep the backup taken before the 9.0 upgrade, whatever retention says
  fpt.sec.backup_pin:
    backups_dir: /var/rails/com_teststudio_prod/db_backup
    backup: 20240501T120000Z_8.0.0_before-upgrade
"""

RETURN = r"""
found:
  description: Whether the backup is in O(backups_dir).
  returned: always
  type: bool
  sample: true
pinned:
  description: Whether the backup is pinned here now (or would be, in check mode).
  returned: always
  type: bool
  sample: true
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils import db_backups


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "backups_dir": {"type": "path", "required": True},
            "backup": {"type": "str", "required": True},
            "pinned": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    name, want = str(module.params["backup"]), module.params["pinned"]
    if not db_backups._NAME_RE.match(name) or ".." in name:
        module.fail_json(msg=f"backup {name!r}: give the folder name of a backup, as `sec backups SITE` lists it, "
                             "not a path")
    folder = os.path.join(os.path.abspath(module.params["backups_dir"]), name)
    manifest = os.path.join(folder, db_backups.MANIFEST)
    if not os.path.isfile(manifest):
        module.exit_json(changed=False, found=False, pinned=False)
    if module.check_mode:
        module.exit_json(changed=db_backups.is_pinned(folder) != want, found=True, pinned=want)
    try:
        changed = db_backups.set_pin(folder, want)
    except FileNotFoundError:
        # The folder went while we pinned it (a retention pass): it is not here any more.
        module.exit_json(changed=False, found=False, pinned=False)
    except OSError as exc:
        module.fail_json(msg=f"could not {'pin' if want else 'unpin'} backup {name} in {folder}: {exc.strerror}")
    # A retention pass that read the pins just before ours removes the folder, pin and all.
    found = os.path.isfile(manifest)
    module.exit_json(changed=changed and found, found=found, pinned=want and found)


if __name__ == "__main__":
    main()
