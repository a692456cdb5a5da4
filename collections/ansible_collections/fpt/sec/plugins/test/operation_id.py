# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: operation_id
author:
  - sec maintainers (!UNKNOWN)
version_added: "0.2.0"
short_description: Whether a value is a valid operation id
description:
  - "True for letters, digits and C(. _ : @ -), at most 128 characters, starting with a letter or digit. The
    one rule sec, its playbooks and its modules share (module_utils/operation_ids.py)."
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the operation id
  ansible.builtin.assert:
    that: operation_id is not defined or operation_id is fpt.sec.operation_id
"""

RETURN = r"""
_value:
  description: Whether the value is a valid operation id.
  type: bool
"""

from ansible_collections.fpt.sec.plugins.module_utils.operation_ids import is_operation_id


class TestModule:
    def tests(self) -> dict:
        return {"operation_id": is_operation_id}
