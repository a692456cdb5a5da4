#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: room
short_description: Refuse an operation up front when a host lacks the free space it will write
version_added: "0.3.0"
description:
  - Room first. Compares the free space of the file system that holds O(path), or the data directory of the
    PostgreSQL server of this host that listens on O(postgres_port), with O(needed_bytes).
  - Fails with one line that gives both numbers and O(fix) when the space is short, and changes nothing in
    any case. Playbooks run it on a host that the module doing the work cannot see, such as a DB server of
    its own, with the estimate that module returned from its check run.
  - When the data directory cannot be told (no PostgreSQL server of this host listens on that port, or the
    SSH user may not read it), the result says so, with a warning, and the module does not fail.
author:
  - sec maintainers (!UNKNOWN)
options:
  path:
    description:
      - A path on the file system to check. A missing path is measured at its nearest existing parent.
      - Exactly one of O(path) and O(postgres_port) is given.
    type: path
  postgres_port:
    description:
      - The port of a PostgreSQL server on this host. Its data directory is found from its running postmaster.
    type: int
  needed_bytes:
    description: The bytes the operation will write there.
    type: int
    required: true
  what:
    description: What needs the space, as the refusal names it.
    type: str
    default: this operation
  why:
    description: How the estimate was made, shown in brackets in the refusal.
    type: str
    default: estimated
  fix:
    description: What the user can do about it, shown in the refusal.
    type: str
    default: free space there
  writable:
    description:
      - Also fail unless the SSH user may write there (O(path), or its nearest existing parent when it does
        not exist yet). Nothing is written to find out.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module only reads; in check mode it refuses as the real run would.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: Check the DB server can hold a fresh copy of the database
  fpt.sec.room:
    postgres_port: 5432
    needed_bytes: "{{ restore_check.room.needed_bytes }}"
    what: this restore
    why: a fresh database beside the live one
    fix: free space there, or use --keep-replaced 0
  delegate_to: db1
"""

RETURN = r"""
checked:
  description: Whether the free space could be measured.
  returned: always
  type: bool
  sample: true
path:
  description: The directory measured (the PostgreSQL data directory for O(postgres_port)).
  returned: when checked
  type: str
  sample: /var/lib/postgresql/15/main
free_bytes:
  description: Free bytes there, for an unprivileged writer.
  returned: when checked
  type: int
  sample: 3328599654
needed_bytes:
  description: O(needed_bytes), as compared.
  returned: always
  type: int
  sample: 4724464025
"""

import getpass
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils import room


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path"},
            "postgres_port": {"type": "int"},
            "needed_bytes": {"type": "int", "required": True},
            "what": {"type": "str", "default": "this operation"},
            "why": {"type": "str", "default": "estimated"},
            "fix": {"type": "str", "default": "free space there"},
            "writable": {"type": "bool", "default": False},
        },
        required_one_of=[("path", "postgres_port")],
        mutually_exclusive=[("path", "postgres_port")],
        supports_check_mode=True,
    )
    params = module.params
    needed = max(int(params["needed_bytes"]), 0)
    path = params["path"] or room.postgres_data_dir(params["postgres_port"])
    if path is None:
        module.warn(f"no PostgreSQL data directory readable here for port {params['postgres_port']}: "
                    "its free space was not checked")
        module.exit_json(changed=False, checked=False, needed_bytes=needed)
    free = room.free_bytes(path)
    result = {"changed": False, "checked": True, "path": path, "free_bytes": free, "needed_bytes": needed}
    if params["writable"]:
        nearest = room.nearest_existing(path)
        if not (os.path.isdir(nearest) and os.access(nearest, os.W_OK | os.X_OK)):
            module.fail_json(msg=f"{path} is not writable by {getpass.getuser()} here ({nearest} is the nearest "
                                 "existing folder): give a folder this user may write, or fix its permissions",
                             **result)
    refused = room.refusal(path, free, needed, params["what"], params["why"], params["fix"])
    if refused:
        module.fail_json(msg=refused, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
