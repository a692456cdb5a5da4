#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_match
short_description: Tell which staged releases match the schema of the site's database
version_added: "0.2.0"
description:
  - Reads C(schema_migrations) of the site's database (from C(shared/config/database.yml)) and compares it
    with the migrations each staged release ships (C(releases/<version>/db/migrate/), or its manifest). A
    release matches when the database has every migration it ships and none it does not ship, so that its
    code and the schema agree.
  - Read-only; runs on an App server. C(sec site repair) uses it to choose the release every web head must
    run.
extends_documentation_fragment:
  - fpt.sec.site
options:
  versions:
    description: The staged releases to compare. Defaults to every release staged under C(releases/).
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
seealso:
  - module: fpt.sec.db_migrate
  - module: fpt.sec.site_fence
"""

EXAMPLES = r"""
- name: Which release matches the database?
  fpt.sec.release_match:
    site_dir: /var/rails/com_teststudio_prod
  register: match
"""

RETURN = r"""
schema_version:
  description: The highest version in C(schema_migrations).
  returned: always
  type: str
  sample: "20200601000000"
applied_count:
  description: How many migrations the database has.
  returned: always
  type: int
  sample: 2
releases:
  description: Per release compared, ascending, whether it matches, the migrations it ships that the database
    lacks and those the database has that it does not ship.
  returned: always
  type: list
  elements: dict
  sample: [{version: 8.2.0, matches: false, missing: ["20201001000000"], extra: []}]
matching:
  description: The versions that match, ascending.
  returned: always
  type: list
  elements: str
  sample: [8.1.0]
"""

import os

from ansible_collections.fpt.sec.plugins.module_utils import site_releases
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PostgresError
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_database, site_module
from ansible_collections.fpt.sec.plugins.module_utils.versions import Version


def main() -> None:
    module = site_module(
        argument_spec={
            "versions": {"type": "list", "elements": "str"},
        },
        supports_check_mode=True,
    )
    site_dir = os.path.abspath(module.params["site_dir"])
    try:
        versions = sorted({str(Version(v)) for v in module.params["versions"]} if module.params["versions"]
                          is not None else site_releases.staged_versions(site_dir), key=Version)
    except ValueError as exc:
        module.fail_json(msg=f"versions: {exc}")
    client = site_database(module, site_dir)
    with client:
        try:
            applied = client.applied_migrations()
        except PostgresError as exc:
            module.fail_json(msg=f"cannot read the applied migrations of {client.database}: {exc}")
    releases = []
    for version in versions:
        folder = site_releases.release_dir(site_dir, version)
        if not os.path.isdir(folder):
            module.fail_json(msg=f"release {version} is not staged under {site_releases.releases_root(site_dir)}")
        try:
            shipped = {m["version"] for m in site_releases.migrations_of(folder)}
        except site_releases.ReleaseError as exc:
            module.fail_json(msg=str(exc))
        missing = sorted(shipped - applied, key=int)
        extra = sorted(applied - shipped, key=int)
        releases.append({"version": version, "matches": not missing and not extra, "missing": missing,
                         "extra": extra})
    module.exit_json(changed=False, schema_version=max(applied, key=lambda v: (int(v), v)) if applied else None,
                     applied_count=len(applied), releases=releases,
                     matching=[r["version"] for r in releases if r["matches"]])


if __name__ == "__main__":
    main()
