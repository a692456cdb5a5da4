# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: release_archives
author:
  - sec maintainers (!UNKNOWN)
version_added: "0.2.0"
short_description: The release archives of a controller folder
description:
  - Lists the release archives (C(<name>-<version>.tar.gz)) of O(releases_dir) on the controller, ascending by
    version, so that a playbook can stage one on a server that lacks it (C(sec site repair)).
options:
  releases_dir:
    description: The folder of release archives on the controller.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: The archive of 8.1.0
  ansible.builtin.set_fact:
    archive: "{{ query('fpt.sec.release_archives', releases_dir='~/.local/share/sec/releases')
      | selectattr('version', 'eq', '8.1.0') | first }}"
"""

RETURN = r"""
_raw:
  description: The archives, each with C(version), C(name), C(file), C(path), C(size) and C(unpacked_size).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.fpt.sec.plugins.plugin_utils.release_folder import ReleaseFolderError, list_releases


class LookupModule(LookupBase):
    def run(self, terms: list, variables: dict | None = None, **kwargs: object) -> list[dict]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return list_releases(self.get_option("releases_dir"))
        except ReleaseFolderError as exc:
            raise AnsibleLookupError(str(exc)) from None
