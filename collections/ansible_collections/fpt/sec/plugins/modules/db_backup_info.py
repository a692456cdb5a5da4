#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List a site's database backups, optionally re-reading every file against its manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
module: db_backup_info
short_description: List the database backups in a site's backup folder
version_added: "0.1.0"
author: sec maintainers (!UNKNOWN)
description:
  - Lists the complete backups that M(fpt.sec.db_backup) wrote into C(<site_dir>/db_backup/), newest first, with
    their size, version, start time, age and whether they were verified when made.
  - With O(check_files), every file of every backup is read again and compared with its manifest (size and
    sha256), so a backup damaged since it was made shows as C(damaged) with the first bad file named.
  - Folders without a sec manifest (for example the vendor's own dumps) are not listed and never touched.
extends_documentation_fragment:
  - fpt.sec.site
options:
  check_files:
    description: Re-read every file and compare it with the manifest; slower, as it reads every backup in full.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the App server.
"""

EXAMPLES = r"""
- name: List the backups of a site, checking their files
  fpt.sec.db_backup_info:
    site_dir: /var/rails/com_teststudio_prod
    check_files: true
  register: backups
"""

RETURN = r"""
backups:
  description: The backups, newest first.
  type: list
  elements: dict
  returned: always
  contains:
    name:
      description: The backup's folder name, which restore takes.
      type: str
    path:
      description: Its full path.
      type: str
    version:
      description: The site's version when it was made.
      type: str
    started:
      description: When the dump started, UTC, ISO 8601.
      type: str
    age_seconds:
      description: Seconds since it started.
      type: int
    size:
      description: Bytes of dump data.
      type: int
    verified:
      description: Whether it was verified when made.
      type: bool
    kind:
      description:
        - V(safety) for a backup taken before data was overwritten (a label starting with C(before-) or
          C(pre-)), with its own retention rule; V(ordinary) otherwise.
      type: str
    state:
      description: C(verified), C(unverified), or with O(check_files) C(damaged).
      type: str
    problem:
      description: With O(check_files), the first bad file of a damaged backup.
      type: str
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.db_backups import (
    BackupError,
    list_backups,
    read_manifest,
    verify_files,
)


def _age(started: str | None) -> int | None:
    if not started:
        return None
    try:
        moment = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((datetime.datetime.now(datetime.timezone.utc) - moment).total_seconds())


def main() -> None:
    module = AnsibleModule(
        argument_spec={"site_dir": {"type": "path", "required": True},
                       "check_files": {"type": "bool", "default": False}},
        supports_check_mode=True,
    )
    site_dir = module.params["site_dir"]
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist: refresh the inventory (sec cluster connect)")
    backups = []
    for entry in reversed(list_backups(site_dir)):
        entry["age_seconds"] = _age(entry.get("started"))
        entry["state"] = "verified" if entry.get("verified") else "unverified"
        if module.params["check_files"]:
            try:
                verify_files(entry["path"], read_manifest(entry["path"]))
            except BackupError as exc:
                entry["state"], entry["problem"] = "damaged", str(exc)
        backups.append(entry)
    module.exit_json(changed=False, backups=backups)


if __name__ == "__main__":
    main()
