# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: upgrade_plan
author:
  - sec maintainers (!UNKNOWN)
version_added: "0.1.0"
short_description: The upgrade path of a site over the release archives of a controller folder
description:
  - Lists the release archives (C(<name>-<version>.tar.gz)) of O(releases_dir) on the controller and
    computes the enforced upgrade path from the site's version to the target. Patch releases may be
    jumped. Minor releases go in sequence, each at its highest patch present. A major is entered only
    from the last minor of the previous one.
  - Never fails on a bad path. The result's C(error) says what is wrong and C(missing) lists the releases
    to add, so that a playbook can stop with a clear message before touching any host.
options:
  _terms:
    description: The site's current version and the target version, in that order.
    required: true
    type: list
    elements: str
  releases_dir:
    description: The folder of release archives on the controller.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Plan the upgrade of the site to 8.2.0
  ansible.builtin.set_fact:
    sec_plan: "{{ query('fpt.sec.upgrade_plan', '8.0.0', '8.2.0', releases_dir='/srv/sec/releases') | first }}"

- name: Stop on a bad path
  ansible.builtin.assert:
    that: sec_plan.error is none
    fail_msg: "{{ sec_plan.error }}"
"""

RETURN = r"""
_raw:
  description: One plan.
  type: list
  elements: dict
  contains:
    current:
      description: The version the path starts from.
      type: str
    target:
      description: The version the path ends at.
      type: str
    steps:
      description:
        - The releases to install in order, each with C(version), C(file), C(path), C(size),
          C(unpacked_size) and C(state) (V(verified), V(unverified) or V(bad) against its C(.sha256)).
      type: list
      elements: dict
    available:
      description: The versions in the folder, ascending.
      type: list
      elements: str
    error:
      description: Why there is no valid path, naming the releases to add. Null when the path is valid.
      type: str
    missing:
      description: The releases to add, in path order (exact versions, or C(8.2.x) for any patch).
      type: list
      elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.fpt.sec.plugins.plugin_utils.release_folder import plan


class LookupModule(LookupBase):
    def run(self, terms: list, variables: dict | None = None, **kwargs: object) -> list[dict]:
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 2:
            raise AnsibleLookupError("upgrade_plan takes two terms: the current version and the target version")
        current, target = (None if t is None else str(t).strip() for t in terms)
        return [plan(current or None, target or "", self.get_option("releases_dir"))]
