#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_copy_info
short_description: List a backup host's copies of a site's backups, with their state
version_added: "0.3.0"
description:
  - Runs on a backup host. Lists the copies M(fpt.sec.backup_copy) keeps in O(copies_dir), oldest first, each
    with its state - C(verified) with the time of the last full check, C(damaged) when a check failed, else
    C(unverified).
  - Without O(check_files), only the manifest's seal and the files' sizes are checked (a damage found by an
    earlier full check stays listed); with it, every file is read against its sha256 and the outcome is
    recorded in the copy's C(sec-copy.json).
author:
  - sec maintainers (!UNKNOWN)
options:
  copies_dir:
    description: This host's folder for the site's copies.
    type: path
    required: true
  check_files:
    description: Re-read every file of every copy against its manifest (a flipped byte is found).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads and lists; a full check's outcome is still recorded with the copy.
  diff_mode:
    support: none
    description: Nothing to diff.
seealso:
  - module: fpt.sec.backup_copy
"""

EXAMPLES = r"""
- name: List the copies on the NAS, re-reading every file
  fpt.sec.backup_copy_info:
    copies_dir: /srv/sec-backups/studio/com_teststudio_prod
    check_files: true
  register: copies
"""

RETURN = r"""
copies:
  description:
    - Every copy, oldest first - C(name), C(started), C(version), C(label), C(size), C(state), C(verified_at),
      C(problem), C(pinned).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "20240501T120000Z_8.0.0", "state": "verified", "verified_at": "2024-05-01T12:03:00Z"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.backup_copies import list_copies


def main() -> None:
    module = AnsibleModule(
        argument_spec={"copies_dir": {"type": "path", "required": True},
                       "check_files": {"type": "bool", "default": False}},
        supports_check_mode=True,
    )
    module.exit_json(changed=False, copies=list_copies(module.params["copies_dir"], module.params["check_files"]))


if __name__ == "__main__":
    main()
