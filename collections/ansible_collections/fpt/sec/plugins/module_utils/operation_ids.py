# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operation id rule, once: what an operation id may be, and the one a run takes when none is given.

An id names the operation in the site lock, the upgrade journal, the repair mark and sec's history:
letters, digits and ``. _ : @ -``, at most 128 characters, starting with a letter or digit. A run given none
takes ``awx-<job id>`` under AWX, else ``manual-<UTC time>-<4 hex digits>`` (two runs in the same second
still differ). Used by sec (sec_wrapper.operation_inputs), the ``fpt.sec.operation_id`` Jinja test and the
``fpt.sec.operation_id`` lookup that every playbook calls.

Pure standard library and Python 3.8 compatible syntax: this file may ship to managed hosts.
"""

from __future__ import annotations

import datetime
import random
import re

from ansible_collections.fpt.sec.plugins.module_utils.utc import compact_utc

OPERATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
RULE = "letters, digits and . _ : @ - (at most 128 characters)"


def is_operation_id(value: object) -> bool:
    return isinstance(value, str) and OPERATION_ID_RE.match(value) is not None


def run_operation_id(given: object = None, awx_job_id: object = None,
                     now: datetime.datetime | None = None) -> str:
    """The id a run goes by: the one given (checked), else awx-<job id>, else manual-<UTC time>-<hex>."""
    if given is not None and given != "":
        if not is_operation_id(given):
            raise ValueError(f"operation id {given!r}: use {RULE}")
        return str(given)
    if awx_job_id is not None and awx_job_id != "":
        return f"awx-{awx_job_id}"
    return f"manual-{compact_utc(now)}-{random.randrange(65536):04x}"  # noqa: S311 (a name, not a secret)
