# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: operation_id
author:
  - sec maintainers (!UNKNOWN)
version_added: "0.2.0"
short_description: The id a playbook run goes by
description:
  - The operation id given (checked against the rule), else C(awx-<job id>) under AWX, else
    C(manual-<UTC time>-<4 hex digits>). Fix it once per run with M(ansible.builtin.set_fact), since a lookup in
    play vars would be evaluated again at every task.
options:
  given:
    description: The operation id the caller gave (the extra var C(operation_id)), or nothing.
    type: raw
  awx_job_id:
    description: AWX's job id (the extra var C(awx_job_id)), or nothing.
    type: raw
"""

EXAMPLES = r"""
- name: Fix the operation id for the whole run
  ansible.builtin.set_fact:
    sec_operation_id: >-
      {{ lookup('fpt.sec.operation_id', given=operation_id | default(none), awx_job_id=awx_job_id | default(none)) }}
"""

RETURN = r"""
_raw:
  description: The operation id, one item.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.fpt.sec.plugins.module_utils.operation_ids import run_operation_id


class LookupModule(LookupBase):
    def run(self, terms: list, variables: dict | None = None, **kwargs: object) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [run_operation_id(self.get_option("given"), self.get_option("awx_job_id"))]
        except ValueError as exc:
            raise AnsibleLookupError(str(exc)) from None
